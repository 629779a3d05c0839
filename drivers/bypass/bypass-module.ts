import { ContainerModule, DriverContribution } from "../../src/ddi/index.js";
import { BypassDriver } from "./bypass-driver.js";

/** The bypasssim driver package: its INF and DriverEntry in one bound contribution. */
export default new ContainerModule(({ bind }) => {
  bind(BypassDriver).toSelf().inSingletonScope();
  bind(DriverContribution).toService(BypassDriver);
});
