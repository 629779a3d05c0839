import { ContainerModule } from "inversify";
import { IommuInterface } from "./iommu-interface.js";

/**
 * Binds the HAL's DMA_IOMMU_INTERFACE provider. The Kernel injects it optionally: without this
 * module IoGetIommuInterface(Ex) returns STATUS_NOT_SUPPORTED. Load it as an extra module
 * (`new Machine(options, [iommuInterfaceModule])`) until the HAL module binds the class itself.
 */
export default new ContainerModule(({ bind }) => {
  bind(IommuInterface).toSelf().inSingletonScope();
});
