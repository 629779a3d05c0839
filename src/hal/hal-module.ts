import { ContainerModule } from "inversify";
import { DirectMapping } from "./direct-mapping.js";
import { Hal } from "./hal.js";
import { HalDmaOperations } from "./hal-dma-operations.js";
import { IommuInterface } from "./iommu-interface/iommu-interface.js";
import { RemapMapping } from "./remap-mapping.js";
import { DmaOperations } from "./tokens.js";

/**
 * The HAL's bindings. DmaOperations is the seam: the verifier module rebinds it to a decorator of
 * HalDmaOperations, and every adapter handed out afterwards carries the decorated table.
 */
export default new ContainerModule(({ bind }) => {
  bind(DirectMapping).toSelf().inSingletonScope();
  bind(RemapMapping).toSelf().inSingletonScope();
  bind(HalDmaOperations).toSelf().inSingletonScope();
  bind(DmaOperations).toService(HalDmaOperations);
  bind(Hal).toSelf().inSingletonScope();
  bind(IommuInterface).toSelf().inSingletonScope();
});
