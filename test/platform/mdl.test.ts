import { describe, expect, it } from "vitest";
import { MAX_MDL_LENGTH } from "../../src/platform/memory-manager.js";
import { GiB, PAGE_SIZE } from "../../src/platform/page.js";
import { errorCode, memoryFixture } from "./memory-fixture.js";

interface Run {
  readonly pa: number;
  readonly length: number;
}

describe("MDLs", () => {
  it("describes a nonpaged buffer: start, offset, count and one PFN per spanned page", () => {
    const { kernel, mm, frames } = memoryFixture();
    const owner = frames.registerOwner("drv");
    const va = kernel.allocateNonPaged(4 * PAGE_SIZE, { owner });
    const mdl = mm.allocateMdl(va + 100, 2 * PAGE_SIZE);
    expect(mdl.startVa).toBe(va);
    expect(mdl.byteOffset).toBe(100);
    expect(mdl.byteCount).toBe(2 * PAGE_SIZE);
    expect(mdl.pfns).toEqual([]);
    expect(mm.virtualAddress(mdl)).toBe(va + 100);
    mm.buildForNonPagedPool(mdl);
    expect(mdl.pfns).toEqual(kernel.allocationAt(va)!.pfns.slice(0, 3));
    expect(mdl.flags.has("sourceIsNonPagedPool")).toBe(true);
    expect(mm.systemAddress(mdl)).toBe(va + 100);
    expect(errorCode(() => mm.buildForNonPagedPool(mdl))).toBe("bad-state");
    mm.freeMdl(mdl);
    expect(errorCode(() => mm.freeMdl(mdl))).toBe("double-free");
  });

  it("refuses to build an MDL over unmapped kernel memory", () => {
    const { kernel, mm, frames } = memoryFixture();
    const va = kernel.allocateNonPaged(PAGE_SIZE, { owner: frames.registerOwner("d") });
    const mdl = mm.allocateMdl(va, PAGE_SIZE + 1);
    expect(errorCode(() => mm.buildForNonPagedPool(mdl))).toBe("not-mapped");
    expect(mdl.pfns).toEqual([]);
    expect(errorCode(() => mm.probeAndLock(mdl, "read"))).toBe("not-mapped");
    expect(mdl.locked).toBe(false);
  });

  it("locks user pages, pins them, and maps them into system space", () => {
    const { mm, processes, kernel } = memoryFixture();
    const p = processes.create("app");
    const user = p.allocate(3 * PAGE_SIZE);
    const mdl = mm.allocateMdl(user + 10, 2 * PAGE_SIZE, { process: p });
    expect(errorCode(() => mm.systemAddress(mdl))).toBe("bad-state");
    mm.probeAndLock(mdl, "write");
    expect(mdl.locked).toBe(true);
    expect(mdl.flags.has("writeOperation")).toBe(true);
    expect(p.pinnedBytes).toBe(3 * PAGE_SIZE);
    expect(mdl.pfns[1]).toBe(p.translate(user + PAGE_SIZE) / PAGE_SIZE);
    const system = mm.systemAddress(mdl);
    expect(system % PAGE_SIZE).toBe(10);
    expect(mm.systemAddress(mdl)).toBe(system);
    kernel.write(system, new Uint8Array([42]));
    const seen = new Uint8Array(1);
    p.read(user + 10, seen);
    expect(seen[0]).toBe(42);
    expect(errorCode(() => mm.freeMdl(mdl))).toBe("bad-state");
    expect(errorCode(() => mm.probeAndLock(mdl, "read"))).toBe("bad-state");
    mm.unlock(mdl);
    expect(p.pinnedBytes).toBe(0);
    expect(kernel.isMapped(system, 1)).toBe(false);
    expect(errorCode(() => mm.unlock(mdl))).toBe("bad-state");
    mm.freeMdl(mdl);
  });

  it("leaves nothing locked when probing fails", () => {
    const { mm, processes } = memoryFixture();
    const p = processes.create("app", { lockedMemoryLimit: PAGE_SIZE });
    const user = p.allocate(2 * PAGE_SIZE);
    const tooBig = mm.allocateMdl(user, 2 * PAGE_SIZE, { process: p });
    expect(errorCode(() => mm.probeAndLock(tooBig, "read"))).toBe("no-memory");
    const hole = mm.allocateMdl(user + PAGE_SIZE, 2 * PAGE_SIZE, { process: p });
    expect(errorCode(() => mm.probeAndLock(hole, "read"))).toBe("not-mapped");
    expect(p.pinnedBytes).toBe(0);
    expect(tooBig.locked || hole.locked).toBe(false);
  });

  it("walks physical runs, merging adjacent frames and following the chain", () => {
    const { kernel, mm, frames } = memoryFixture();
    const owner = frames.registerOwner("d");
    const contiguous = kernel.allocateContiguous(3 * PAGE_SIZE, { owner, maxAddress: 4 * GiB - 1 });
    const scattered = kernel.allocateNonPaged(2 * PAGE_SIZE, { owner });
    const first = mm.allocateMdl(contiguous + 512, 2 * PAGE_SIZE);
    const second = mm.allocateMdl(scattered, 2 * PAGE_SIZE, { chainTo: first });
    expect(first.next).toBe(second);
    mm.buildForNonPagedPool(first);
    mm.buildForNonPagedPool(second);
    expect(mm.chainLength(first)).toBe(4 * PAGE_SIZE);
    const runs: Run[] = [];
    mm.physicalRuns(first, 0, 4 * PAGE_SIZE, (pa, length) => {
      runs.push({ pa, length });
    });
    const base = kernel.physicalAddress(contiguous);
    const [p0, p1] = kernel.allocationAt(scattered)!.pfns;
    expect(runs[0]).toEqual({ pa: base + 512, length: 2 * PAGE_SIZE });
    const rest =
      p1 === p0! + 1
        ? [{ pa: p0! * PAGE_SIZE, length: 2 * PAGE_SIZE }]
        : [
            { pa: p0! * PAGE_SIZE, length: PAGE_SIZE },
            { pa: p1! * PAGE_SIZE, length: PAGE_SIZE },
          ];
    expect(runs.slice(1)).toEqual(rest);
    const partial: Run[] = [];
    mm.physicalRuns(first, PAGE_SIZE, 2 * PAGE_SIZE, (pa, length) => {
      partial.push({ pa, length });
      return false;
    });
    expect(partial).toEqual([{ pa: base + 512 + PAGE_SIZE, length: PAGE_SIZE }]);
    expect(errorCode(() => mm.physicalRuns(first, 1, 4 * PAGE_SIZE, () => true))).toBe("out-of-range");
  });

  it("refuses runs over an MDL that has no pages yet, and bad lengths", () => {
    const { kernel, mm, frames, processes } = memoryFixture();
    const va = kernel.allocateNonPaged(PAGE_SIZE, { owner: frames.registerOwner("d") });
    const mdl = mm.allocateMdl(va, 10);
    expect(errorCode(() => mm.physicalRuns(mdl, 0, 10, () => true))).toBe("bad-state");
    expect(errorCode(() => mm.allocateMdl(va, 0))).toBe("bad-length");
    expect(errorCode(() => mm.allocateMdl(va, MAX_MDL_LENGTH + 1))).toBe("bad-length");
    expect(errorCode(() => mm.allocateMdl(0x1000, 10))).toBe("bad-address");
    const p = processes.create("app");
    expect(errorCode(() => mm.allocateMdl(va, 10, { process: p }))).toBe("bad-address");
    expect(mm.allocateMdl(va, MAX_MDL_LENGTH).pageCount).toBe(MAX_MDL_LENGTH / PAGE_SIZE);
  });
});
