import { describe, expect, it } from "vitest";
import { FaultReason } from "../../src/iommu/fault-reason.js";
import { IoPermission } from "../../src/iommu/io-page-table.js";
import { Iotlb } from "../../src/iommu/iotlb.js";
import { GiB, LARGE_PAGE_SIZE, PAGE_SIZE } from "../../src/platform/page.js";
import { requesterId } from "../../src/platform/pci-address.js";
import { createRig, type Rig, translate } from "./iommu-fixture.js";

const NIC = requesterId(0, 2, 0);
const IOVA = 0x7f_0000;

function mappedRig(): Rig & { domain: ReturnType<Rig["iommu"]["createDomain"]> } {
  const rig = createRig();
  const domain = rig.iommu.createDomain();
  domain.map(IOVA, 4 * GiB, PAGE_SIZE, IoPermission.ReadWrite);
  rig.iommu.attach(NIC, domain);
  expect(translate(rig, NIC, IOVA, "write").physicalAddress).toBe(4 * GiB);
  return Object.assign(rig, { domain });
}

describe("IOTLB", () => {
  it("keeps translating an unmapped page until a page-selective invalidation", () => {
    const rig = mappedRig();
    rig.domain.unmap(IOVA, PAGE_SIZE);
    expect(rig.domain.lookup(IOVA)).toBeUndefined();
    // Stale: the device still reaches the old page.
    expect(translate(rig, NIC, IOVA + 0x10, "write").physicalAddress).toBe(4 * GiB + 0x10);
    // A page-selective invalidation of another page, or of another domain id, does not help.
    const unit = rig.iommu.units[0]!;
    unit.invalidateIotlbPages(rig.domain.domainId(0), IOVA + PAGE_SIZE, 0);
    unit.invalidateIotlbPages(1, IOVA, 0);
    expect(translate(rig, NIC, IOVA, "write").faultReason).toBe(0);
    unit.invalidateIotlbPages(rig.domain.domainId(0), IOVA, 0, true);
    expect(translate(rig, NIC, IOVA, "write").faultReason).toBe(FaultReason.WriteNotPermitted);
  });

  it("drops stale entries on a domain-selective invalidation", () => {
    const rig = mappedRig();
    rig.domain.unmap(IOVA, PAGE_SIZE);
    expect(translate(rig, NIC, IOVA, "read").faultReason).toBe(0);
    rig.iommu.flushDomain(rig.domain);
    expect(translate(rig, NIC, IOVA, "read").faultReason).toBe(FaultReason.ReadNotPermitted);
    expect(rig.counters.get("iommu.invalidate.iotlb-domain")).toBe(1);
  });

  it("drops stale entries on a global invalidation", () => {
    const rig = mappedRig();
    rig.domain.unmap(IOVA, PAGE_SIZE);
    rig.domain.map(IOVA, 5 * GiB, PAGE_SIZE, IoPermission.ReadWrite);
    // Remapped without invalidation: the old physical page is still used.
    expect(translate(rig, NIC, IOVA, "read").physicalAddress).toBe(4 * GiB);
    rig.iommu.units[0]!.invalidateIotlbGlobal();
    expect(translate(rig, NIC, IOVA, "read").physicalAddress).toBe(5 * GiB);
    expect(rig.counters.get("iommu.invalidate.iotlb-global")).toBe(1);
  });

  it("caches superpages as one entry, which a 4 KiB invalidation inside it drops", () => {
    const rig = createRig();
    const domain = rig.iommu.createDomain();
    domain.map(GiB, 6 * GiB, LARGE_PAGE_SIZE, IoPermission.Read);
    rig.iommu.attach(NIC, domain);
    const first = translate(rig, NIC, GiB + 5 * PAGE_SIZE, "read");
    expect(first).toEqual({
      physicalAddress: 6 * GiB + 5 * PAGE_SIZE,
      length: LARGE_PAGE_SIZE - 5 * PAGE_SIZE,
      faultReason: 0,
    });
    translate(rig, NIC, GiB + 100 * PAGE_SIZE, "read");
    expect(rig.counters.get("iommu.iotlb.hit")).toBe(1);
    expect(rig.iommu.units[0]!.iotlbSize).toBe(1);
    domain.unmap(GiB + 7 * PAGE_SIZE, PAGE_SIZE);
    expect(translate(rig, NIC, GiB + 7 * PAGE_SIZE, "read").faultReason).toBe(0);
    rig.iommu.flushRange(domain, GiB + 7 * PAGE_SIZE, 1);
    expect(rig.iommu.units[0]!.iotlbSize).toBe(0);
    expect(translate(rig, NIC, GiB + 7 * PAGE_SIZE, "read").faultReason).toBe(FaultReason.ReadNotPermitted);
    expect(translate(rig, NIC, GiB + 8 * PAGE_SIZE, "read").physicalAddress).toBe(6 * GiB + 8 * PAGE_SIZE);
  });

  it("flushRange covers the range with one naturally aligned 2^AM block per unit", () => {
    const rig = mappedRig();
    rig.iommu.flushRange(rig.domain, 3 * PAGE_SIZE, 2);
    rig.iommu.flushRange(rig.domain, 8 * PAGE_SIZE, 8);
    rig.iommu.flushRange(rig.domain, 0, 2 ** 19);
    expect(rig.invalidations.map(({ kind, address, pages }) => ({ kind, address, pages }))).toEqual([
      // Pages 3-4 straddle a 2-page boundary: the smallest aligned block holding both is 8 pages.
      { kind: "iotlb-page", address: 0, pages: 8 },
      { kind: "iotlb-page", address: 8 * PAGE_SIZE, pages: 8 },
      // Beyond CAP.MAMV (2^18 pages): domain-selective.
      { kind: "iotlb-domain", address: 0, pages: 0 },
    ]);
  });

  it("is bounded and replaces deterministically", () => {
    const run = (): Record<string, number> => {
      const rig = createRig({ iotlbEntries: 4 });
      const domain = rig.iommu.createDomain({ superpages: false });
      domain.map(0, 4 * GiB, 64 * PAGE_SIZE, IoPermission.Read);
      rig.iommu.attach(NIC, domain);
      for (let i = 0; i < 200; i++)
        translate(rig, NIC, (i % 4 === 3 ? 3 + ((i >> 2) % 6) : i % 3) * PAGE_SIZE, "read");
      expect(rig.iommu.units[0]!.iotlbSize).toBe(4);
      return rig.counters.snapshot("iommu.iotlb");
    };
    const a = run();
    expect(a["iommu.iotlb.hit"]).toBeGreaterThan(0);
    expect(a["iommu.iotlb.miss"]).toBeGreaterThan(4);
    expect(a["iommu.iotlb.hit"]! + a["iommu.iotlb.miss"]!).toBe(200);
    expect(run()).toEqual(a);
  });

  it("tags entries by requester: another device of the same domain walks for itself", () => {
    const rig = mappedRig();
    const disk = requesterId(0, 3, 0);
    rig.iommu.attach(disk, rig.domain);
    rig.domain.unmap(IOVA, PAGE_SIZE);
    expect(translate(rig, NIC, IOVA, "read").faultReason).toBe(0);
    expect(translate(rig, disk, IOVA, "read").faultReason).toBe(FaultReason.ReadNotPermitted);
  });

  it("a cached read-only entry does not grant a write", () => {
    const iotlb = new Iotlb(8);
    iotlb.insert(NIC, 2, 1, 0x5000, 0x9000, IoPermission.Read);
    expect(iotlb.lookup(NIC, 0x5008, IoPermission.Read)).toBeGreaterThanOrEqual(0);
    expect(iotlb.lookup(NIC, 0x5008, IoPermission.Write)).toBe(-1);
    expect(iotlb.lookup(NIC + 1, 0x5008, IoPermission.Read)).toBe(-1);
    expect(iotlb.invalidateDomain(3)).toBe(0);
    expect(iotlb.invalidateRange(2, 0x6000, PAGE_SIZE)).toBe(0);
    expect(iotlb.invalidateRange(2, 0x4000, 2 * PAGE_SIZE)).toBe(1);
    expect(iotlb.size).toBe(0);
  });
});
