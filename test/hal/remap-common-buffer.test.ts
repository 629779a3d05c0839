import { describe, expect, it } from "vitest";
import type { CommonBufferRequest } from "../../src/hal/dma-mapping-strategy.js";
import { FaultReason } from "../../src/iommu/fault-reason.js";
import { GiB, LARGE_PAGE_SIZE, MiB, PAGE_SIZE } from "../../src/platform/page.js";
import { PlatformError } from "../../src/platform/platform-error.js";
import { pattern, RemapRig, sameBytes } from "./remap-fixture.js";

function request(length: number, extra: Partial<CommonBufferRequest> = {}): CommonBufferRequest {
  return {
    length,
    minimumLogical: 0,
    maximumLogical: Number.MAX_SAFE_INTEGER,
    cacheEnabled: true,
    largePage: false,
    ...extra,
  };
}

describe("common buffers on the remapping path", () => {
  it("backs a buffer with scattered frames, logically contiguous for the device", () => {
    const rig = new RemapRig("strict");
    const device = rig.plug();
    const adapter = rig.open(device);
    const length = 5 * PAGE_SIZE + 123;
    const buffer = rig.remap.allocateCommonBuffer(adapter, request(length))!;
    expect(buffer.logicalAddress % PAGE_SIZE).toBe(0);
    const pfns = rig.kernel.allocationAt(buffer.virtualAddress)!.pfns;
    expect(pfns.every((pfn, i) => i === 0 || pfn === pfns[i - 1]! + 1)).toBe(false);
    const data = pattern(length, 11);
    expect(device.write(buffer.logicalAddress, data).ok).toBe(true);
    expect(sameBytes(rig.read(buffer.virtualAddress, length), data)).toBe(true);
    expect(rig.remap.resources()).toMatchObject({ commonBuffers: 1, iovaPages: 6 });
    rig.remap.freeCommonBuffer(buffer);
    const after = device.read(buffer.logicalAddress, 8).result;
    expect(after.ok ? 0 : after.faultReason).toBe(FaultReason.ReadNotPermitted);
    expect(rig.remap.resources()).toMatchObject({ commonBuffers: 0, iovaPages: 0 });
    expect(() => rig.remap.freeCommonBuffer(buffer)).toThrow(/already freed/);
  });

  it("honours logical bounds and the device's reach", () => {
    const rig = new RemapRig("strict");
    const adapter = rig.open(rig.plug(), { addressBits: 32 });
    const low = rig.remap.allocateCommonBuffer(
      adapter,
      request(PAGE_SIZE, { maximumLogical: 16 * MiB - 1 }),
    )!;
    expect(low.logicalAddress + PAGE_SIZE).toBeLessThanOrEqual(16 * MiB);
    const band = rig.remap.allocateCommonBuffer(
      adapter,
      request(2 * PAGE_SIZE, { minimumLogical: 1 * GiB, maximumLogical: 1 * GiB + 2 * PAGE_SIZE - 1 }),
    )!;
    expect(band.logicalAddress).toBe(1 * GiB);
    const reach = rig.remap.allocateCommonBuffer(adapter, request(PAGE_SIZE))!;
    expect(reach.logicalAddress).toBeLessThan(4 * GiB);
    expect(
      rig.remap.allocateCommonBuffer(adapter, request(PAGE_SIZE, { minimumLogical: 5 * GiB })),
    ).toBeUndefined();
    expect(
      rig.remap.allocateCommonBuffer(
        adapter,
        request(3 * PAGE_SIZE, { minimumLogical: 1 * GiB, maximumLogical: 1 * GiB + 3 * PAGE_SIZE - 1 }),
      ),
    ).toBeUndefined();
    for (const buffer of [low, band, reach]) rig.remap.freeCommonBuffer(buffer);
  });

  it("maps a large-page buffer 2 MiB aligned, with superpages when the frames are contiguous", () => {
    const rig = new RemapRig("lazy");
    const device = rig.plug();
    const adapter = rig.open(device);
    const buffer = rig.remap.allocateCommonBuffer(adapter, request(3 * MiB, { largePage: true }))!;
    expect(buffer.logicalAddress % LARGE_PAGE_SIZE).toBe(0);
    const domain = rig.remap.getDomain(adapter) as import("../../src/hal/dma-domain.js").DmaDomain;
    const first = domain.hardware.lookup(buffer.logicalAddress)!;
    expect(first.size).toBe(LARGE_PAGE_SIZE);
    expect(domain.hardware.lookup(buffer.logicalAddress + LARGE_PAGE_SIZE)!.size).toBe(LARGE_PAGE_SIZE);
    const data = pattern(3 * MiB, 12);
    expect(device.write(buffer.logicalAddress, data).ok).toBe(true);
    expect(sameBytes(rig.read(buffer.virtualAddress, data.length), data)).toBe(true);
    expect(rig.remap.resources().iovaPages).toBe(1024);
    rig.remap.freeCommonBuffer(buffer);
    // Lazy: the IOVA waits in the flush queue until its invalidation.
    expect(rig.remap.resources().iovaPages).toBe(1024);
    rig.machine.runUntilIdle();
    expect(rig.remap.resources().iovaPages).toBe(0);
  });

  it("makes a common buffer of a driver's MDL with the access it asks for", () => {
    const rig = new RemapRig("strict");
    const device = rig.plug();
    const adapter = rig.open(device);
    const data = pattern(4 * PAGE_SIZE, 13);
    const { mdl } = rig.buffer(4 * PAGE_SIZE, data);
    const base = { minimumLogical: 0, maximumLogical: Number.MAX_SAFE_INTEGER };

    const readOnly = rig.remap.createCommonBufferFromMdl(adapter, mdl, {
      ...base,
      offset: PAGE_SIZE,
      length: 2 * PAGE_SIZE,
      access: "read",
    })!;
    expect(readOnly.virtualAddress).toBe(mdl.virtualAddress + PAGE_SIZE);
    const seen = device.read(readOnly.logicalAddress, 2 * PAGE_SIZE);
    expect(sameBytes(seen.bytes, data.subarray(PAGE_SIZE, 3 * PAGE_SIZE))).toBe(true);
    const write = device.write(readOnly.logicalAddress, new Uint8Array(4));
    expect(write.ok ? 0 : write.faultReason).toBe(FaultReason.WriteNotPermitted);

    const writeOnly = rig.remap.createCommonBufferFromMdl(adapter, mdl, {
      ...base,
      offset: 0,
      length: PAGE_SIZE,
      access: "write",
    })!;
    expect(device.write(writeOnly.logicalAddress, new Uint8Array(4).fill(0x5a)).ok).toBe(true);
    const read = device.read(writeOnly.logicalAddress, 4).result;
    expect(read.ok ? 0 : read.faultReason).toBe(FaultReason.ReadNotPermitted);
    expect(rig.read(mdl.virtualAddress, 4)).toEqual(new Uint8Array(4).fill(0x5a));

    rig.remap.freeCommonBuffer(readOnly);
    rig.remap.freeCommonBuffer(writeOnly);
    // The MDL's pages stay the driver's.
    expect(rig.kernel.isMapped(mdl.virtualAddress, 4 * PAGE_SIZE)).toBe(true);
    expect(() =>
      rig.remap.createCommonBufferFromMdl(adapter, mdl, {
        ...base,
        offset: 100,
        length: PAGE_SIZE,
        access: "readwrite",
      }),
    ).toThrow(PlatformError);
  });
});
