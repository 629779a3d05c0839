import { ContainerModule, DriverContribution } from "../../../src/ddi/index.js";
import { TinyDriver } from "./tiny-driver.js";

/** The tiny driver package: one module binding its driver under the contribution token. */
export default new ContainerModule(({ bind }) => {
  bind(TinyDriver).toSelf().inSingletonScope();
  bind(DriverContribution).toService(TinyDriver);
});
