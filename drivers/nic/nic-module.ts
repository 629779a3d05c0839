import { ContainerModule, DriverContribution } from "../../src/ddi/index.js";
import { NicDriver } from "./nic-driver.js";

/** The e1000sim driver package: its INF and DriverEntry in one bound contribution. */
export default new ContainerModule(({ bind }) => {
  bind(NicDriver).toSelf().inSingletonScope();
  bind(DriverContribution).toService(NicDriver);
});
