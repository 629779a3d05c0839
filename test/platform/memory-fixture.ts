import { CpuMemory } from "../../src/platform/cpu-memory.js";
import { FrameAllocator } from "../../src/platform/frame-allocator.js";
import { KernelMemory } from "../../src/platform/kernel-memory.js";
import { MemoryManager } from "../../src/platform/memory-manager.js";
import { GiB } from "../../src/platform/page.js";
import { PhysicalMemory, type RamRange } from "../../src/platform/physical-memory.js";
import { PlatformError } from "../../src/platform/platform-error.js";
import { ProcessManager } from "../../src/platform/process-manager.js";
import { Random } from "../../src/platform/random.js";
import { Counters } from "../../src/trace/counters.js";

export interface MemoryFixture {
  readonly memory: PhysicalMemory;
  readonly frames: FrameAllocator;
  readonly cpu: CpuMemory;
  readonly kernel: KernelMemory;
  readonly mm: MemoryManager;
  readonly processes: ProcessManager;
  readonly counters: Counters;
}

/** The memory half of the platform wired by hand: 8 GiB with the MMIO hole at 3 GiB by default. */
export function memoryFixture(
  options: { coherent?: boolean; ramRanges?: readonly RamRange[]; seed?: number } = {},
): MemoryFixture {
  const ramRanges = options.ramRanges ?? [
    { start: 0, end: 3 * GiB },
    { start: 4 * GiB, end: 9 * GiB },
  ];
  const memory = new PhysicalMemory(ramRanges);
  const counters = new Counters();
  const frames = new FrameAllocator(memory, new Random(options.seed ?? 1));
  const cpu = new CpuMemory(memory, { ramRanges, coherent: options.coherent ?? true, seed: 1 }, counters);
  const kernel = new KernelMemory(frames, cpu);
  return {
    memory,
    frames,
    cpu,
    kernel,
    counters,
    mm: new MemoryManager(kernel, frames),
    processes: new ProcessManager(frames, cpu),
  };
}

/** The PlatformError code `action` throws, or "none". */
export function errorCode(action: () => unknown): string {
  try {
    action();
  } catch (error) {
    if (error instanceof PlatformError) return error.code;
    throw error;
  }
  return "none";
}
