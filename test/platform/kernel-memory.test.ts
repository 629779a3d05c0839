import { Container } from "inversify";
import { describe, expect, it } from "vitest";
import { CpuMemory } from "../../src/platform/cpu-memory.js";
import { FrameAllocator } from "../../src/platform/frame-allocator.js";
import {
  KERNEL_SPACE_END,
  KERNEL_SPACE_START,
  KernelMemory,
  SYSTEM_PTE_START,
} from "../../src/platform/kernel-memory.js";
import { MemoryManager } from "../../src/platform/memory-manager.js";
import { GiB, PAGE_SIZE } from "../../src/platform/page.js";
import { PhysicalMemory } from "../../src/platform/physical-memory.js";
import type { PlatformOptions as PlatformOptionsShape } from "../../src/platform/platform-options.js";
import { ProcessManager } from "../../src/platform/process-manager.js";
import { Random } from "../../src/platform/random.js";
import { PlatformOptions } from "../../src/platform/tokens.js";
import { Counters } from "../../src/trace/counters.js";
import { errorCode, memoryFixture } from "./memory-fixture.js";

describe("KernelMemory", () => {
  it("hands out page-aligned kernel addresses backed by scattered frames of the owner", () => {
    const { kernel, frames } = memoryFixture();
    const owner = frames.registerOwner("nic");
    const va = kernel.allocateNonPaged(16 * PAGE_SIZE, { owner, tag: "Nic0" });
    expect(va).toBeGreaterThanOrEqual(KERNEL_SPACE_START);
    expect(va + 16 * PAGE_SIZE).toBeLessThanOrEqual(SYSTEM_PTE_START);
    expect(va % PAGE_SIZE).toBe(0);
    const info = kernel.allocationAt(va + 5000)!;
    expect(info).toMatchObject({ va, size: 16 * PAGE_SIZE, owner, tag: "Nic0", kind: "pool" });
    expect(info.pfns.length).toBe(16);
    expect(info.pfns.every((pfn) => frames.ownerOf(pfn) === owner)).toBe(true);
    const adjacent = info.pfns.filter((pfn, i) => i > 0 && pfn === info.pfns[i - 1]! + 1).length;
    expect(adjacent).toBeLessThan(3);
    expect(kernel.physicalAddress(va + 4097)).toBe(info.pfns[1]! * PAGE_SIZE + 1);
  });

  it("carves small allocations from shared pool pages", () => {
    const { kernel, frames } = memoryFixture();
    const driver = frames.registerOwner("driver");
    const secretOwner = frames.registerOwner("secrets");
    const buffer = kernel.allocateNonPaged(100, { owner: driver, tag: "Buf " });
    const secret = kernel.allocateNonPaged(64, { owner: secretOwner, tag: "Key " });
    const bufferPage = Math.floor(kernel.physicalAddress(buffer) / PAGE_SIZE);
    expect(Math.floor(kernel.physicalAddress(secret) / PAGE_SIZE)).toBe(bufferPage);
    expect(frames.ownerOf(bufferPage)).toBe(kernel.poolOwner);
    expect(kernel.allocationAt(buffer + 10)).toMatchObject({ va: buffer, owner: driver, kind: "small-pool" });
    expect(kernel.allocationAt(secret)).toMatchObject({ va: secret, owner: secretOwner, tag: "Key " });
    // The whole page is mapped, as on real hardware: reading past the buffer reaches the secret.
    kernel.write(secret, new TextEncoder().encode("hunter2"));
    const page = new Uint8Array(PAGE_SIZE);
    kernel.read(buffer - (buffer % PAGE_SIZE), page);
    expect(new TextDecoder().decode(page.subarray(secret % PAGE_SIZE, (secret % PAGE_SIZE) + 7))).toBe(
      "hunter2",
    );
    kernel.free(buffer);
    expect(kernel.allocateNonPaged(112, { owner: driver })).toBe(buffer);
  });

  it("reads and writes across scattered pages", () => {
    const { kernel, frames, memory } = memoryFixture();
    const owner = frames.registerOwner("disk");
    const va = kernel.allocateNonPaged(3 * PAGE_SIZE, { owner });
    const data = new Uint8Array(2 * PAGE_SIZE).map((_, i) => i % 251);
    kernel.write(va + 1000, data);
    const back = new Uint8Array(data.length);
    kernel.read(va + 1000, back);
    expect(back).toEqual(data);
    const second = new Uint8Array(10);
    memory.read(kernel.physicalAddress(va + PAGE_SIZE), second);
    expect([...second]).toEqual([...data.subarray(PAGE_SIZE - 1000, PAGE_SIZE - 990)]);
  });

  it("keeps a guard page after each allocation and unmaps freed memory", () => {
    const { kernel, frames } = memoryFixture();
    const owner = frames.registerOwner("x");
    const va = kernel.allocateNonPaged(PAGE_SIZE, { owner });
    expect(kernel.isMapped(va, PAGE_SIZE)).toBe(true);
    expect(kernel.isMapped(va, PAGE_SIZE + 1)).toBe(false);
    expect(errorCode(() => kernel.write(va + PAGE_SIZE - 1, new Uint8Array(2)))).toBe("not-mapped");
    const pfn = kernel.allocationAt(va)!.pfns[0]!;
    kernel.write(va, new Uint8Array([1]));
    kernel.free(va);
    expect(frames.ownerOf(pfn)).toBe(0);
    expect(kernel.isMapped(va, 1)).toBe(false);
    expect(errorCode(() => kernel.physicalAddress(va))).toBe("not-mapped");
    expect(errorCode(() => kernel.free(va))).toBe("double-free");
    expect(errorCode(() => kernel.free(va + 8))).toBe("bad-handle");
    expect(errorCode(() => kernel.free(2 ** 48))).toBe("bad-address");
    const next = kernel.allocateNonPaged(PAGE_SIZE, { owner });
    expect(next).not.toBe(va);
  });

  it("allocates contiguous memory below a limit, aligned", () => {
    const { kernel, frames } = memoryFixture();
    const owner = frames.registerOwner("hal");
    const va = kernel.allocateContiguous(64 * 1024, { owner, maxAddress: 4 * GiB - 1, alignmentFrames: 16 });
    const { pfns, kind } = kernel.allocationAt(va)!;
    expect(kind).toBe("contiguous");
    expect(pfns[0]! % 16).toBe(0);
    expect(pfns.every((pfn, i) => pfn === pfns[0]! + i)).toBe(true);
    expect((pfns[15]! + 1) * PAGE_SIZE).toBeLessThanOrEqual(4 * GiB);
    expect(errorCode(() => kernel.allocateContiguous(4 * GiB, { owner, maxAddress: 4 * GiB - 1 }))).toBe(
      "no-memory",
    );
    expect(frames.framesOwnedBy(owner)).toBe(16);
  });

  it("maps existing frames into system space and unmaps them without freeing", () => {
    const { kernel, frames, processes } = memoryFixture();
    const owner = frames.registerOwner("mapper");
    const process = processes.create("app");
    const user = process.allocate(2 * PAGE_SIZE);
    const pfns = [process.translate(user) / PAGE_SIZE, process.translate(user + PAGE_SIZE) / PAGE_SIZE];
    const system = kernel.mapPages(pfns, owner);
    expect(system).toBeGreaterThanOrEqual(SYSTEM_PTE_START);
    expect(system).toBeLessThan(KERNEL_SPACE_END);
    kernel.write(system + PAGE_SIZE - 2, new Uint8Array([7, 8, 9, 10]));
    const seen = new Uint8Array(4);
    process.read(user + PAGE_SIZE - 2, seen);
    expect([...seen]).toEqual([7, 8, 9, 10]);
    expect(errorCode(() => kernel.free(system))).toBe("bad-handle");
    kernel.unmapPages(system);
    expect(frames.ownerOf(pfns[0]!)).toBe(process.owner);
    expect(errorCode(() => kernel.unmapPages(system))).toBe("double-free");
    expect(errorCode(() => kernel.mapPages([(5 * GiB) / PAGE_SIZE], owner))).toBe("not-owner");
  });

  it("finds pool allocations made after a system mapping", () => {
    const { kernel, frames, processes } = memoryFixture();
    const owner = frames.registerOwner("mapper");
    const user = processes.create("app").allocate(PAGE_SIZE);
    const pfn = processes.processes[0]!.translate(user) / PAGE_SIZE;
    const system = kernel.mapPages([pfn], owner);
    const small = kernel.allocateNonPaged(40, { owner });
    const large = kernel.allocateNonPaged(3 * PAGE_SIZE, { owner });
    kernel.write(small, new Uint8Array([1, 2, 3]));
    kernel.write(large + PAGE_SIZE, new Uint8Array([4, 5, 6]));
    const seen = new Uint8Array(3);
    kernel.read(small, seen);
    expect([...seen]).toEqual([1, 2, 3]);
    kernel.read(large + PAGE_SIZE, seen);
    expect([...seen]).toEqual([4, 5, 6]);
    expect(kernel.isMapped(system, PAGE_SIZE)).toBe(true);
  });

  it("rejects bad sizes and owners without allocating", () => {
    const { kernel, frames } = memoryFixture();
    const owner = frames.registerOwner("x");
    const free = frames.freeFrameCount();
    expect(errorCode(() => kernel.allocateNonPaged(0, { owner }))).toBe("bad-length");
    expect(errorCode(() => kernel.allocateNonPaged(1.5, { owner }))).toBe("bad-length");
    expect(errorCode(() => kernel.allocateNonPaged(10, { owner: 99 }))).toBe("bad-handle");
    expect(errorCode(() => kernel.allocateNonPaged(10 * PAGE_SIZE, { owner: 99 }))).toBe("bad-handle");
    expect(frames.freeFrameCount()).toBe(free);
    expect(FrameAllocator.POISON).toBe(0x6b);
  });

  it("resolves with the rest of the memory half from an inversify container", () => {
    const options: PlatformOptionsShape = {
      ramRanges: [{ start: 0, end: 1 * GiB }],
      coherent: false,
      seed: 3,
    };
    const container = new Container({ defaultScope: "Singleton" });
    container.bind(PlatformOptions).toConstantValue(options);
    container.bind(PhysicalMemory).toConstantValue(new PhysicalMemory(options.ramRanges));
    container.bind(Random).toConstantValue(new Random(options.seed));
    container.bind(Counters).toSelf();
    container.bind(FrameAllocator).toSelf();
    container.bind(CpuMemory).toSelf();
    container.bind(KernelMemory).toSelf();
    container.bind(MemoryManager).toSelf();
    container.bind(ProcessManager).toSelf();
    const kernel = container.get(KernelMemory);
    expect(container.get(CpuMemory).coherent).toBe(false);
    expect(container.get(MemoryManager)).toBeInstanceOf(MemoryManager);
    expect(container.get(ProcessManager).create("p").id).toBeGreaterThan(0);
    expect(container.get(FrameAllocator).ownerName(kernel.poolOwner)).toBe("nonpaged-pool");
  });
});
