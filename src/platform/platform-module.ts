import { ContainerModule } from "inversify";
import { CpuMemory } from "./cpu-memory.js";
import { FrameAllocator } from "./frame-allocator.js";
import { IdentityRemapper } from "./identity-remapper.js";
import { KernelMemory } from "./kernel-memory.js";
import { MemoryManager } from "./memory-manager.js";
import { PciBus } from "./pci-bus.js";
import { PhysicalMemory } from "./physical-memory.js";
import type { PlatformOptions as PlatformOptionsShape } from "./platform-options.js";
import { ProcessManager } from "./process-manager.js";
import { Random } from "./random.js";
import { Scheduler } from "./scheduler.js";
import { DmaRemapper, PlatformOptions } from "./tokens.js";

/** The platform layer's bindings. The machine binds PlatformOptions before loading this. */
export default new ContainerModule(({ bind }) => {
  bind(PhysicalMemory)
    .toResolvedValue(
      (options: PlatformOptionsShape) => new PhysicalMemory(options.ramRanges),
      [PlatformOptions],
    )
    .inSingletonScope();
  bind(Random)
    .toResolvedValue((options: PlatformOptionsShape) => new Random(options.seed), [PlatformOptions])
    .inSingletonScope();
  bind(FrameAllocator).toSelf().inSingletonScope();
  bind(CpuMemory).toSelf().inSingletonScope();
  bind(KernelMemory).toSelf().inSingletonScope();
  bind(MemoryManager).toSelf().inSingletonScope();
  bind(ProcessManager).toSelf().inSingletonScope();
  bind(Scheduler).toSelf().inSingletonScope();
  bind(PciBus).toSelf().inSingletonScope();
  bind(IdentityRemapper).toSelf().inSingletonScope();
  bind(DmaRemapper).toService(IdentityRemapper);
});
