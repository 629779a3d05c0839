import { ContainerModule, DriverContribution, Kernel } from "../../../src/ddi/index.js";
import type { DmaTestDriver } from "./dma-test-driver.js";

/** A test driver's package: the one module that binds it, built with the machine's Kernel. */
export function driverPackage(driver: new (kernel: Kernel) => DmaTestDriver): ContainerModule {
  return new ContainerModule(({ bind }) => {
    bind(driver)
      .toResolvedValue((kernel: Kernel) => new driver(kernel), [Kernel])
      .inSingletonScope();
    bind(DriverContribution).toService(driver);
  });
}
