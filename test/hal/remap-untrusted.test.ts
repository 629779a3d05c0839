import { describe, expect, it } from "vitest";
import type { DmaBounceEvent } from "../../src/hal/hal-events.js";
import { FaultReason } from "../../src/iommu/fault-reason.js";
import { PAGE_SIZE } from "../../src/platform/page.js";
import { pattern, RemapRig, sameBytes } from "./remap-fixture.js";

const SECRET = new TextEncoder().encode("the neighbour's private key, same page");

/** Two small pool allocations that share one physical page: a DMA buffer and a secret. */
function sharedPage(rig: RemapRig): { buffer: number; secret: number } {
  const buffer = rig.kernel.allocateNonPaged(256, { owner: rig.testOwner });
  const secret = rig.kernel.allocateNonPaged(256, { owner: rig.testOwner });
  expect(rig.kernel.physicalAddress(secret) - (rig.kernel.physicalAddress(secret) % PAGE_SIZE)).toBe(
    rig.kernel.physicalAddress(buffer) - (rig.kernel.physicalAddress(buffer) % PAGE_SIZE),
  );
  rig.kernel.write(secret, SECRET);
  return { buffer, secret };
}

function contains(haystack: Uint8Array, needle: Uint8Array): boolean {
  return Buffer.from(haystack).includes(Buffer.from(needle));
}

describe("untrusted devices", () => {
  for (const mode of ["strict", "lazy"] as const) {
    it(`${mode}: a sub-page buffer is bounced, so the device cannot read the rest of its page`, () => {
      const rig = new RemapRig(mode);
      const device = rig.plug("thunderbolt-dock");
      const adapter = rig.open(device, { external: true });
      const { buffer } = sharedPage(rig);
      const data = pattern(256, 5);
      rig.kernel.write(buffer, data);
      const mdl = rig.mm.allocateMdl(buffer, 256);
      rig.mm.buildForNonPagedPool(mdl);

      const file = rig.remap.tryAllocateMapRegisters(adapter, 1)!;
      const piece = rig.remap.mapTransfer(adapter, file, mdl, buffer, 256, true);
      expect(rig.remap.resources().bouncePages).toBe(1);
      expect(sameBytes(device.read(piece.logicalAddress, 256).bytes, data)).toBe(true);
      const page = device.read(piece.logicalAddress - (piece.logicalAddress % PAGE_SIZE), PAGE_SIZE);
      expect(page.result.ok).toBe(true);
      expect(contains(page.bytes, SECRET)).toBe(false);
      const outside = page.bytes.slice();
      outside.fill(0, piece.logicalAddress % PAGE_SIZE, (piece.logicalAddress % PAGE_SIZE) + 256);
      expect(outside.every((b) => b === 0)).toBe(true);

      rig.remap.flushAdapterBuffers(adapter, file, mdl, buffer, 256, true);
      rig.remap.freeMapRegisters(file);
      expect(rig.remap.resources().bouncePages).toBe(0);
      // Always strict: the mapping is gone at once, even on a lazy machine.
      const after = device.read(piece.logicalAddress, 8).result;
      expect(after.ok ? 0 : after.faultReason).toBe(FaultReason.ReadNotPermitted);
      expect(rig.frames.framesOwnedBy(rig.frames.registerOwner("hal.swiotlb"))).toBe(0);
    });
  }

  it("copies back only the buffer's bytes of what the device wrote into a bounced page", () => {
    const rig = new RemapRig("strict");
    const device = rig.plug();
    const adapter = rig.open(device, { external: true });
    const { buffer, secret } = sharedPage(rig);
    const mdl = rig.mm.allocateMdl(buffer, 256);
    rig.mm.buildForNonPagedPool(mdl);
    const bounces: DmaBounceEvent[] = [];
    rig.machine.events.on("dma.bounce", (event) => bounces.push(event));

    const file = rig.remap.tryAllocateMapRegisters(adapter, 1)!;
    const piece = rig.remap.mapTransfer(adapter, file, mdl, buffer, 256, false);
    const base = piece.logicalAddress - (piece.logicalAddress % PAGE_SIZE);
    // The device writes the whole page: only its own 256 bytes may reach the buffer.
    expect(device.write(base, new Uint8Array(PAGE_SIZE).fill(0xee)).ok).toBe(true);
    rig.remap.flushAdapterBuffers(adapter, file, mdl, buffer, 256, false);
    rig.remap.freeMapRegisters(file);

    expect(rig.read(buffer, 256).every((b) => b === 0xee)).toBe(true);
    expect(sameBytes(rig.read(secret, SECRET.length), SECRET)).toBe(true);
    expect(bounces.map((b) => [b.direction, b.bytes])).toEqual([
      ["in", 256],
      ["out", 256],
    ]);
  });

  it("bounces only the partial first and last pages of a larger piece", () => {
    const rig = new RemapRig("strict");
    const device = rig.plug();
    const adapter = rig.open(device, { external: true });
    const data = pattern(4 * PAGE_SIZE, 6);
    const { mdl } = rig.buffer(4 * PAGE_SIZE, data);
    const offset = 1000;
    const length = 3 * PAGE_SIZE;
    const file = rig.remap.tryAllocateMapRegisters(adapter, 4)!;
    const piece = rig.remap.mapTransfer(adapter, file, mdl, mdl.virtualAddress + offset, length, true);
    expect(rig.remap.resources().bouncePages).toBe(2);
    expect(
      sameBytes(device.read(piece.logicalAddress, length).bytes, data.subarray(offset, offset + length)),
    ).toBe(true);
    // Before the buffer and after its end, the device sees zeros, not the rest of the pages.
    expect(device.read(piece.logicalAddress - offset, offset).bytes.every((b) => b === 0)).toBe(true);
    const tail = device.read(piece.logicalAddress + length, PAGE_SIZE - offset).bytes;
    expect(tail.every((b) => b === 0)).toBe(true);
    rig.remap.flushAdapterBuffers(adapter, file, mdl, mdl.virtualAddress + offset, length, true);
    rig.remap.freeMapRegisters(file);
    expect(rig.remap.resources().bouncePages).toBe(0);
  });

  it("maps a page-aligned whole-page buffer in place, without a bounce", () => {
    const rig = new RemapRig("strict");
    const adapter = rig.open(rig.plug(), { external: true });
    const { mdl } = rig.buffer(2 * PAGE_SIZE);
    const file = rig.remap.tryAllocateMapRegisters(adapter, 2)!;
    rig.remap.mapTransfer(adapter, file, mdl, mdl.virtualAddress, 2 * PAGE_SIZE, true);
    expect(rig.remap.resources().bouncePages).toBe(0);
    rig.remap.flushAdapterBuffers(adapter, file, mdl, mdl.virtualAddress, 2 * PAGE_SIZE, true);
    rig.remap.freeMapRegisters(file);
  });
});
