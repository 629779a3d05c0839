import { describe, expect, it } from "vitest";
import diskModule from "../../drivers/disk/disk-module.js";
import nicModule from "../../drivers/nic/nic-module.js";
import { HostMemory, patternBytes, sameBytes } from "../../samples/host-memory.js";
import { DiskController } from "../../src/devices/disk-controller.js";
import { MemoryDiskImage } from "../../src/devices/memory-disk-image.js";
import { FaultReason } from "../../src/iommu/fault-reason.js";
import { IoPermission } from "../../src/iommu/io-page-table.js";
import { MiB, PAGE_SIZE } from "../../src/platform/page.js";
import { CachingModeIommu } from "../../src/virt/caching-mode-iommu.js";
import type { Guest } from "../../src/virt/guest.js";
import type { VirtHypercallEvent } from "../../src/virt/virt-events.js";
import {
  assignNic,
  assignRogue,
  DmaLanding,
  diskTraffic,
  errorCode,
  faultsOf,
  guest,
  host,
  nicTraffic,
  startGuest,
} from "./virt-fixture.js";

/** A page of guest memory holding `data`, by its guest-physical address. */
function guestPage(vm: Guest, data: Uint8Array): number {
  const buffer = new HostMemory(vm.machine).allocate(PAGE_SIZE);
  new HostMemory(vm.machine).write(buffer.va, data);
  return buffer.physicalAddress;
}

describe("a trapped guest: an IOMMU in caching mode, shadowed by the hypervisor", () => {
  it("runs the unmodified nic and disk drivers, strict and lazy, DMA only in the guest's frames", () => {
    for (const remapping of ["strict", "lazy"] as const) {
      const vh = host();
      const vm = guest(vh, { dmaInterface: "trapped", remapping, modules: [nicModule, diskModule] });
      expect(vm.machine.iommu).toBeInstanceOf(CachingModeIommu);
      const { nic, assignment } = assignNic(vh, vm);
      const image = new MemoryDiskImage(16 * MiB);
      const disk = new DiskController(image);
      vh.host.pci.attach(disk);
      const diskAssignment = vh.hypervisor.assignDevice(vm, disk.requesterId);
      expect(assignment.mode).toBe("blocked");
      startGuest(vm);
      expect(assignment.mode).toBe("shadow");
      const landings = [assignment, diskAssignment].map((a) => new DmaLanding(vh.host, vm, a));
      expect(nicTraffic(vh.host, vm, assignment.guestRequesterId, nic.mac, 1).intact).toBe(true);
      expect(diskTraffic(vh.host, vm, diskAssignment.guestRequesterId, image, 1).intact).toBe(true);
      vh.host.runUntilIdle();
      expect(landings.every((l) => l.pages > 0 && l.foreign === 0)).toBe(true);
      expect(vh.host.iommu.serviceFaults()).toEqual([]);
      expect(vm.hypercalls.hypercalls).toBeGreaterThan(0);
    }
  });

  it("mirrors the guest's mappings: usable once mapped and flushed, gone once unmapped and flushed", () => {
    const vh = host();
    const vm = guest(vh, { dmaInterface: "trapped" });
    const { rogue, assignment } = assignRogue(vh, vm);
    const faults = faultsOf(vh.host, rogue.requesterId);
    expect(rogue.read(0x1000, 16).outcome).toBe("blocked");
    // Nothing on the host bus has a context entry yet: the root entry itself is not present.
    expect([FaultReason.RootEntryNotPresent, FaultReason.ContextEntryNotPresent]).toContain(
      faults.faults[0]?.reason,
    );

    const iommu = vm.machine.iommu;
    const domain = iommu.createDomain();
    iommu.attach(assignment.guestRequesterId, domain);
    expect(assignment.mode).toBe("shadow");
    const data = patternBytes(PAGE_SIZE, 8);
    const gpa = guestPage(vm, data);
    const iova = 0x7000_0000;
    domain.map(iova, gpa, PAGE_SIZE, IoPermission.Read);
    // Caching mode: not usable until the guest invalidates.
    expect(rogue.read(iova, 16).outcome).toBe("blocked");
    iommu.flushRange(domain, iova, 1);
    const read = rogue.read(iova, PAGE_SIZE);
    expect(read.outcome).toBe("complete");
    expect(sameBytes(read.bytes, data)).toBe(true);
    expect(assignment.domain!.lookup(iova)?.physicalAddress).toBe(vm.hostAddress(gpa));
    // The guest's permissions hold: it mapped the page read-only.
    expect(rogue.write(iova, new Uint8Array(4)).outcome).toBe("blocked");

    domain.unmap(iova, PAGE_SIZE);
    iommu.flushRange(domain, iova, 1);
    expect(rogue.read(iova, 16).outcome).toBe("blocked");
    expect(assignment.domain!.lookup(iova)).toBeUndefined();
  });

  it("shadows nothing a guest points outside its own RAM", () => {
    const vh = host();
    const vm = guest(vh, { dmaInterface: "trapped" });
    const { rogue, assignment } = assignRogue(vh, vm);
    const iommu = vm.machine.iommu;
    const domain = iommu.createDomain();
    iommu.attach(assignment.guestRequesterId, domain);
    const hostPage = 256 * MiB;
    domain.map(0x10000, hostPage, PAGE_SIZE, IoPermission.ReadWrite);
    iommu.flushRange(domain, 0x10000, 1);
    expect(assignment.domain!.lookup(0x10000)).toBeUndefined();
    expect(rogue.read(0x10000, 64).outcome).toBe("blocked");
  });

  it("replays a populated guest domain to a device attached later, and follows pass-through", () => {
    const vh = host();
    const vm = guest(vh, { dmaInterface: "trapped" });
    const first = assignRogue(vh, vm);
    const second = assignRogue(vh, vm);
    const iommu = vm.machine.iommu;
    const domain = iommu.createDomain();
    iommu.attach(first.assignment.guestRequesterId, domain);
    const data = patternBytes(64, 9);
    const gpa = guestPage(vm, data);
    domain.map(0x20000, gpa, PAGE_SIZE, IoPermission.ReadWrite);
    iommu.flushRange(domain, 0x20000, 1);
    iommu.attach(second.assignment.guestRequesterId, domain);
    expect(sameBytes(second.rogue.read(0x20000, 64).bytes, data)).toBe(true);
    iommu.attachPassthrough(second.assignment.guestRequesterId);
    expect(second.assignment.mode).toBe("static");
    expect(sameBytes(second.rogue.read(gpa, 64).bytes, data)).toBe(true);
    iommu.detach(second.assignment.guestRequesterId);
    expect(second.assignment.mode).toBe("blocked");
    expect(second.rogue.read(gpa, 64).outcome).toBe("blocked");
  });

  it("traps once per page or once per range, each trap charged as configured", () => {
    const trapNs = 1_000;
    const perPageNs = 10;
    const traps: Record<string, VirtHypercallEvent[]> = { page: [], range: [] };
    for (const invalidation of ["page", "range"] as const) {
      const vh = host("strict", { trapNs, perPageNs });
      const vm = guest(vh, { dmaInterface: "trapped", invalidation });
      vh.host.events.on("virt.hypercall", (e) => traps[invalidation]!.push(e));
      const iommu = vm.machine.iommu;
      const domain = iommu.createDomain();
      domain.map(0x40000, 0x100000, 8 * PAGE_SIZE, IoPermission.ReadWrite);
      iommu.flushRange(domain, 0x40000, 8);
      const totals = vm.hypercalls;
      expect(totals.ns).toBe(totals.hypercalls * trapNs + totals.pages * perPageNs);
      expect(vh.host.counters.get("virt.hypercall.ns")).toBe(totals.ns);
      expect(vm.counters.get("virt.hypercall.invalidate-pages")).toBe(invalidation === "page" ? 8 : 1);
    }
    expect(traps.page!.map((e) => e.pages)).toEqual([1, 1, 1, 1, 1, 1, 1, 1]);
    expect(traps.range!.map((e) => [e.kind, e.pages, e.costNs])).toEqual([["invalidate-pages", 8, 1_080]]);
  });

  it("re-checks known pages on a domain-selective invalidation", () => {
    const vh = host();
    const vm = guest(vh, { dmaInterface: "trapped" });
    const { rogue, assignment } = assignRogue(vh, vm);
    const iommu = vm.machine.iommu;
    const domain = iommu.createDomain();
    iommu.attach(assignment.guestRequesterId, domain);
    const gpa = guestPage(vm, patternBytes(PAGE_SIZE, 2));
    domain.map(0x30000, gpa, PAGE_SIZE, IoPermission.ReadWrite);
    domain.map(0x31000, gpa, PAGE_SIZE, IoPermission.ReadWrite);
    iommu.flushRange(domain, 0x30000, 2);
    domain.unmap(0x30000, 2 * PAGE_SIZE);
    iommu.flushDomain(domain);
    expect(vm.counters.get("virt.hypercall.invalidate-domain")).toBe(1);
    expect(rogue.read(0x31000, 16).outcome).toBe("blocked");
    expect(assignment.domain!.lookup(0x30000)).toBeUndefined();
  });

  it("refuses to assign to a trapped guest on a host without remapping", () => {
    const vh = host("off");
    const vm = guest(vh, { dmaInterface: "trapped" });
    const nic = vh.host.pci.devices().length;
    expect(nic).toBe(0);
    expect(errorCode(() => assignNic(vh, vm))).toBe("bad-state");
  });
});
