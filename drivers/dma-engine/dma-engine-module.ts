import { ContainerModule, DriverContribution } from "../../src/ddi/index.js";
import { DmaEngineDriver } from "./dma-engine-driver.js";

/** The dmaengsim driver package: its INF and DriverEntry in one bound contribution. */
export default new ContainerModule(({ bind }) => {
  bind(DmaEngineDriver).toSelf().inSingletonScope();
  bind(DriverContribution).toService(DmaEngineDriver);
});
