import { describe, expect, it } from "vitest";
import { MemorySnapshot } from "../../src/platform/memory-snapshot.js";
import { GiB, PAGE_SIZE } from "../../src/platform/page.js";
import { memoryFixture } from "./memory-fixture.js";

describe("MemorySnapshot", () => {
  it("lists exactly the frames written since, with their owners, skipping excepted owners", () => {
    const { memory, frames, kernel } = memoryFixture();
    const dma = frames.registerOwner("dma-buffer");
    const secrets = frames.registerOwner("secrets");
    const buffer = kernel.allocateNonPaged(2 * PAGE_SIZE, { owner: dma });
    const secret = kernel.allocateNonPaged(PAGE_SIZE, { owner: secrets });
    kernel.write(buffer, new Uint8Array(2 * PAGE_SIZE).fill(1));
    kernel.write(secret, new Uint8Array(PAGE_SIZE).fill(2));
    const snapshot = MemorySnapshot.take(memory, frames, { exceptOwners: [dma] });
    expect(snapshot.recordedFrames).toBe(memory.touchedFrames - 2);

    // A device writes its buffer (allowed), the secret (not allowed) and a free frame (not allowed).
    memory.write(kernel.physicalAddress(buffer + PAGE_SIZE), new Uint8Array([9]));
    const secretPa = kernel.physicalAddress(secret) + 100;
    memory.write(secretPa, new Uint8Array([3]));
    const stray = 6 * GiB + 40 * PAGE_SIZE;
    memory.write(stray, new Uint8Array([0xff]));
    memory.write(stray + PAGE_SIZE, new Uint8Array(16));

    const expected = [
      { pfn: Math.floor(secretPa / PAGE_SIZE), owner: secrets, ownerName: "secrets" },
      { pfn: stray / PAGE_SIZE, owner: 0, ownerName: "free" },
    ].sort((x, y) => x.pfn - y.pfn);
    expect(snapshot.changedFrames()).toEqual(expected);
  });

  it("sees nothing when nothing changed, including rewrites of the same bytes", () => {
    const { memory, frames } = memoryFixture();
    memory.write(5 * GiB, new Uint8Array([1, 2, 3]));
    const snapshot = MemorySnapshot.take(memory, frames);
    memory.write(5 * GiB, new Uint8Array([1, 2, 3]));
    expect(snapshot.changedFrames()).toEqual([]);
    memory.write(5 * GiB + 2, new Uint8Array([4]));
    expect(snapshot.changedFrames().map((c) => c.pfn)).toEqual([(5 * GiB) / PAGE_SIZE]);
  });

  it("sees a freed frame's poison as a change", () => {
    const { memory, frames, kernel } = memoryFixture();
    const owner = frames.registerOwner("short");
    const va = kernel.allocateNonPaged(PAGE_SIZE, { owner });
    kernel.write(va, new Uint8Array([1]));
    const pfn = kernel.allocationAt(va)!.pfns[0]!;
    const snapshot = MemorySnapshot.take(memory, frames);
    kernel.free(va);
    expect(snapshot.changedFrames()).toEqual([{ pfn, owner: 0, ownerName: "free" }]);
  });
});
