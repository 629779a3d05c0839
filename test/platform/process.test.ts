import { describe, expect, it } from "vitest";
import { GiB, LARGE_PAGE_SIZE, MiB, PAGE_SIZE } from "../../src/platform/page.js";
import { USER_SPACE_END } from "../../src/platform/process-address-space.js";
import { errorCode, memoryFixture } from "./memory-fixture.js";

describe("ProcessManager and ProcessAddressSpace", () => {
  it("gives each process its own address space and owner tag", () => {
    const { processes, frames } = memoryFixture();
    const a = processes.create("a");
    const b = processes.create("b");
    expect(a.id).not.toBe(b.id);
    expect(processes.get(a.id)).toBe(a);
    const va = a.allocate(3 * PAGE_SIZE);
    expect(va).toBeLessThan(USER_SPACE_END);
    expect(a.isMapped(va, 3 * PAGE_SIZE)).toBe(true);
    expect(b.isMapped(va, 1)).toBe(false);
    expect(frames.ownerOf(a.translate(va) / PAGE_SIZE)).toBe(a.owner);
    expect(frames.ownerName(a.owner)).toContain("a");
    expect(a.committedBytes).toBe(3 * PAGE_SIZE);
    expect(errorCode(() => b.translate(va))).toBe("not-mapped");
  });

  it("reads and writes through its page tables", () => {
    const { processes, memory } = memoryFixture();
    const p = processes.create("app");
    const va = p.allocate(2 * PAGE_SIZE);
    p.write(va + PAGE_SIZE - 3, new Uint8Array([1, 2, 3, 4, 5, 6]));
    const seen = new Uint8Array(3);
    memory.read(p.translate(va + PAGE_SIZE), seen);
    expect([...seen]).toEqual([4, 5, 6]);
    expect(p.pageSizeAt(va)).toBe(PAGE_SIZE);
    expect(p.translate(va + 5) % PAGE_SIZE).toBe(5);
    expect(errorCode(() => p.write(va + 2 * PAGE_SIZE - 1, new Uint8Array(2)))).toBe("not-mapped");
  });

  it("backs large pages with aligned 2 MiB runs", () => {
    const { processes } = memoryFixture();
    const p = processes.create("db");
    const va = p.allocate(3 * MiB, { largePages: true });
    expect(va % LARGE_PAGE_SIZE).toBe(0);
    expect(p.pageSizeAt(va + 3 * MiB)).toBe(LARGE_PAGE_SIZE);
    const base = p.translate(va);
    expect(base % LARGE_PAGE_SIZE).toBe(0);
    expect(p.translate(va + 12345)).toBe(base + 12345);
    expect(p.translate(va + LARGE_PAGE_SIZE) % LARGE_PAGE_SIZE).toBe(0);
    expect(p.committedBytes).toBe(4 * MiB);
    const runs: number[] = [];
    p.forEachPhysicalRun(va, LARGE_PAGE_SIZE, (_pa, _done, length) => runs.push(length));
    expect(runs).toEqual([LARGE_PAGE_SIZE]);
    p.free(va);
    expect(p.committedBytes).toBe(0);
    expect(p.isMapped(va, 1)).toBe(false);
  });

  it("fails a large-page request it cannot meet without keeping any frames", () => {
    const { processes, frames } = memoryFixture({ ramRanges: [{ start: 0, end: 6 * MiB }] });
    const p = processes.create("greedy");
    const free = frames.freeFrameCount();
    expect(errorCode(() => p.allocate(6 * MiB, { largePages: true }))).toBe("no-memory");
    expect(frames.freeFrameCount()).toBe(free);
  });

  it("pins pages up to the locked-memory limit, nesting pins", () => {
    const { processes } = memoryFixture();
    const p = processes.create("vfio-user", { lockedMemoryLimit: 4 * PAGE_SIZE });
    const va = p.allocate(8 * PAGE_SIZE);
    p.pin(va + 100, 2 * PAGE_SIZE);
    expect(p.pinnedBytes).toBe(3 * PAGE_SIZE);
    p.pin(va, PAGE_SIZE);
    expect(p.pinnedBytes).toBe(3 * PAGE_SIZE);
    expect(errorCode(() => p.pin(va, 5 * PAGE_SIZE))).toBe("no-memory");
    expect(p.pinnedBytes).toBe(3 * PAGE_SIZE);
    expect(errorCode(() => p.free(va))).toBe("bad-state");
    p.unpin(va, PAGE_SIZE);
    expect(p.pinnedBytes).toBe(3 * PAGE_SIZE);
    p.unpin(va + 100, 2 * PAGE_SIZE);
    expect(p.pinnedBytes).toBe(0);
    expect(errorCode(() => p.unpin(va, 1))).toBe("bad-state");
    expect(errorCode(() => p.pin(va + 8 * PAGE_SIZE, 1))).toBe("not-mapped");
    p.free(va);
    expect(errorCode(() => p.free(va))).toBe("bad-handle");
  });

  it("frees everything on destroy", () => {
    const { processes, frames } = memoryFixture();
    const p = processes.create("short-lived");
    const free = frames.freeFrameCount();
    const va = p.allocate(10 * PAGE_SIZE);
    p.allocate(LARGE_PAGE_SIZE, { largePages: true });
    p.pin(va, PAGE_SIZE);
    p.destroy();
    expect(frames.freeFrameCount()).toBe(free);
    expect(frames.framesOwnedBy(p.owner)).toBe(0);
    expect(p.destroyed).toBe(true);
    expect(processes.processes).not.toContain(p);
    expect(errorCode(() => processes.get(p.id))).toBe("bad-handle");
    expect(errorCode(() => p.allocate(1))).toBe("bad-handle");
  });

  it("rejects bad input", () => {
    const { processes } = memoryFixture();
    expect(errorCode(() => processes.create(""))).toBe("bad-handle");
    expect(errorCode(() => processes.create("x", { lockedMemoryLimit: -1 }))).toBe("bad-length");
    const p = processes.create("x");
    expect(errorCode(() => p.allocate(0))).toBe("bad-length");
    expect(errorCode(() => p.allocate(2 * 1024 * GiB))).toBe("bad-length");
    expect(errorCode(() => p.translate(-1))).toBe("not-mapped");
    expect(errorCode(() => p.read(2 ** 47, new Uint8Array(1)))).toBe("bad-address");
  });

  it.each([true, false])(
    "hands out zeroed pages, whatever the frames held before (coherent: %s)",
    (coherent) => {
      const { processes, kernel, frames, cpu, memory } = memoryFixture({
        coherent,
        ramRanges: [{ start: 0, end: 64 * 1024 }],
      });
      const owner = frames.registerOwner("previous");
      const va = kernel.allocateNonPaged(15 * PAGE_SIZE, { owner });
      kernel.write(va, new Uint8Array(15 * PAGE_SIZE).fill(0xaa));
      kernel.free(va);
      const p = processes.create("fresh");
      const user = p.allocate(15 * PAGE_SIZE);
      const seen = new Uint8Array(15 * PAGE_SIZE);
      p.read(user, seen);
      expect(seen.every((b) => b === 0)).toBe(true);
      cpu.writeBackAll();
      memory.read(0x1000, seen.subarray(0, 14 * PAGE_SIZE));
      expect(seen.every((b) => b === 0)).toBe(true);
    },
  );
});
