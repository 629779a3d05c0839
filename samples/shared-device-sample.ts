/**
 * shared-device (seed 000): "Life gets even harder when trying to share devices between virtual
 * machines". One SR-IOV NIC: its physical function stays with the host, and each of its three
 * virtual functions, a PCI function with a requester id of its own, is assigned to a different
 * guest, so the host IOMMU gives each VF its own domain, mapping only its own guest's RAM.
 *
 * - vm-a and vm-b run the unmodified nic driver on their VFs and exchange frames through the
 *   card's embedded bridge: each frame is read from the sender's memory by the sender's VF and
 *   written to the receiver's memory by the receiver's VF, each through its own domain.
 * - vm-c is compromised: with no driver, its kernel programs its VF by hand to transmit from
 *   vm-b's memory and to receive into it, at vm-b's host-physical address. Both DMAs fault,
 *   logged with vm-c's VF requester id; vm-b's page is untouched and nothing leaves the card.
 */
import nicModule from "../drivers/nic/nic-module.js";
import { IoManager } from "../src/ddi/io-manager.js";
import type { NicDevice } from "../src/devices/nic-device.js";
import { NicRegister, RctlBit, TctlBit, TxDescriptor } from "../src/devices/nic-registers.js";
import { NT_SUCCESS } from "../src/hal/wdm/ntstatus.js";
import type { Machine } from "../src/machine/machine.js";
import { MiB, PAGE_SIZE } from "../src/platform/page.js";
import { formatRequesterId } from "../src/platform/pci-address.js";
import type { DeviceAssignment } from "../src/virt/device-assignment.js";
import type { Guest } from "../src/virt/guest.js";
import { SriovNic } from "../src/virt/sriov-nic.js";
import {
  bufferAbove,
  check,
  DmaLanding,
  describeFault,
  faultsOf,
  fdoOf,
  startGuest,
  virtHost,
} from "./device-assignment-sample.js";
import { formatAddress, plural } from "./explain.js";
import { HostMemory, patternBytes, sameBytes } from "./host-memory.js";
import type { SampleCheck, SampleDefinition, SampleReport } from "./sample-definition.js";

const GUEST_MEMORY = 32 * MiB;
const FRAME_SIZES = [64, 1514, 300, 1514, 9000];
/** TX command: end of packet, insert FCS, report status. */
const TX_CMD = 0x01 | 0x02 | 0x08;
const RING_BYTES = 128;

interface Port {
  readonly guest: Guest;
  readonly assignment: DeviceAssignment;
  readonly vf: NicDevice;
}

/** `from` sends frames to `to`'s MAC; `to` has posted one read per frame. Intact frames received. */
function exchange(host: Machine, from: Port, to: Port, seed: number): number {
  const send = new HostMemory(from.guest.machine);
  const receive = new HostMemory(to.guest.machine);
  const frames = FRAME_SIZES.map((size, i) => {
    const frame = patternBytes(size, seed * 31 + i);
    frame.set(to.vf.mac, 0);
    frame.set(from.vf.mac, 6);
    return frame;
  });
  const targets = frames.map(() => receive.allocate(16 * 1024));
  const reads = targets.map((b) =>
    to.guest.machine.get(IoManager).sendRead(fdoOf(to.guest, to.assignment.guestRequesterId), b.mdl),
  );
  const writes = frames.map((frame) => {
    const buffer = send.allocate(frame.length);
    send.write(buffer.va, frame);
    return from.guest.machine
      .get(IoManager)
      .sendWrite(fdoOf(from.guest, from.assignment.guestRequesterId), buffer.mdl);
  });
  host.runUntilIdle();
  const sent = writes.every((irp) => irp.completed && NT_SUCCESS(irp.IoStatus.Status));
  return sent
    ? reads.filter(
        (irp, i) =>
          irp.completed &&
          NT_SUCCESS(irp.IoStatus.Status) &&
          sameBytes(receive.read(targets[i]!.va, frames[i]!.length), frames[i]!),
      ).length
    : 0;
}

/** What a compromised guest kernel does with its VF, no driver involved: registers and a ring. */
class HandProgrammedVf {
  readonly #guest: Guest;
  readonly #bar: number;
  readonly #owner: number;

  constructor(port: Port) {
    this.#guest = port.guest;
    this.#bar = port.assignment.guestFunction.barAddress;
    this.#owner = port.guest.machine.frames.registerOwner("attack");
    port.guest.machine.pci.setBusMaster(port.assignment.guestRequesterId, true);
  }

  /** Transmits one frame whose buffer is at bus address `address`. */
  transmitFrom(address: number, length: number): void {
    const ring = this.#ring();
    const descriptor = new Uint8Array(TxDescriptor.size);
    const view = new DataView(descriptor.buffer);
    view.setUint32(TxDescriptor.address, address % 2 ** 32, true);
    view.setUint32(TxDescriptor.address + 4, Math.floor(address / 2 ** 32), true);
    view.setUint16(TxDescriptor.length, length, true);
    descriptor[TxDescriptor.cmd] = TX_CMD;
    this.#guest.machine.memory.write(ring, descriptor);
    this.#write(NicRegister.tdbal, ring);
    this.#write(NicRegister.tdbah, 0);
    this.#write(NicRegister.tdlen, RING_BYTES);
    this.#write(NicRegister.tdh, 0);
    this.#write(NicRegister.tdt, 0);
    this.#write(NicRegister.tctl, TctlBit.enable);
    this.#write(NicRegister.tdt, 1);
  }

  /** Posts one 2 KiB receive buffer at bus address `address`. */
  receiveInto(address: number): void {
    const ring = this.#ring();
    const descriptor = new Uint8Array(16);
    const view = new DataView(descriptor.buffer);
    view.setUint32(0, address % 2 ** 32, true);
    view.setUint32(4, Math.floor(address / 2 ** 32), true);
    this.#guest.machine.memory.write(ring, descriptor);
    this.#write(NicRegister.rdbal, ring);
    this.#write(NicRegister.rdbah, 0);
    this.#write(NicRegister.rdlen, RING_BYTES);
    this.#write(NicRegister.rdh, 0);
    this.#write(NicRegister.rdt, 1);
    this.#write(NicRegister.rctl, RctlBit.enable);
  }

  #ring(): number {
    return this.#guest.machine.frames.allocate(1, { owner: this.#owner })[0]! * PAGE_SIZE;
  }

  #write(register: number, value: number): void {
    this.#guest.machine.pci.mmioWrite32(this.#bar + register, value >>> 0);
  }
}

function run(seed: number): SampleReport {
  const { host, hypervisor } = virtHost({ memory: 512 * MiB, remapping: "strict", seed });
  const card = new SriovNic({ virtualFunctions: 3 });
  const vfRequesters = card.plug(host.pci);
  const names = ["vm-a", "vm-b", "vm-c"];
  const ports: Port[] = names.map((name, i) => {
    const guest = hypervisor.createGuest({
      name,
      memory: GUEST_MEMORY,
      modules: name === "vm-c" ? [] : [nicModule],
    });
    const assignment = hypervisor.assignDevice(guest, vfRequesters[i]!);
    return { guest, assignment, vf: card.virtualFunctions[i]! };
  });
  const [a, b, c] = ports as [Port, Port, Port];
  for (const port of [a, b]) startGuest(port.guest);
  const landings = ports.map((p) => new DmaLanding(host, p.guest, p.assignment));

  const aToB = exchange(host, a, b, seed);
  const bToA = exchange(host, b, a, seed + 1);

  // vm-b's data, on a host page outside vm-c's guest-physical range.
  const victim = bufferAbove(b.guest, GUEST_MEMORY, PAGE_SIZE);
  const victimBytes = patternBytes(PAGE_SIZE, seed + 7);
  new HostMemory(b.guest.machine).write(victim.va, victimBytes);
  const faults = faultsOf(host, c.assignment.hostRequesterId);
  const bridgeBefore = { ...card.bridge.stats };
  const attacker = new HandProgrammedVf(c);
  attacker.transmitFrom(victim.hpa, 1514);
  host.runUntilIdle();
  const txFault = faults.faults[0];
  const forwardedDuringTx = card.bridge.stats.forwarded - bridgeBefore.forwarded;
  attacker.receiveInto(victim.hpa);
  const bait = new HostMemory(a.guest.machine);
  const baitFrame = patternBytes(1514, seed + 3);
  baitFrame.set(c.vf.mac, 0);
  const baitBuffer = bait.allocate(baitFrame.length);
  bait.write(baitBuffer.va, baitFrame);
  a.guest.machine.get(IoManager).sendWrite(fdoOf(a.guest, a.assignment.guestRequesterId), baitBuffer.mdl);
  host.runUntilIdle();
  const rxFault = faults.faults.find((f) => f.access === "write");
  faults.dispose();
  for (const l of landings) l.dispose();
  const victimIntact = sameBytes(new HostMemory(b.guest.machine).read(victim.va, PAGE_SIZE), victimBytes);

  const domains = ports.map((p) => p.assignment.domain?.id ?? -1);
  const checks: SampleCheck[] = [
    check(
      "one device, one requester id and one domain per VF",
      new Set(vfRequesters).size === 3 && new Set(domains).size === 3 && domains.every((d) => d > 0),
      ports
        .map(
          (p) =>
            `${p.vf.name} ${formatRequesterId(p.assignment.hostRequesterId)} -> ${p.guest.name} (domain ${p.assignment.domain?.id})`,
        )
        .join(", "),
    ),
    check(
      "guests exchange frames through the shared card",
      aToB === FRAME_SIZES.length && bToA === FRAME_SIZES.length,
      `vm-a -> vm-b ${aToB}/${FRAME_SIZES.length}, vm-b -> vm-a ${bToA}/${FRAME_SIZES.length} intact`,
    ),
    check(
      "each VF's DMA stays in its own guest's memory",
      landings.every((l) => l.foreign === 0) && landings[0]!.pages > 0 && landings[1]!.pages > 0,
      landings.map((l, i) => `${names[i]}: ${plural(l.pages, "page")}, ${l.foreign} elsewhere`).join("; "),
    ),
    check(
      "vm-c's VF cannot read vm-b's memory",
      txFault !== undefined &&
        txFault.access === "read" &&
        txFault.address === victim.hpa &&
        forwardedDuringTx === 0,
      `${describeFault(txFault)}; ${plural(forwardedDuringTx, "frame")} left the VF`,
    ),
    check(
      "vm-c's VF cannot write vm-b's memory",
      rxFault !== undefined && rxFault.address === victim.hpa && victimIntact,
      `${describeFault(rxFault)}; vm-b's page at host ${formatAddress(victim.hpa)} ${victimIntact ? "intact" : "OVERWRITTEN"}`,
    ),
  ];
  const lines = [
    `${card.name}: PF ${formatRequesterId(card.physicalFunction.requesterId)} kept by the host, ${plural(3, "VF")} assigned`,
    ...ports.map(
      (p) =>
        `${p.vf.name} (${formatRequesterId(p.assignment.hostRequesterId)}, MAC ${[...p.vf.mac].map((x) => x.toString(16).padStart(2, "0")).join(":")}) -> ${p.guest.name}, domain ${p.assignment.domain?.id} maps its ${GUEST_MEMORY / MiB} MiB`,
    ),
    `bridge: ${card.bridge.stats.forwarded} forwarded, ${card.bridge.stats.dropped} dropped, ${card.bridge.stats.uplink} to the uplink`,
    `vm-c, by hand: transmit from and receive into vm-b's host page ${formatAddress(victim.hpa)}: ${plural(faults.faults.length, "fault")}`,
  ];
  return {
    name: "shared-device",
    checks,
    lines,
    figures: {
      virtualFunctions: 3,
      framesAtoB: aToB,
      framesBtoA: bToA,
      bridgeForwarded: card.bridge.stats.forwarded,
      bridgeDropped: card.bridge.stats.dropped,
      vfADmaPages: landings[0]!.pages,
      vfBDmaPages: landings[1]!.pages,
      dmaPagesElsewhere: landings.reduce((n, l) => n + l.foreign, 0),
      attackFaults: faults.faults.length,
      attackReadFaultReason: txFault?.reason ?? -1,
      attackWriteFaultReason: rxFault?.reason ?? -1,
      victimIntact,
    },
  };
}

const sample: SampleDefinition = {
  name: "shared-device",
  description: "one SR-IOV NIC shared by three VMs: a VF, a requester id and a domain each",
  run: ({ seed }) => run(seed),
};

export default sample;
