/**
 * The contribution point of driver packages. A package implements DriverContribution (its INF
 * and its DriverEntry in one class) and binds it in its one ContainerModule:
 *
 *   export default new ContainerModule(({ bind }) => {
 *     bind(MyDriver).toSelf().inSingletonScope();
 *     bind(DriverContribution).toService(MyDriver);
 *   });
 *
 * The DriverRegistry collects every bound contribution; IoManager.loadDriver runs it.
 */
import type { DRIVER_OBJECT } from "../hal/wdm/device-object.js";
import type { NTSTATUS } from "../hal/wdm/ntstatus.js";

export interface DriverContribution {
  /** Service name (the INF's AddService): the driver object is named \Driver\<serviceName>. */
  readonly serviceName: string;
  /**
   * Hardware or compatible ids the driver installs on, as an INF's models section lists them:
   * "PCI\VEN_8086&DEV_100E" (compared case-insensitively with the ids of each PDO).
   */
  readonly hardwareIds: readonly string[];
  /**
   * DRIVER_INITIALIZE, at PASSIVE_LEVEL: fill DriverObject.MajorFunction, DriverExtension.AddDevice,
   * DriverUnload and DriverStartIo. A failure status unloads the driver at once.
   */
  DriverEntry(DriverObject: DRIVER_OBJECT, RegistryPath: string): NTSTATUS;
}

export const DriverContribution = Symbol.for("ddi.DriverContribution");
