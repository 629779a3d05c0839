import { describe, expect, it } from "vitest";
import { CpuMemory } from "../../src/platform/cpu-memory.js";
import { FrameAllocator } from "../../src/platform/frame-allocator.js";
import { KernelMemory } from "../../src/platform/kernel-memory.js";
import { GiB, MiB, PAGE_SIZE, TiB } from "../../src/platform/page.js";
import { PhysicalMemory } from "../../src/platform/physical-memory.js";
import { Random } from "../../src/platform/random.js";
import { Counters } from "../../src/trace/counters.js";

/** The layout Machine({ memory: 1 TiB }) resolves to: the MMIO hole at 3 GiB, RAM resumes at 4 GiB. */
const RAM = [
  { start: 0, end: 3 * GiB },
  { start: 4 * GiB, end: 4 * GiB + 1 * TiB - 3 * GiB },
];
const TOUCHED = 10_000;

function hostBytes(): number {
  const usage = process.memoryUsage();
  return usage.heapUsed + usage.arrayBuffers;
}

describe("a 1 TiB machine", () => {
  it("costs host memory in proportion to the frames in use, not to RAM", () => {
    const before = hostBytes();
    const memory = new PhysicalMemory(RAM);
    const frames = new FrameAllocator(memory, new Random(7));
    const cpu = new CpuMemory(memory, { ramRanges: RAM, coherent: true, seed: 7 }, new Counters());
    const kernel = new KernelMemory(frames, cpu);
    const owner = frames.registerOwner("scatter");
    const totalFrames = TiB / PAGE_SIZE - 1;
    expect(frames.freeFrameCount()).toBe(totalFrames);

    const pfns = frames.allocate(TOUCHED, { owner });
    const stamp = new Uint8Array(8);
    for (const pfn of pfns) {
      stamp[0] = pfn & 0xff;
      memory.write(pfn * PAGE_SIZE + 64, stamp);
    }
    expect(memory.touchedFrames).toBe(TOUCHED);
    expect(memory.hostBytes).toBeLessThanOrEqual(Math.ceil(TOUCHED / 512) * 2 * MiB);
    expect(pfns.filter((pfn) => pfn * PAGE_SIZE >= 4 * GiB).length).toBeGreaterThan(TOUCHED * 0.99);
    expect(Math.max(...pfns) * PAGE_SIZE).toBeGreaterThan(900 * GiB);

    const va = kernel.allocateNonPaged(64 * MiB, { owner });
    kernel.write(va + 64 * MiB - 4, new Uint8Array([1, 2, 3, 4]));
    const common = kernel.allocateContiguous(2 * MiB, {
      owner,
      maxAddress: 4 * GiB - 1,
      alignmentFrames: 512,
    });
    expect(kernel.physicalAddress(common)).toBe(3 * GiB - 2 * MiB);
    expect(frames.freeFrameCount()).toBe(totalFrames - TOUCHED - (66 * MiB) / PAGE_SIZE);

    const growth = hostBytes() - before;
    expect(growth).toBeLessThan(200 * MiB);

    const untouched = new Uint8Array(PAGE_SIZE);
    memory.read(RAM[1]!.end - PAGE_SIZE, untouched);
    expect(untouched.every((b) => b === 0)).toBe(true);
    const probe = new Uint8Array(8);
    memory.read(pfns[1234]! * PAGE_SIZE + 64, probe);
    expect(probe[0]).toBe(pfns[1234]! & 0xff);

    kernel.free(va);
    kernel.free(common);
    frames.free(pfns, owner);
    expect(frames.freeFrameCount()).toBe(totalFrames);
    expect(frames.framesOwnedBy(owner)).toBe(0);
  });
});
