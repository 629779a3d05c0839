import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { FaultReason } from "../../src/iommu/fault-reason.js";
import { IoPermission } from "../../src/iommu/io-page-table.js";
import { DmaPort } from "../../src/platform/dma-port.js";
import { GiB, LARGE_PAGE_SIZE, PAGE_SIZE } from "../../src/platform/page.js";
import { requesterId } from "../../src/platform/pci-address.js";
import { applyToModel, concreteOp, createRig, opArb, ReferenceMap, translate } from "./iommu-fixture.js";

const NIC = requesterId(0, 2, 0);
const DISK = requesterId(0, 3, 0);
const OTHER_BUS = requesterId(5, 0, 0);

describe("Iommu.translate", () => {
  it("agrees with the reference model after the strict-mode invalidations", () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 25 }), (ops) => {
        const rig = createRig({ iotlbEntries: 16 });
        const domain = rig.iommu.createDomain();
        rig.iommu.attach(NIC, domain);
        const model = new ReferenceMap();
        for (const spec of ops) {
          const op = concreteOp(model, spec);
          if (op === undefined) continue;
          if (applyToModel(model, op) !== undefined) continue;
          if (op.kind === "map") {
            domain.map(op.iova, op.physical, op.size, op.permissions);
          } else {
            domain.unmap(op.iova, op.size);
            rig.iommu.flushRange(domain, op.iova, op.size / PAGE_SIZE);
          }
          for (const address of model.probes()) {
            for (const access of ["read", "write"] as const) {
              const want = model.find(address);
              const needed = access === "read" ? IoPermission.Read : IoPermission.Write;
              const out = translate(rig, NIC, address, access);
              if (want !== undefined && (want.permissions & needed) !== 0) {
                expect(out.faultReason).toBe(0);
                expect(out.physicalAddress).toBe(want.physical);
                expect(out.length).toBeGreaterThan(0);
                expect(model.find(address + out.length - 1)?.physical).toBe(want.physical + out.length - 1);
              } else {
                expect(out.faultReason).toBe(
                  access === "read" ? FaultReason.ReadNotPermitted : FaultReason.WriteNotPermitted,
                );
              }
            }
          }
        }
      }),
      { numRuns: 40 },
    );
  });

  it("lets a device reach exactly what its domain maps; everything else faults with requester, address, reason", () => {
    const rig = createRig();
    const nicDomain = rig.iommu.createDomain();
    const diskDomain = rig.iommu.createDomain();
    nicDomain.map(0x10_0000, 4 * GiB, 2 * PAGE_SIZE, IoPermission.ReadWrite);
    nicDomain.map(0x20_0000, 5 * GiB, PAGE_SIZE, IoPermission.Read);
    diskDomain.map(0x10_0000, 6 * GiB, PAGE_SIZE, IoPermission.Write);
    rig.iommu.attach(NIC, nicDomain);
    rig.iommu.attach(DISK, diskDomain);

    expect(translate(rig, NIC, 0x10_1234, "write")).toEqual({
      physicalAddress: 4 * GiB + 0x1234,
      length: PAGE_SIZE - 0x234,
      faultReason: 0,
    });
    expect(translate(rig, NIC, 0x20_0010, "read").physicalAddress).toBe(5 * GiB + 0x10);
    expect(translate(rig, DISK, 0x10_0008, "write").physicalAddress).toBe(6 * GiB + 8);

    const attempts = [
      { rid: NIC, address: 0x20_0010, access: "write", reason: FaultReason.WriteNotPermitted },
      { rid: NIC, address: 0x30_0000, access: "read", reason: FaultReason.ReadNotPermitted },
      { rid: DISK, address: 0x10_1000, access: "write", reason: FaultReason.WriteNotPermitted },
      { rid: DISK, address: 0x10_0000, access: "read", reason: FaultReason.ReadNotPermitted },
      // Same bus, no context entry.
      {
        rid: requesterId(0, 4, 0),
        address: 0x10_0000,
        access: "read",
        reason: FaultReason.ContextEntryNotPresent,
      },
      // A bus without any context table: the root entry is not present.
      { rid: OTHER_BUS, address: 0x10_0000, access: "write", reason: FaultReason.RootEntryNotPresent },
      { rid: NIC, address: 2 ** 48, access: "read", reason: FaultReason.BeyondMgaw },
    ] as const;
    for (const attempt of attempts) {
      const out = translate(rig, attempt.rid, attempt.address, attempt.access);
      expect(out.faultReason).toBe(attempt.reason);
      expect(rig.faults.at(-1)).toEqual({
        unit: "dmar0",
        requesterId: attempt.rid,
        address: attempt.address,
        access: attempt.access,
        reason: attempt.reason,
        recorded: rig.faults.at(-1)!.recorded,
      });
    }
    expect(rig.faults).toHaveLength(attempts.length);
    expect(rig.counters.get("iommu.fault")).toBe(attempts.length);
  });

  it("counts IOTLB hits and misses, walks and their memory reads, context-cache hits and misses", () => {
    const rig = createRig();
    const domain = rig.iommu.createDomain({ superpages: false });
    domain.map(0, 4 * GiB, 2 * PAGE_SIZE, IoPermission.Read);
    rig.iommu.attach(NIC, domain);
    translate(rig, NIC, 0, "read");
    translate(rig, NIC, 8, "read");
    translate(rig, NIC, PAGE_SIZE, "read");
    expect(rig.counters.snapshot("iommu.")).toMatchObject({
      "iommu.iotlb.hit": 1,
      "iommu.iotlb.miss": 2,
      "iommu.walk": 2,
      "iommu.walk.reads": 8,
      "iommu.context-cache.miss": 1,
      "iommu.context-cache.hit": 1,
    });
  });

  it("shares one domain across two units, each with its own domain id", () => {
    const rig = createRig({
      units: [
        { name: "dmar0", requesters: [NIC] },
        { name: "dmar1", requesters: "rest" },
      ],
    });
    const [unit0, unit1] = rig.iommu.units;
    const other = rig.iommu.createDomain();
    rig.iommu.attach(requesterId(0, 9, 0), other);
    const shared = rig.iommu.createDomain();
    shared.map(0x40_0000, 4 * GiB, LARGE_PAGE_SIZE, IoPermission.ReadWrite);
    rig.iommu.attach(NIC, shared);
    rig.iommu.attach(DISK, shared);
    expect(rig.iommu.unitFor(NIC)).toBe(unit0);
    expect(rig.iommu.unitFor(DISK)).toBe(unit1);
    expect(shared.domainId(0)).toBe(2);
    expect(shared.domainId(1)).toBe(3);
    expect(unit1!.readContextEntry(DISK)).toMatchObject({ present: true, domainId: 3, translationType: 0 });
    expect(unit0!.readContextEntry(NIC).pageTableAddress).toBe(shared.pageTable.rootAddress);

    expect(translate(rig, NIC, 0x40_1000, "write").physicalAddress).toBe(4 * GiB + PAGE_SIZE);
    expect(translate(rig, DISK, 0x40_1000, "read").physicalAddress).toBe(4 * GiB + PAGE_SIZE);
    shared.unmap(0x40_1000, PAGE_SIZE);
    rig.iommu.flushRange(shared, 0x40_1000, 1);
    expect(rig.invalidations.filter((e) => e.kind === "iotlb-page")).toEqual([
      {
        unit: "dmar0",
        kind: "iotlb-page",
        domainId: 2,
        requesterId: 0,
        address: 0x40_1000,
        pages: 1,
        dropped: 1,
      },
      {
        unit: "dmar1",
        kind: "iotlb-page",
        domainId: 3,
        requesterId: 0,
        address: 0x40_1000,
        pages: 1,
        dropped: 1,
      },
    ]);
    expect(translate(rig, NIC, 0x40_1000, "write").faultReason).toBe(FaultReason.WriteNotPermitted);
    expect(translate(rig, DISK, 0x40_1000, "read").faultReason).toBe(FaultReason.ReadNotPermitted);
    expect(translate(rig, DISK, 0x40_2000, "read").physicalAddress).toBe(4 * GiB + 2 * PAGE_SIZE);

    rig.iommu.detach(NIC);
    expect(shared.domainId(0)).toBe(0);
    expect(unit0!.isDomainIdAllocated(2)).toBe(false);
    expect(translate(rig, NIC, 0x40_2000, "read").faultReason).toBe(FaultReason.ContextEntryNotPresent);
    expect(translate(rig, DISK, 0x40_2000, "read").faultReason).toBe(0);
  });

  it("passes a pass-through device's requests through untranslated and uncached", () => {
    const rig = createRig();
    rig.iommu.attachPassthrough(NIC);
    expect(rig.iommu.units[0]!.readContextEntry(NIC)).toMatchObject({
      present: true,
      translationType: 2,
      domainId: 1,
    });
    expect(translate(rig, NIC, 7 * GiB + 0x10, "write")).toEqual({
      physicalAddress: 7 * GiB + 0x10,
      length: PAGE_SIZE - 0x10,
      faultReason: 0,
    });
    expect(rig.iommu.units[0]!.iotlbSize).toBe(0);
    expect(translate(rig, DISK, 0x1000, "read").faultReason).toBe(FaultReason.ContextEntryNotPresent);
    // Switching the device to a domain makes its DMA translated from then on.
    const domain = rig.iommu.createDomain();
    rig.iommu.attach(NIC, domain);
    expect(translate(rig, NIC, 0x1000, "read").faultReason).toBe(FaultReason.ReadNotPermitted);
    expect(rig.iommu.attachment(NIC)).toBe(domain);
  });

  it("is the identity for everyone while translation is disabled (GSTS.TES clear)", () => {
    const rig = createRig({ translation: false });
    expect(translate(rig, OTHER_BUS, 5 * GiB + 0x42, "write")).toEqual({
      physicalAddress: 5 * GiB + 0x42,
      length: PAGE_SIZE - 0x42,
      faultReason: 0,
    });
    rig.iommu.setTranslationEnabled(true);
    expect(translate(rig, OTHER_BUS, 5 * GiB, "write").faultReason).toBe(FaultReason.RootEntryNotPresent);
    expect(rig.faults).toHaveLength(1);
  });

  it("never translates the interrupt window 0xFEE00000-0xFEEFFFFF", () => {
    const rig = createRig();
    expect(translate(rig, NIC, 0xfee0_1004, "write")).toEqual({
      physicalAddress: 0xfee0_1004,
      length: 0xfef0_0000 - 0xfee0_1004,
      faultReason: 0,
    });
    expect(translate(rig, NIC, 0xfef0_0000, "write").faultReason).toBe(FaultReason.RootEntryNotPresent);
    expect(rig.faults).toHaveLength(1);
  });

  it("faults on corrupted tables as hardware does: bad pointers, reserved bits, bad context entries", () => {
    const rig = createRig();
    const unit = rig.iommu.units[0]!;
    const domain = rig.iommu.createDomain({ superpages: false });
    domain.map(0, 4 * GiB, PAGE_SIZE, IoPermission.ReadWrite);
    domain.map(GiB, 4 * GiB, PAGE_SIZE, IoPermission.ReadWrite);
    rig.iommu.attach(NIC, domain);
    const word = new Uint32Array(1);
    const bytes = new Uint8Array(word.buffer);
    const readWord = (address: number): number => {
      rig.memory.read(address, bytes);
      return word[0]!;
    };
    const writeWord = (address: number, value: number): void => {
      word[0] = value;
      rig.memory.write(address, bytes);
    };
    const root = domain.pageTable.rootAddress;
    const l3 = readWord(root + 4) * 2 ** 32 + (readWord(root) & 0xfffff000);

    // Reserved bit 11 in the level-3 entry of IOVA 0: 0xC.
    writeWord(l3, readWord(l3) | 0x800);
    unit.invalidateIotlbGlobal();
    expect(translate(rig, NIC, 0, "read").faultReason).toBe(FaultReason.PagingEntryReserved);
    // The level-3 entry of IOVA 1 GiB points into the MMIO hole: 0x7.
    writeWord(l3 + 8, (3.5 * GiB + 3) >>> 0);
    writeWord(l3 + 12, 0);
    expect(translate(rig, NIC, GiB, "read").faultReason).toBe(FaultReason.InvalidNextLevelTable);

    // Context entry with TT = 3 (reserved): 0x3 once the context-cache forgets the good one.
    const rootEntry = unit.rootTableAddress;
    const contextTable = readWord(rootEntry + 4) * 2 ** 32 + (readWord(rootEntry) & 0xfffff000);
    const entry = contextTable + (NIC & 0xff) * 16;
    const good = readWord(entry);
    writeWord(entry, good | 0xc);
    expect(translate(rig, NIC, 0x10, "read").faultReason).toBe(FaultReason.PagingEntryReserved);
    unit.invalidateContextGlobal();
    expect(translate(rig, NIC, 0x10, "read").faultReason).toBe(FaultReason.InvalidContextEntry);
    // Reserved bits in word 3 of the context entry: 0xB.
    writeWord(entry, good);
    writeWord(entry + 12, 1);
    expect(translate(rig, NIC, 0x10, "read").faultReason).toBe(FaultReason.ContextEntryReserved);
  });

  it("uses the context-cache until it is invalidated (generation-number global invalidation)", () => {
    const rig = createRig();
    const unit = rig.iommu.units[0]!;
    const domain = rig.iommu.createDomain();
    domain.map(0, 4 * GiB, 4 * PAGE_SIZE, IoPermission.Read);
    rig.iommu.attach(NIC, domain);
    expect(translate(rig, NIC, 0, "read").faultReason).toBe(0);
    // Software clears the context entry behind the hardware's back.
    unit.clearContextEntry(NIC);
    expect(translate(rig, NIC, PAGE_SIZE, "read").faultReason).toBe(0);
    unit.invalidateContextDomain(domain.domainId(0));
    expect(translate(rig, NIC, 2 * PAGE_SIZE, "read").faultReason).toBe(FaultReason.ContextEntryNotPresent);
    // And again with the global (generation) invalidation.
    rig.iommu.attach(DISK, domain);
    expect(translate(rig, DISK, 0, "read").faultReason).toBe(0);
    unit.clearContextEntry(DISK);
    expect(translate(rig, DISK, PAGE_SIZE, "read").faultReason).toBe(0);
    unit.invalidateContextGlobal();
    expect(translate(rig, DISK, 2 * PAGE_SIZE, "read").faultReason).toBe(FaultReason.ContextEntryNotPresent);
  });

  it("stands behind the DMA choke point: a device's bytes land where its domain maps them, and stop at a fault", () => {
    const rig = createRig();
    const domain = rig.iommu.createDomain();
    // Two IOVA-contiguous pages backed by scattered physical pages.
    domain.map(0x10_0000, 5 * GiB + 7 * PAGE_SIZE, PAGE_SIZE, IoPermission.Write);
    domain.map(0x10_1000, 4 * GiB + 3 * PAGE_SIZE, PAGE_SIZE, IoPermission.Write);
    rig.iommu.attach(NIC, domain);
    const port = new DmaPort(
      NIC,
      { busMasterEnabled: true },
      rig.memory,
      rig.iommu,
      rig.events,
      rig.counters,
    );
    const data = new Uint8Array(2 * PAGE_SIZE).map((_, i) => i & 0xff);
    expect(port.write(0x10_0000, data).ok).toBe(true);
    const check = new Uint8Array(PAGE_SIZE);
    rig.memory.read(4 * GiB + 3 * PAGE_SIZE, check);
    expect(check).toEqual(data.subarray(PAGE_SIZE));
    const result = port.write(0x10_1800, new Uint8Array(PAGE_SIZE));
    expect(result).toMatchObject({ ok: false, kind: "iommu-fault", address: 0x10_2000, faultReason: 5 });
    expect(port.read(0x10_0000, new Uint8Array(16))).toMatchObject({ ok: false, faultReason: 6 });
    expect(rig.faults.map((f) => [f.address, f.access, f.reason])).toEqual([
      [0x10_2000, "write", 5],
      [0x10_0000, "read", 6],
    ]);
  });
});
