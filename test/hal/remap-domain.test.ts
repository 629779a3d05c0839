import { describe, expect, it } from "vitest";
import { DmaDomain } from "../../src/hal/dma-domain.js";
import type { CommonBufferRequest } from "../../src/hal/dma-mapping-strategy.js";
import {
  STATUS_INVALID_PARAMETER,
  STATUS_RESOURCE_IN_USE,
  STATUS_SUCCESS,
} from "../../src/hal/wdm/ntstatus.js";
import { FaultReason } from "../../src/iommu/fault-reason.js";
import { PAGE_SIZE } from "../../src/platform/page.js";
import { requesterId } from "../../src/platform/pci-address.js";
import { pattern, RemapRig, sameBytes } from "./remap-fixture.js";

const ANYWHERE: CommonBufferRequest = {
  length: 3 * PAGE_SIZE,
  minimumLogical: 0,
  maximumLogical: Number.MAX_SAFE_INTEGER,
  cacheEnabled: true,
  largePage: false,
};

describe("DMA domains", () => {
  it("gives every device a private domain: one device cannot reach another's mappings", () => {
    const rig = new RemapRig("strict");
    const a = rig.plug("a");
    const b = rig.plug("b");
    const adapterA = rig.open(a);
    const adapterB = rig.open(b);
    expect(rig.remap.getDomain(adapterA)).not.toBe(rig.remap.getDomain(adapterB));
    const buffer = rig.remap.allocateCommonBuffer(adapterA, ANYWHERE)!;
    expect(a.read(buffer.logicalAddress, 8).result.ok).toBe(true);
    const stranger = b.read(buffer.logicalAddress, 8).result;
    expect(stranger.ok ? 0 : stranger.faultReason).toBe(FaultReason.ReadNotPermitted);
    rig.remap.freeCommonBuffer(buffer);
  });

  it("shares one domain between adapters after JoinDmaDomain: same logical addresses", () => {
    const rig = new RemapRig("strict");
    const a = rig.plug("a");
    const b = rig.plug("b");
    const adapterA = rig.open(a);
    const adapterB = rig.open(b);
    const shared = rig.remap.getDomain(adapterA);
    expect(shared).toBeInstanceOf(DmaDomain);
    expect(rig.remap.joinDomain(adapterB, shared)).toBe(STATUS_SUCCESS);
    expect(rig.remap.getDomain(adapterB)).toBe(shared);

    const ring = rig.remap.allocateDomainCommonBuffer(adapterA, shared, ANYWHERE)!;
    const data = pattern(ANYWHERE.length, 7);
    expect(a.write(ring.logicalAddress, data).ok).toBe(true);
    const seen = b.read(ring.logicalAddress, data.length);
    expect(seen.result.ok).toBe(true);
    expect(sameBytes(seen.bytes, data)).toBe(true);
    expect(sameBytes(rig.read(ring.virtualAddress, data.length), data)).toBe(true);

    // A transfer mapped by B lands in the shared table too.
    const { mdl } = rig.buffer(PAGE_SIZE, pattern(PAGE_SIZE, 8));
    const file = rig.remap.tryAllocateMapRegisters(adapterB, 1)!;
    const piece = rig.remap.mapTransfer(adapterB, file, mdl, mdl.virtualAddress, PAGE_SIZE, true);
    expect(a.read(piece.logicalAddress, 8).result.ok).toBe(true);
    rig.remap.flushAdapterBuffers(adapterB, file, mdl, mdl.virtualAddress, PAGE_SIZE, true);
    rig.remap.freeMapRegisters(file);
    rig.remap.freeCommonBuffer(ring);

    expect(rig.remap.leaveDomain(adapterB)).toBe(STATUS_SUCCESS);
    expect(rig.remap.getDomain(adapterB)).not.toBe(shared);
    const again = rig.remap.allocateDomainCommonBuffer(adapterA, shared, ANYWHERE)!;
    const left = b.read(again.logicalAddress, 8).result;
    expect(left.ok).toBe(false);
    rig.remap.freeCommonBuffer(again);
  });

  it("refuses to move a device that has something mapped, and unknown domain handles", () => {
    const rig = new RemapRig("lazy");
    const adapterA = rig.open(rig.plug("a"));
    const adapterB = rig.open(rig.plug("b"));
    const target = rig.remap.getDomain(adapterA);
    const file = rig.remap.tryAllocateMapRegisters(adapterB, 1)!;
    expect(rig.remap.joinDomain(adapterB, target)).toBe(STATUS_RESOURCE_IN_USE);
    rig.remap.freeMapRegisters(file);
    const buffer = rig.remap.allocateCommonBuffer(adapterB, ANYWHERE)!;
    expect(rig.remap.joinDomain(adapterB, target)).toBe(STATUS_RESOURCE_IN_USE);
    expect(rig.remap.leaveDomain(adapterB)).toBe(STATUS_RESOURCE_IN_USE);
    rig.remap.freeCommonBuffer(buffer);
    expect(rig.remap.joinDomain(adapterB, { kind: "DMA_DOMAIN" })).toBe(STATUS_INVALID_PARAMETER);
    expect(rig.remap.allocateDomainCommonBuffer(adapterB, target, ANYWHERE)).toBeUndefined();
    expect(rig.remap.joinDomain(adapterB, target)).toBe(STATUS_SUCCESS);
  });

  it("shares a domain across two IOMMU units, and a strict unmap invalidates on both", () => {
    const onSecond = requesterId(1, 0, 0);
    const rig = new RemapRig("strict", {
      iommuUnits: [
        { name: "dmar0", requesters: "rest" },
        { name: "dmar1", requesters: [onSecond] },
      ],
    });
    const a = rig.plug("a");
    const b = rig.plug("b", { bus: 1, device: 0 });
    expect(rig.iommu.unitFor(a.requesterId).name).toBe("dmar0");
    expect(rig.iommu.unitFor(b.requesterId).name).toBe("dmar1");
    const adapterA = rig.open(a);
    const adapterB = rig.open(b);
    expect(rig.remap.joinDomain(adapterB, rig.remap.getDomain(adapterA))).toBe(STATUS_SUCCESS);

    const data = pattern(PAGE_SIZE, 10);
    const { mdl } = rig.buffer(PAGE_SIZE, data);
    const file = rig.remap.tryAllocateMapRegisters(adapterA, 1)!;
    const { logicalAddress } = rig.remap.mapTransfer(
      adapterA,
      file,
      mdl,
      mdl.virtualAddress,
      PAGE_SIZE,
      true,
    );
    expect(sameBytes(a.read(logicalAddress, PAGE_SIZE).bytes, data)).toBe(true);
    expect(sameBytes(b.read(logicalAddress, PAGE_SIZE).bytes, data)).toBe(true);
    const invalidated: string[] = [];
    rig.machine.events.on("iommu.invalidate", (event) => invalidated.push(`${event.unit}:${event.kind}`));
    rig.remap.flushAdapterBuffers(adapterA, file, mdl, mdl.virtualAddress, PAGE_SIZE, true);
    rig.remap.freeMapRegisters(file);
    expect(invalidated.sort()).toEqual(["dmar0:iotlb-page", "dmar1:iotlb-page"]);
    expect(a.read(logicalAddress, 8).result.ok).toBe(false);
    expect(b.read(logicalAddress, 8).result.ok).toBe(false);
  });

  it("puts every adapter of one device in the device's domain", () => {
    const rig = new RemapRig("strict");
    const device = rig.plug();
    const reads = rig.open(device);
    const writes = rig.open(device, { addressBits: 32 });
    expect(rig.remap.getDomain(writes)).toBe(rig.remap.getDomain(reads));
    const buffer = rig.remap.allocateCommonBuffer(writes, ANYWHERE)!;
    expect(buffer.logicalAddress + buffer.length).toBeLessThanOrEqual(2 ** 32);
    rig.remap.closeAdapter(reads);
    expect(device.read(buffer.logicalAddress, 8).result.ok).toBe(true);
    rig.remap.freeCommonBuffer(buffer);
    rig.remap.closeAdapter(writes);
    const detached = device.read(buffer.logicalAddress, 8).result;
    expect(detached.ok ? 0 : detached.faultReason).toBe(FaultReason.ContextEntryNotPresent);
  });
});
