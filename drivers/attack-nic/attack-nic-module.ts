import { ContainerModule, DriverContribution } from "../../src/ddi/index.js";
import { AttackNicDriver } from "./attack-nic-driver.js";

/** The attacknic driver package: its INF and DriverEntry in one bound contribution. */
export default new ContainerModule(({ bind }) => {
  bind(AttackNicDriver).toSelf().inSingletonScope();
  bind(DriverContribution).toService(AttackNicDriver);
});
