import { describe, expect, it } from "vitest";
import { describeFaultReason, FaultReason } from "../../src/iommu/fault-reason.js";
import { FECTL_IM, FECTL_IP, FSTS_PFO, FSTS_PPF } from "../../src/iommu/fault-recorder.js";
import { IoPermission } from "../../src/iommu/io-page-table.js";
import { GiB, PAGE_SIZE } from "../../src/platform/page.js";
import { requesterId } from "../../src/platform/pci-address.js";
import { createRig, translate } from "./iommu-fixture.js";

const device = (n: number): number => requesterId(0, n, 0);

describe("fault recording (VT-d primary fault logging)", () => {
  it("records source id, page address, access type and reason, and raises one fault event", () => {
    const rig = createRig({ faultRecords: 4 });
    const faults = rig.iommu.units[0]!.faults;
    translate(rig, device(2), 0x1234_5678, "write");
    expect(faults.status).toBe(FSTS_PPF);
    expect(faults.read(0)).toEqual({
      unit: "dmar0",
      index: 0,
      requesterId: device(2),
      address: 0x1234_5000,
      access: "write",
      reason: FaultReason.RootEntryNotPresent,
    });
    expect(rig.interrupts).toEqual(["dmar0"]);
    translate(rig, device(3), 0x9000, "read");
    expect(faults.read(1)).toMatchObject({ requesterId: device(3), address: 0x9000, access: "read" });
    // PPF was already set: no second interrupt.
    expect(rig.interrupts).toHaveLength(1);
    expect(describeFaultReason(FaultReason.WriteNotPermitted)).toBe("PTE Write access is not set");
  });

  it("collapses faults from a source id that has a pending record", () => {
    const rig = createRig({ faultRecords: 4 });
    for (let i = 0; i < 5; i++) translate(rig, device(2), i * PAGE_SIZE, "read");
    expect(rig.faults.map((f) => f.recorded)).toEqual([true, false, false, false, false]);
    expect(rig.counters.get("iommu.fault")).toBe(5);
    expect(rig.counters.get("iommu.fault.collapsed")).toBe(4);
    expect(rig.iommu.units[0]!.faults.read(1)).toBeUndefined();
  });

  it("overflows when the next record is still pending, and re-arms once software clears the records", () => {
    const rig = createRig({ faultRecords: 4 });
    const faults = rig.iommu.units[0]!.faults;
    for (let n = 1; n <= 6; n++) translate(rig, device(n), n * PAGE_SIZE, "write");
    expect(rig.faults.map((f) => f.recorded)).toEqual([true, true, true, true, false, false]);
    expect(faults.status & FSTS_PFO).toBe(FSTS_PFO);
    expect(rig.counters.get("iommu.fault.overflow")).toBe(2);
    expect(rig.interrupts).toHaveLength(1);

    // Linux dmar_fault: read from FRI while F is set, clear each, then clear PFO.
    const serviced = rig.iommu.serviceFaults();
    expect(serviced.map((r) => [r.index, r.requesterId, r.address])).toEqual([
      [0, device(1), PAGE_SIZE],
      [1, device(2), 2 * PAGE_SIZE],
      [2, device(3), 3 * PAGE_SIZE],
      [3, device(4), 4 * PAGE_SIZE],
    ]);
    expect(faults.status).toBe(0);
    expect(rig.iommu.serviceFaults()).toEqual([]);

    // Re-armed: the next fault is recorded (slot 0 again, FRI = 0) and raises a new event.
    translate(rig, device(5), 0x5000, "read");
    expect(rig.faults.at(-1)!.recorded).toBe(true);
    expect(faults.status).toBe(FSTS_PPF);
    expect(rig.interrupts).toHaveLength(2);
  });

  it("starts reading at FRI after the ring wrapped", () => {
    const rig = createRig({ faultRecords: 2 });
    const faults = rig.iommu.units[0]!.faults;
    translate(rig, device(1), 0, "read");
    faults.clear(0);
    faults.writeStatus(FSTS_PFO);
    translate(rig, device(2), 0, "read");
    translate(rig, device(3), 0, "read");
    // Slot 1 then slot 0: FRI points at 1.
    expect((faults.status >> 8) & 0xff).toBe(1);
    expect(rig.iommu.serviceFaults().map((r) => r.requesterId)).toEqual([device(2), device(3)]);
  });

  it("holds the fault event while FECTL.IM is set and sends it on unmask", () => {
    const rig = createRig();
    const faults = rig.iommu.units[0]!.faults;
    faults.writeControl(FECTL_IM);
    translate(rig, device(1), 0, "read");
    expect(faults.control).toBe((FECTL_IM | FECTL_IP) >>> 0);
    expect(rig.interrupts).toEqual([]);
    faults.writeControl(0);
    expect(rig.interrupts).toEqual(["dmar0"]);
    expect(faults.control & FECTL_IP).toBe(0);
  });

  it("suppresses qualified faults of a context with FPD set, but still counts them", () => {
    const rig = createRig();
    const domain = rig.iommu.createDomain();
    domain.map(0, 4 * GiB, PAGE_SIZE, IoPermission.Read);
    rig.iommu.attach(device(1), domain, { faultProcessingDisable: true });
    expect(rig.iommu.units[0]!.readContextEntry(device(1)).faultProcessingDisable).toBe(true);
    const out = translate(rig, device(1), 0, "write");
    expect(out.faultReason).toBe(FaultReason.WriteNotPermitted);
    expect(translate(rig, device(1), 0, "read").faultReason).toBe(0);
    expect(rig.faults).toEqual([]);
    expect(rig.iommu.units[0]!.faults.status).toBe(0);
    expect(rig.counters.get("iommu.fault")).toBe(1);
    expect(rig.counters.get("iommu.fault.suppressed")).toBe(1);
  });

  it("reports non-qualified faults even with FPD set (reserved context bits)", () => {
    const rig = createRig();
    const domain = rig.iommu.createDomain();
    rig.iommu.attach(device(1), domain, { faultProcessingDisable: true });
    const unit = rig.iommu.units[0]!;
    const word = new Uint32Array(2);
    const bytes = new Uint8Array(word.buffer);
    rig.memory.read(unit.rootTableAddress, bytes);
    const entry = word[1]! * 2 ** 32 + (word[0]! & 0xfffff000) + (device(1) & 0xff) * 16;
    rig.memory.write(entry + 12, new Uint8Array([1, 0, 0, 0]));
    expect(translate(rig, device(1), 0, "read").faultReason).toBe(FaultReason.ContextEntryReserved);
    expect(rig.faults).toHaveLength(1);
    expect(rig.faults[0]!.recorded).toBe(true);
  });
});
