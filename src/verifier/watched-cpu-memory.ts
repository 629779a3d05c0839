/**
 * The CPU's loads, watched: the verifier's hook for dma-debug's stale-data check (the CPU reading
 * a buffer the device may still be writing, before FlushAdapterBuffers or PutScatterGatherList).
 * Every CPU load of memory goes through CpuMemory.read — the DDI's ReadMemory / RtlCopyMemory via
 * KernelMemory or a process's address space — so the check sits here, below the DDI, and sees
 * user buffers mapped into system space too. The verifier module rebinds CpuMemory to this class;
 * the verifier sets `readMonitor` when it is built.
 */
import { inject, injectable } from "inversify";
import { CpuMemory } from "../platform/cpu-memory.js";
import { PhysicalMemory } from "../platform/physical-memory.js";
import type { PlatformOptions as PlatformOptionsShape } from "../platform/platform-options.js";
import { PlatformOptions } from "../platform/tokens.js";
import { Counters } from "../trace/counters.js";

@injectable()
export class WatchedCpuMemory extends CpuMemory {
  /** Called with the physical range of every CPU load, before it happens. */
  readMonitor: ((pa: number, length: number) => void) | undefined = undefined;

  constructor(
    @inject(PhysicalMemory) memory: PhysicalMemory,
    @inject(PlatformOptions) options: PlatformOptionsShape,
    @inject(Counters) counters: Counters,
  ) {
    super(memory, options, counters);
  }

  override read(pa: number, dst: Uint8Array): void {
    this.readMonitor?.(pa, dst.length);
    super.read(pa, dst);
  }
}
