import { ContainerModule } from "inversify";
import { DmaRemapper } from "../platform/tokens.js";
import { Iommu } from "./iommu.js";

/** The IOMMU layer's bindings: its units replace the platform's identity remapper. */
export default new ContainerModule(({ bind, rebind }) => {
  bind(Iommu).toSelf().inSingletonScope();
  rebind(DmaRemapper).toService(Iommu);
});
