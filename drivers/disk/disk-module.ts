import { ContainerModule, DriverContribution } from "../../src/ddi/index.js";
import { DiskDriver } from "./disk-driver.js";

/** The nvmesim driver package: its INF and DriverEntry in one bound contribution. */
export default new ContainerModule(({ bind }) => {
  bind(DiskDriver).toSelf().inSingletonScope();
  bind(DriverContribution).toService(DiskDriver);
});
