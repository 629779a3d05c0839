import { describe, expect, it } from "vitest";
import { fdoOf } from "../../samples/device-assignment-sample.js";
import { HostMemory, patternBytes, sameBytes } from "../../samples/host-memory.js";
import { IoManager } from "../../src/ddi/io-manager.js";
import { NicDevice } from "../../src/devices/nic-device.js";
import { NicRegister, TctlBit, TxDescriptor } from "../../src/devices/nic-registers.js";
import { NT_SUCCESS } from "../../src/hal/wdm/ntstatus.js";
import { PAGE_SIZE } from "../../src/platform/page.js";
import { formatRequesterId } from "../../src/platform/pci-address.js";
import type { DeviceAssignment } from "../../src/virt/device-assignment.js";
import type { Guest } from "../../src/virt/guest.js";
import { SriovNic } from "../../src/virt/sriov-nic.js";
import { VirtualEthernetBridge } from "../../src/virt/virtual-ethernet-bridge.js";
import { DmaLanding, errorCode, faultsOf, GUEST_MEMORY, guest, host, startGuest } from "./virt-fixture.js";

function frameTo(mac: Uint8Array, length: number, seed: number): Uint8Array {
  const frame = patternBytes(length, seed);
  frame.set(mac, 0);
  return frame;
}

/** Sends `frame` from `from`'s guest through its VF; `to`'s guest posts one read. */
function send(
  vh: ReturnType<typeof host>,
  from: [Guest, DeviceAssignment],
  to: [Guest, DeviceAssignment],
  frame: Uint8Array,
): boolean {
  const out = new HostMemory(from[0].machine);
  const into = new HostMemory(to[0].machine);
  const target = into.allocate(16 * 1024);
  const read = to[0].machine.get(IoManager).sendRead(fdoOf(to[0], to[1].guestRequesterId), target.mdl);
  const source = out.allocate(frame.length);
  out.write(source.va, frame);
  from[0].machine.get(IoManager).sendWrite(fdoOf(from[0], from[1].guestRequesterId), source.mdl);
  vh.host.runUntilIdle();
  return (
    read.completed && NT_SUCCESS(read.IoStatus.Status) && sameBytes(into.read(target.va, frame.length), frame)
  );
}

describe("SR-IOV NIC", () => {
  it("plugs its PF and VFs as functions of one slot, each with its own requester id", () => {
    const vh = host();
    const card = new SriovNic({ virtualFunctions: 3 });
    const vfs = card.plug(vh.host.pci, { device: 4 });
    expect(formatRequesterId(card.physicalFunction.requesterId)).toBe("00:04.0");
    expect(vfs.map(formatRequesterId)).toEqual(["00:04.1", "00:04.2", "00:04.3"]);
    expect(card.physicalFunction.readRegister(0)).toBe(3);
    expect(card.virtualFunctions.map((vf) => vf.mac[5])).toEqual([1, 2, 3]);
    expect(errorCode(() => new SriovNic({ virtualFunctions: 8 }))).toBe("out-of-range");
    expect(errorCode(() => new SriovNic({ virtualFunctions: 2, firstMac: [0, 0, 0, 0, 0, 0xff] }))).toBe(
      "out-of-range",
    );
  });

  it("bridges VFs by destination MAC, floods broadcasts, sends the rest to the uplink", () => {
    const bridge = new VirtualEthernetBridge();
    const nics = [1, 2, 3].map((n) => new NicDevice({ name: `nic${n}`, mac: [2, 0, 0, 0, 0, n] }));
    for (const nic of nics) bridge.connect(nic);
    expect(errorCode(() => bridge.connect(new NicDevice({ mac: [2, 0, 0, 0, 0, 1] })))).toBe("bad-state");
    bridge.deliver(nics[0]!, frameTo(nics[1]!.mac, 64, 1), 0);
    bridge.deliver(nics[0]!, frameTo(Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0xff), 64, 2), 0);
    bridge.deliver(nics[0]!, frameTo(Uint8Array.of(2, 9, 9, 9, 9, 9), 64, 3), 0);
    // Nothing is set up to receive: the deliveries are refused and counted.
    expect(bridge.stats).toEqual({ forwarded: 1, flooded: 1, uplink: 1, dropped: 3 });
    expect(errorCode(() => bridge.deliver(new NicDevice(), new Uint8Array(64), 0))).toBe("not-owner");
  });

  it("gives each VF its own domain: guests exchange frames, each VF's DMA in its own guest", () => {
    const vh = host();
    const card = new SriovNic({ virtualFunctions: 2 });
    const vfs = card.plug(vh.host.pci);
    const a = guest(vh, { name: "a" });
    const b = guest(vh, { name: "b" });
    const aa = vh.hypervisor.assignDevice(a, vfs[0]!);
    const ba = vh.hypervisor.assignDevice(b, vfs[1]!);
    expect(aa.domain).not.toBe(ba.domain);
    for (const vm of [a, b]) startGuest(vm);
    const landings = [new DmaLanding(vh.host, a, aa), new DmaLanding(vh.host, b, ba)];
    expect(send(vh, [a, aa], [b, ba], frameTo(card.virtualFunctions[1]!.mac, 1514, 4))).toBe(true);
    expect(send(vh, [b, ba], [a, aa], frameTo(card.virtualFunctions[0]!.mac, 9000, 5))).toBe(true);
    expect(landings.every((l) => l.pages > 0 && l.foreign === 0)).toBe(true);
    expect(card.bridge.stats.forwarded).toBe(2);
  });

  it("stops one guest's VF at another guest's memory, with a fault naming that VF", () => {
    const vh = host();
    const card = new SriovNic({ virtualFunctions: 2 });
    const vfs = card.plug(vh.host.pci);
    const victim = guest(vh, { name: "victim", modules: [] });
    const attacker = guest(vh, { name: "attacker", modules: [] });
    vh.hypervisor.assignDevice(victim, vfs[0]!);
    const stolen = vh.hypervisor.assignDevice(attacker, vfs[1]!);
    let target = -1;
    victim.memory.forEachBacking((_pfn, hostPfn) => {
      if (target < 0 && hostPfn * PAGE_SIZE >= GUEST_MEMORY) target = hostPfn * PAGE_SIZE;
    });
    // The attacker's kernel programs its VF by hand: one descriptor pointing at the victim's page.
    const ring = attacker.machine.frames.allocate(1, {
      owner: attacker.machine.frames.registerOwner("x"),
    })[0]!;
    const descriptor = new Uint8Array(TxDescriptor.size);
    new DataView(descriptor.buffer).setUint32(TxDescriptor.address, target, true);
    new DataView(descriptor.buffer).setUint16(TxDescriptor.length, 1000, true);
    descriptor[TxDescriptor.cmd] = 0x0b;
    attacker.machine.memory.write(ring * PAGE_SIZE, descriptor);
    attacker.machine.pci.setBusMaster(stolen.guestRequesterId, true);
    const bar = stolen.guestFunction.barAddress;
    const mmio = (register: number, value: number): void =>
      attacker.machine.pci.mmioWrite32(bar + register, value);
    const faults = faultsOf(vh.host, vfs[1]!);
    mmio(NicRegister.tdbal, ring * PAGE_SIZE);
    mmio(NicRegister.tdlen, 128);
    mmio(NicRegister.tctl, TctlBit.enable);
    mmio(NicRegister.tdt, 1);
    vh.host.runUntilIdle();
    expect(faults.faults.map((f) => [f.requesterId, f.address, f.access])).toEqual([
      [vfs[1], target, "read"],
    ]);
    expect(card.virtualFunctions[1]!.dmaErrors).toHaveLength(1);
    expect(card.bridge.stats.forwarded + card.bridge.stats.uplink).toBe(0);
  });
});
