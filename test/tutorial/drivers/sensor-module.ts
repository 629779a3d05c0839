import { ContainerModule, DriverContribution } from "../../../src/ddi/index.js";
import { SensorDriver } from "./sensor-driver.js";

/** The driver package: its one module binds the driver under the contribution token. */
export default new ContainerModule(({ bind }) => {
  bind(SensorDriver).toSelf().inSingletonScope();
  bind(DriverContribution).toService(SensorDriver);
});
