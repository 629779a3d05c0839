import { ContainerModule, DriverContribution } from "../../src/ddi/index.js";
import { LegacyDriver } from "./legacy-driver.js";

/** The ldmasim driver package: its INF and DriverEntry in one bound contribution. */
export default new ContainerModule(({ bind }) => {
  bind(LegacyDriver).toSelf().inSingletonScope();
  bind(DriverContribution).toService(LegacyDriver);
});
