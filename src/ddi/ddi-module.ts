import { ContainerModule } from "inversify";
import { bindContributionProvider } from "./contribution-provider.js";
import { CpuAccess } from "./cpu-access.js";
import { DriverContribution } from "./driver.js";
import { DriverRegistry } from "./driver-registry.js";
import { IoManager } from "./io-manager.js";
import { IoSpace } from "./io-space.js";
import { Kernel } from "./kernel.js";
import { PoolAllocator } from "./pool-allocator.js";

/**
 * The DDI layer's bindings: the Kernel drivers inject, the I/O manager the host drives, and the
 * driver contribution point that driver packages' modules bind into.
 */
export default new ContainerModule(({ bind }) => {
  bind(IoSpace).toSelf().inSingletonScope();
  bind(PoolAllocator).toSelf().inSingletonScope();
  bind(CpuAccess).toSelf().inSingletonScope();
  bind(IoManager).toSelf().inSingletonScope();
  bind(Kernel).toSelf().inSingletonScope();
  bind(DriverRegistry).toSelf().inSingletonScope();
  bindContributionProvider(bind, DriverContribution);
});
