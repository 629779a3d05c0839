import { describe, expect, it } from "vitest";
import { HostMemory, patternBytes, sameBytes } from "../../samples/host-memory.js";
import { LoopbackWire } from "../../src/devices/loopback-wire.js";
import { NicDevice } from "../../src/devices/nic-device.js";
import { FaultReason } from "../../src/iommu/fault-reason.js";
import { MiB, PAGE_SIZE } from "../../src/platform/page.js";
import {
  assignNic,
  assignRogue,
  DmaLanding,
  errorCode,
  faultsOf,
  GUEST_MEMORY,
  guest,
  host,
  nicTraffic,
  startGuest,
} from "./virt-fixture.js";

describe("device assignment to a native guest", () => {
  it("runs the unmodified nic driver in the guest, with every DMA page in the guest's frames", () => {
    const vh = host();
    const vm = guest(vh);
    const { nic, assignment } = assignNic(vh, vm);
    startGuest(vm);
    const landing = new DmaLanding(vh.host, vm, assignment);
    const traffic = nicTraffic(vh.host, vm, assignment.guestRequesterId, nic.mac, 1);
    expect(traffic.intact).toBe(true);
    expect(landing.pages).toBeGreaterThan(0);
    expect(landing.foreign).toBe(0);
    expect(landing.atGuestPhysical).toBe(landing.pages);
    expect(vh.host.iommu.serviceFaults()).toEqual([]);
  });

  it("maps every guest page at its guest-physical address, to the guest's own host frame", () => {
    const vh = host();
    const vm = guest(vh);
    const { assignment } = assignNic(vh, vm);
    expect(assignment.mode).toBe("static");
    for (let gpa = 0; gpa < GUEST_MEMORY; gpa += 509 * PAGE_SIZE) {
      const mapping = assignment.domain!.lookup(gpa)!;
      expect(mapping.physicalAddress + (gpa - mapping.iova)).toBe(vm.hostAddress(gpa));
      expect(vh.host.frames.ownerOf(vm.hostAddress(gpa) / PAGE_SIZE)).toBe(vm.hostOwner);
    }
    expect(assignment.domain!.lookup(GUEST_MEMORY)).toBeUndefined();
  });

  it("stops a guest-programmed host-physical address with a fault naming the device and the address", () => {
    const vh = host();
    const vm = guest(vh);
    const other = guest(vh, { name: "other" });
    const { rogue } = assignRogue(vh, vm);
    const faults = faultsOf(vh.host, rogue.requesterId);
    // A frame of the other guest above this guest's guest-physical range.
    let victim = -1;
    other.memory.forEachBacking((_pfn, hostPfn) => {
      if (victim < 0 && hostPfn * PAGE_SIZE >= GUEST_MEMORY) victim = hostPfn * PAGE_SIZE;
    });
    vh.host.memory.write(victim, Uint8Array.of(1, 2, 3, 4));
    expect(rogue.read(victim, 64).outcome).toBe("blocked");
    expect(rogue.write(victim, new Uint8Array(4)).outcome).toBe("blocked");
    const back = new Uint8Array(4);
    vh.host.memory.read(victim, back);
    expect([...back]).toEqual([1, 2, 3, 4]);
    expect(faults.faults.map((f) => [f.requesterId, f.address, f.access, f.reason])).toEqual([
      [rogue.requesterId, victim, "read", FaultReason.ReadNotPermitted],
      [rogue.requesterId, victim, "write", FaultReason.WriteNotPermitted],
    ]);
    const records = vh.host.iommu.serviceFaults();
    expect(records[0]).toMatchObject({ requesterId: rogue.requesterId, address: victim, access: "read" });
  });

  it("reaches the guest's own memory at guest-physical addresses", () => {
    const vh = host();
    const vm = guest(vh);
    const { rogue } = assignRogue(vh, vm);
    const memory = new HostMemory(vm.machine);
    const buffer = memory.allocate(3 * PAGE_SIZE, { offset: 100, contiguous: true });
    const data = patternBytes(3 * PAGE_SIZE, 3);
    memory.write(buffer.va, data);
    const read = rogue.read(buffer.physicalAddress, data.length);
    expect(read.outcome).toBe("complete");
    expect(sameBytes(read.bytes, data)).toBe(true);
  });

  it("delivers the device's interrupts to the guest's ISR on the device's own host line", () => {
    const vh = host();
    const vm = guest(vh);
    const { nic, assignment } = assignNic(vh, vm);
    expect(vh.host.scheduler.isConnected(nic.interruptLine)).toBe(false);
    startGuest(vm);
    expect(vh.host.scheduler.isConnected(nic.interruptLine)).toBe(true);
    expect(vm.machine.scheduler.isConnected(assignment.guestFunction.interruptLine)).toBe(true);
    nicTraffic(vh.host, vm, assignment.guestRequesterId, nic.mac, 2);
    expect(nic.stats.interrupts).toBeGreaterThan(0);
  });

  it("runs an emulated device of the guest too, on a host line of its own, in guest memory", () => {
    const vh = host();
    const vm = guest(vh);
    const emulated = new NicDevice({ name: "emulated NIC" });
    const guestRid = vm.machine.pci.attach(emulated);
    new LoopbackWire().plug(emulated);
    const hostNic = new NicDevice();
    vh.host.pci.attach(hostNic);
    startGuest(vm);
    const line = emulated.interruptLine;
    expect(vh.host.scheduler.isConnected(line)).toBe(false);
    expect(vm.machine.scheduler.isConnected(line)).toBe(true);
    expect(nicTraffic(vh.host, vm, guestRid, emulated.mac, 4).intact).toBe(true);
    expect(hostNic.stats.interrupts).toBe(0);
  });

  it("shares one virtual clock between host and guests", () => {
    const vh = host();
    const vm = guest(vh);
    const fired: number[] = [];
    vm.machine.scheduler.schedule(5_000, () => fired.push(vh.host.scheduler.now));
    vh.host.scheduler.schedule(2_000, () => fired.push(vm.machine.scheduler.now));
    vh.host.runUntilIdle();
    expect(fired).toEqual([2_000, 5_000]);
    expect(vm.machine.scheduler.now).toBe(vh.host.scheduler.now);
  });

  it("refuses assignments that would break isolation or ownership", () => {
    const bare = host("off");
    const vm = guest(bare);
    const nic = new NicDevice();
    bare.host.pci.attach(nic);
    expect(errorCode(() => bare.hypervisor.assignDevice(vm, nic.requesterId))).toBe("bad-state");
    expect(vm.assignments).toEqual([]);
    expect(vm.machine.pci.devices()).toEqual([]);

    const vh = host();
    const a = guest(vh, { name: "a" });
    const b = guest(vh, { name: "b" });
    const { nic: taken } = assignNic(vh, a);
    expect(errorCode(() => vh.hypervisor.assignDevice(b, taken.requesterId))).toBe("bad-state");
    const held = new NicDevice();
    vh.host.pci.attach(held);
    vh.host.iommu.attach(held.requesterId, vh.host.iommu.createDomain());
    expect(errorCode(() => vh.hypervisor.assignDevice(b, held.requesterId))).toBe("bad-state");
    expect(errorCode(() => vh.hypervisor.assignDevice(b, 0x0f8))).toBe("bad-handle");
    const stranger = host().hypervisor.createGuest({ name: "stranger", memory: 16 * MiB });
    expect(errorCode(() => vh.hypervisor.assignDevice(stranger, held.requesterId))).toBe("bad-handle");
    expect(b.assignments).toEqual([]);
  });

  it("takes a device back: off the guest's bus, DMA blocked, bus mastering off", () => {
    const vh = host();
    const vm = guest(vh);
    const { rogue, assignment } = assignRogue(vh, vm);
    const buffer = new HostMemory(vm.machine).allocate(64);
    vh.hypervisor.unassign(assignment);
    expect(vm.machine.pci.has(assignment.guestRequesterId)).toBe(false);
    expect(vm.assignments).toEqual([]);
    expect(rogue.config.busMasterEnabled).toBe(false);
    vh.host.pci.setBusMaster(rogue.requesterId, true);
    const faults = faultsOf(vh.host, rogue.requesterId);
    expect(rogue.read(buffer.physicalAddress, 64).outcome).toBe("blocked");
    expect(faults.faults[0]?.reason).toBe(FaultReason.ContextEntryNotPresent);
    expect(errorCode(() => vh.hypervisor.unassign(assignment))).toBe("bad-handle");
    expect(vh.hypervisor.assignDevice(guest(vh, { name: "next" }), rogue.requesterId).mode).toBe("static");
  });

  it("gives every frame back when a guest is destroyed", () => {
    const vh = host();
    const free = vh.host.frames.freeFrameCount();
    const vm = guest(vh);
    assignNic(vh, vm);
    expect(vh.host.frames.framesOwnedBy(vm.hostOwner)).toBe(GUEST_MEMORY / PAGE_SIZE);
    vh.hypervisor.destroyGuest(vm);
    expect(vm.destroyed).toBe(true);
    expect(vh.hypervisor.guests).toEqual([]);
    expect(vh.host.frames.framesOwnedBy(vm.hostOwner)).toBe(0);
    // The static domain's table frames went back too; the unit keeps its root and context tables.
    const iommu = vh.host.frames.framesOwnedBy(vh.host.frames.registerOwner("iommu"));
    expect(iommu).toBe(2);
    expect(vh.host.frames.freeFrameCount()).toBe(free - iommu);
    expect(errorCode(() => vh.hypervisor.destroyGuest(vm))).toBe("bad-handle");
  });

  it("rejects bad guest options before taking any host memory", () => {
    const vh = host();
    const free = vh.host.frames.freeFrameCount();
    expect(errorCode(() => vh.hypervisor.createGuest({ name: "" }))).toBe("bad-handle");
    expect(errorCode(() => vh.hypervisor.createGuest({ name: "x", memory: 15 * MiB }))).toBe("out-of-range");
    expect(errorCode(() => vh.hypervisor.createGuest({ name: "x", memory: 4097 * 4096 + 1 }))).toBe(
      "out-of-range",
    );
    expect(errorCode(() => vh.hypervisor.createGuest({ name: "x", dmaInterface: "magic" as never }))).toBe(
      "out-of-range",
    );
    expect(errorCode(() => vh.hypervisor.createGuest({ name: "x", regionBytes: 100 }))).toBe("out-of-range");
    expect(errorCode(() => vh.hypervisor.createGuest({ name: "x", memory: 2 * GUEST_MEMORY * 16 }))).toBe(
      "no-memory",
    );
    guest(vh, { name: "twin" });
    expect(errorCode(() => guest(vh, { name: "twin" }))).toBe("bad-state");
    expect(vh.hypervisor.guests).toHaveLength(1);
    expect(vh.host.frames.freeFrameCount()).toBe(free - GUEST_MEMORY / PAGE_SIZE);
  });
});
