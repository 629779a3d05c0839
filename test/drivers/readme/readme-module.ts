import { ContainerModule, DriverContribution } from "../../../src/ddi/index.js";
import { ReadmeDriver } from "./readme-driver.js";

/** The README's driver package. */
export default new ContainerModule(({ bind }) => {
  bind(ReadmeDriver).toSelf().inSingletonScope();
  bind(DriverContribution).toService(ReadmeDriver);
});
