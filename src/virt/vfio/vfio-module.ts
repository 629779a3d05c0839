import { ContainerModule } from "inversify";
import { DeviceOwnership } from "./device-ownership.js";
import { IommuGroups } from "./iommu-groups.js";
import { VfioOptions } from "./tokens.js";
import { UioPciGeneric } from "./uio-device.js";
import { Vfio, type VfioOptions as VfioOptionsShape } from "./vfio.js";

/** User-space I/O for a machine: VFIO (containers, groups, devices) and uio_pci_generic. */
export function vfioModule(options: VfioOptionsShape = {}): ContainerModule {
  return new ContainerModule(({ bind }) => {
    bind(VfioOptions).toConstantValue(options);
    bind(IommuGroups).toSelf().inSingletonScope();
    bind(DeviceOwnership).toSelf().inSingletonScope();
    bind(Vfio).toSelf().inSingletonScope();
    bind(UioPciGeneric).toSelf().inSingletonScope();
  });
}

export default vfioModule();
