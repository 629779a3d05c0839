/**
 * device-assignment (seeds 000 and 002): a hypervisor gives PCI devices to a guest VM whose RAM
 * is scattered host memory; the IOMMU domain of each device maps guest-physical to host-physical;
 * the unmodified sample drivers run inside the guest; the devices cannot reach the host's memory
 * or another guest's, whatever the guest programs into them.
 *
 * What runs, on a 1 GiB host with strict remapping and two 64 MiB guests:
 * 1. vm1 gets an e1000-like NIC (loopback cable), an NVMe-like disk and a malicious bus master;
 *    vm1's PnP manager loads the unmodified nic and disk drivers, which move frames and blocks.
 *    Every page any device touched is checked to be one of vm1's host frames, reached at its
 *    guest-physical address; the host's memory outside vm1 is checked unchanged.
 * 2. The guest, turned malicious, makes its bus master read a host secret at its HOST-physical
 *    address and write over vm2's memory at ITS host-physical address: both fault, logged with
 *    the device's host requester id and the address. Reading its own memory at a guest-physical
 *    address works.
 * 3. The same host without DMA remapping refuses the assignment; forced, the same read takes the
 *    secret, and a guest-physical address lands in whatever host frame has that number.
 *
 * The helpers below are shared with the other virtualization samples.
 */
import diskModule from "../drivers/disk/disk-module.js";
import nicModule from "../drivers/nic/nic-module.js";
import { IoManager } from "../src/ddi/io-manager.js";
import { DiskController } from "../src/devices/disk-controller.js";
import type { LegacyDmaDevice } from "../src/devices/legacy-dma-device.js";
import { LoopbackWire } from "../src/devices/loopback-wire.js";
import { MemoryDiskImage } from "../src/devices/memory-disk-image.js";
import { NicDevice } from "../src/devices/nic-device.js";
import { RogueDevice } from "../src/devices/rogue-device.js";
import type { DEVICE_OBJECT } from "../src/hal/wdm/device-object.js";
import { NT_SUCCESS } from "../src/hal/wdm/ntstatus.js";
import { describeFaultReason } from "../src/iommu/fault-reason.js";
import type { IommuFaultEvent } from "../src/iommu/iommu-events.js";
import { Machine } from "../src/machine/machine.js";
import type { MachineOptions } from "../src/machine/machine-options.js";
import { MemorySnapshot } from "../src/platform/memory-snapshot.js";
import { GiB, MiB, PAGE_SIZE } from "../src/platform/page.js";
import { formatRequesterId } from "../src/platform/pci-address.js";
import { PlatformError } from "../src/platform/platform-error.js";
import type { Disposer } from "../src/trace/event-bus.js";
import type { DeviceAssignment } from "../src/virt/device-assignment.js";
import type { Guest } from "../src/virt/guest.js";
import { Hypervisor } from "../src/virt/hypervisor.js";
import { virtModule } from "../src/virt/virt-module.js";
import type { HypervisorOptions } from "../src/virt/virt-options.js";
import { formatAddress, formatBytes, plural } from "./explain.js";
import { HostMemory, KERNEL_SECRET_OWNER, patternBytes, sameBytes } from "./host-memory.js";
import type { SampleCheck, SampleDefinition, SampleReport } from "./sample-definition.js";

// ------------------------------------------------------------------ shared helpers

export interface VirtHost {
  readonly host: Machine;
  readonly hypervisor: Hypervisor;
}

/** A host machine with the virtualization layer loaded. */
export function virtHost(options: MachineOptions, hypervisor: Partial<HypervisorOptions> = {}): VirtHost {
  const host = new Machine(options, [virtModule(hypervisor)]);
  return { host, hypervisor: host.get(Hypervisor) };
}

/** The guest's PnP manager enumerates its bus and loads its driver packages. */
export function startGuest(guest: Guest): IoManager {
  const io = guest.machine.get(IoManager);
  io.enumerate();
  io.loadDrivers();
  return io;
}

/** The FDO the guest's driver made for its device at guest requester id `requesterId`. */
export function fdoOf(guest: Guest, requesterId: number): DEVICE_OBJECT {
  const node = guest.machine.get(IoManager).node(requesterId);
  if (node.state !== "started" || node.fdo === undefined) {
    throw new Error(
      `${guest.name}: no driver started the device at ${formatRequesterId(requesterId)} (node ${node.state})`,
    );
  }
  return node.fdo;
}

/** What one workload moved and whether every byte came back right. */
export interface Traffic {
  readonly intact: boolean;
  readonly bytes: number;
  readonly requests: number;
}

export const FRAME_SIZES = [60, 1514, 590, 4096, 9018, 1514, 128, 16_000];

/**
 * The NIC sends frames to itself over its loopback cable (or to `peer`'s address through a
 * bridge): reads are posted first, each must come back with the frame sent in its position.
 */
export function nicTraffic(
  host: Machine,
  guest: Guest,
  requesterId: number,
  destinationMac: Uint8Array,
  seed: number,
): Traffic {
  const memory = new HostMemory(guest.machine);
  const io = guest.machine.get(IoManager);
  const fdo = fdoOf(guest, requesterId);
  const frames = FRAME_SIZES.map((size, i) => {
    const frame = patternBytes(size, seed * 100 + i);
    frame.set(destinationMac, 0);
    return frame;
  });
  const sends = frames.map((frame, i) => {
    const buffer = memory.allocate(frame.length, { offset: i % 2 === 1 ? PAGE_SIZE - 100 : 0 });
    memory.write(buffer.va, frame);
    return buffer;
  });
  const receives = frames.map(() => memory.allocate(16 * 1024));
  const reads = receives.map((buffer) => io.sendRead(fdo, buffer.mdl));
  const writes = sends.map((buffer) => io.sendWrite(fdo, buffer.mdl));
  host.runUntilIdle();
  const sent = writes.filter((irp) => irp.completed && NT_SUCCESS(irp.IoStatus.Status)).length;
  const received = reads.filter(
    (irp, i) =>
      irp.completed &&
      NT_SUCCESS(irp.IoStatus.Status) &&
      sameBytes(memory.read(receives[i]!.va, frames[i]!.length), frames[i]!),
  ).length;
  return {
    intact: sent === frames.length && received === frames.length,
    bytes: frames.reduce((n, f) => n + f.length, 0),
    requests: frames.length * 2,
  };
}

/** The disk driver writes `length` bytes at 1 MiB from scattered pages, then reads them back. */
export function diskTraffic(
  host: Machine,
  guest: Guest,
  requesterId: number,
  image: MemoryDiskImage,
  seed: number,
  length = 257 * 1024 + 512,
): Traffic {
  const memory = new HostMemory(guest.machine);
  const io = guest.machine.get(IoManager);
  const fdo = fdoOf(guest, requesterId);
  const data = patternBytes(length, seed * 7 + 1);
  const source = memory.allocate(length, { offset: 512 });
  const target = memory.allocate(length, { offset: 512 });
  memory.write(source.va, data);
  const write = io.sendWrite(fdo, source.mdl, MiB);
  host.runUntilIdle();
  const read = io.sendRead(fdo, target.mdl, MiB);
  host.runUntilIdle();
  const onMedium = new Uint8Array(length);
  image.read(MiB / 512, onMedium);
  const ok = (irp: typeof write): boolean => irp.completed && NT_SUCCESS(irp.IoStatus.Status);
  return {
    intact:
      ok(write) && ok(read) && sameBytes(onMedium, data) && sameBytes(memory.read(target.va, length), data),
    bytes: 2 * length,
    requests: 2,
  };
}

/** The legacy 32-bit chip's driver sends one buffer to the chip, then reads one back. */
export function legacyTraffic(
  host: Machine,
  guest: Guest,
  requesterId: number,
  chip: LegacyDmaDevice,
  seed: number,
  length = 48 * 1024 + 300,
): Traffic {
  const memory = new HostMemory(guest.machine);
  const io = guest.machine.get(IoManager);
  const fdo = fdoOf(guest, requesterId);
  const data = patternBytes(length, seed * 13 + 2);
  const onboard = patternBytes(length, seed * 17 + 3);
  const source = memory.allocate(length, { offset: 700 });
  const target = memory.allocate(length, { offset: 700 });
  memory.write(source.va, data);
  const write = io.sendWrite(fdo, source.mdl);
  host.runUntilIdle();
  const fetched = chip.contents(length);
  chip.load(onboard);
  const read = io.sendRead(fdo, target.mdl);
  host.runUntilIdle();
  const ok = (irp: typeof write): boolean => irp.completed && NT_SUCCESS(irp.IoStatus.Status);
  return {
    intact:
      ok(write) && ok(read) && sameBytes(fetched, data) && sameBytes(memory.read(target.va, length), onboard),
    bytes: 2 * length,
    requests: 2,
  };
}

/**
 * Checks where an assigned device's DMA lands: for every page of every successful access, the
 * host frame its bus address translated to must belong to one of `owners` (the guest's RAM; for
 * host bouncing also the hypervisor's bounce buffers).
 */
export class DmaLanding {
  accesses = 0;
  pages = 0;
  /** Pages that landed in a frame of another owner. */
  foreign = 0;
  /** Pages whose bus address is the guest-physical address of the host frame reached. */
  atGuestPhysical = 0;
  /** Highest bus address used. */
  highestBusAddress = 0;
  lowestBusAddress = Number.POSITIVE_INFINITY;
  readonly #dispose: Disposer;

  constructor(
    host: Machine,
    guest: Guest,
    assignment: DeviceAssignment,
    extraOwners: readonly string[] = [],
  ) {
    const owners = new Set([guest.hostOwner, ...extraOwners.map((name) => host.frames.registerOwner(name))]);
    const rid = assignment.hostRequesterId;
    this.#dispose = host.events.on("device.transfer", (e) => {
      if (e.requesterId !== rid || !e.ok || e.length === 0) return;
      this.accesses++;
      this.highestBusAddress = Math.max(this.highestBusAddress, e.busAddress + e.length - 1);
      this.lowestBusAddress = Math.min(this.lowestBusAddress, e.busAddress);
      const last = Math.floor((e.busAddress + e.length - 1) / PAGE_SIZE);
      for (let page = Math.floor(e.busAddress / PAGE_SIZE); page <= last; page++) {
        const physical = translate(assignment, page * PAGE_SIZE);
        this.pages++;
        if (physical < 0 || !owners.has(host.frames.ownerOf(Math.floor(physical / PAGE_SIZE))))
          this.foreign++;
        else if (
          guest.memory.isRam(page * PAGE_SIZE, PAGE_SIZE) &&
          guest.hostAddress(page * PAGE_SIZE) === physical
        )
          this.atGuestPhysical++;
      }
    });
  }

  dispose(): void {
    this.#dispose();
  }
}

/** Host address the device's bus address `iova` reaches now, -1 if none. */
function translate(assignment: DeviceAssignment, iova: number): number {
  const domain = assignment.domain;
  if (domain === undefined) return assignment.mode === "unprotected" ? iova : -1;
  const mapping = domain.lookup(iova);
  return mapping === undefined ? -1 : mapping.physicalAddress + (iova - mapping.iova);
}

/** Records the IOMMU faults of one host requester. */
export function faultsOf(
  host: Machine,
  requesterId: number,
): { readonly faults: IommuFaultEvent[]; dispose: Disposer } {
  const faults: IommuFaultEvent[] = [];
  const dispose = host.events.on("iommu.fault", (e) => {
    if (e.requesterId === requesterId) faults.push(e);
  });
  return { faults, dispose };
}

export function describeFault(fault: IommuFaultEvent | undefined): string {
  if (fault === undefined) return "no fault";
  return `DMA ${fault.access} fault at ${formatAddress(fault.address)} from ${formatRequesterId(fault.requesterId)}, reason ${fault.reason} (${describeFaultReason(fault.reason)})`;
}

export function check(name: string, ok: boolean, detail: string): SampleCheck {
  return { name, ok, detail };
}

/** Guest pages whose host frame directly follows the previous page's: how scattered RAM is. */
export function contiguousPairs(guest: Guest): number {
  let pairs = 0;
  let previous = -2;
  guest.memory.forEachBacking((_pfn, host) => {
    if (host === previous + 1) pairs++;
    previous = host;
  });
  return pairs;
}

/** A guest buffer whose host-physical address lies at or above `above`. */
export function bufferAbove(
  guest: Guest,
  above: number,
  length: number,
): { gpa: number; hpa: number; va: number } {
  const memory = new HostMemory(guest.machine);
  for (let attempt = 0; attempt < 64; attempt++) {
    const buffer = memory.allocate(length);
    const hpa = guest.hostAddress(buffer.physicalAddress);
    if (hpa >= above) return { gpa: buffer.physicalAddress, hpa, va: buffer.va };
  }
  throw new Error(`${guest.name} has no page above ${formatAddress(above)} on the host`);
}

// ------------------------------------------------------------------ the sample

const GUEST_MEMORY = 64 * MiB;
const SECRET = new TextEncoder().encode("host key material: 7f3a9c0e5b21d84f (simulated)");

function plantSecret(host: Machine): { hpa: number } {
  const page = new Uint8Array(PAGE_SIZE);
  page.set(SECRET, 512);
  const planted = new HostMemory(host).plant(KERNEL_SECRET_OWNER, page, { minAddress: 256 * MiB });
  return { hpa: planted.physicalAddress };
}

function run(seed: number): SampleReport {
  const { host, hypervisor } = virtHost({ memory: GiB, remapping: "strict", seed });
  const secret = plantSecret(host);
  const vm1 = hypervisor.createGuest({ name: "vm1", memory: GUEST_MEMORY, modules: [nicModule, diskModule] });
  const vm2 = hypervisor.createGuest({ name: "vm2", memory: GUEST_MEMORY });

  const nic = new NicDevice();
  host.pci.attach(nic);
  new LoopbackWire().plug(nic);
  const image = new MemoryDiskImage(64 * MiB);
  const disk = new DiskController(image);
  host.pci.attach(disk);
  const rogue = new RogueDevice();
  host.pci.attach(rogue);
  const nicAssignment = hypervisor.assignDevice(vm1, nic.requesterId);
  const diskAssignment = hypervisor.assignDevice(vm1, disk.requesterId);
  const rogueAssignment = hypervisor.assignDevice(vm1, rogue.requesterId);

  // vm2's data, on a host page beyond vm1's guest-physical range.
  const victim = bufferAbove(vm2, GUEST_MEMORY, PAGE_SIZE);
  const victimBytes = patternBytes(PAGE_SIZE, seed + 99);
  new HostMemory(vm2.machine).write(victim.va, victimBytes);

  startGuest(vm1);
  const landings = [nicAssignment, diskAssignment].map((a) => new DmaLanding(host, vm1, a));
  const snapshot = MemorySnapshot.take(host.memory, host.frames, {
    exceptOwners: [vm1.hostOwner, host.frames.registerOwner("iommu")],
  });

  const nicRun = nicTraffic(host, vm1, nicAssignment.guestRequesterId, nic.mac, seed);
  const diskRun = diskTraffic(host, vm1, diskAssignment.guestRequesterId, image, seed);

  // The guest turns malicious: it enables its bus master and aims it at host-physical addresses.
  const rogueFaults = faultsOf(host, rogue.requesterId);
  vm1.machine.pci.setBusMaster(rogueAssignment.guestRequesterId, true);
  rogueAssignment.guestFunction.syncCommand();
  const stolen = rogue.read(secret.hpa, PAGE_SIZE);
  const overwrite = rogue.write(victim.hpa, new Uint8Array(256).fill(0xcc));
  const own = bufferAbove(vm1, 0, 64);
  const ownBytes = patternBytes(64, seed + 5);
  new HostMemory(vm1.machine).write(own.va, ownBytes);
  const ownRead = rogue.read(own.gpa, 64);
  rogueFaults.dispose();
  for (const landing of landings) landing.dispose();

  const changed = snapshot.changedFrames();
  const victimIntact = sameBytes(new HostMemory(vm2.machine).read(victim.va, PAGE_SIZE), victimBytes);
  const [readFault, writeFault] = rogueFaults.faults;

  // The same host without remapping.
  const bare = virtHost({ memory: 512 * MiB, remapping: "off", seed });
  const bareSecret = plantSecret(bare.host);
  const bareGuest = bare.hypervisor.createGuest({ name: "vm1", memory: GUEST_MEMORY });
  const bareRogue = new RogueDevice();
  bare.host.pci.attach(bareRogue);
  let refusal = "";
  try {
    bare.hypervisor.assignDevice(bareGuest, bareRogue.requesterId);
  } catch (error) {
    if (!(error instanceof PlatformError)) throw error;
    refusal = error.message;
  }
  const bareAssignment = bare.hypervisor.assignDevice(bareGuest, bareRogue.requesterId, {
    allowUnprotected: true,
  });
  bareGuest.machine.pci.setBusMaster(bareAssignment.guestRequesterId, true);
  bareAssignment.guestFunction.syncCommand();
  bareRogue.read(bareSecret.hpa, PAGE_SIZE);
  const bareLeak = bareRogue.sawBytes(SECRET);
  const bareOwn = bufferAbove(bareGuest, 0, 64);
  const bareFrameOwner = bare.host.frames.ownerOf(Math.floor(bareOwn.gpa / PAGE_SIZE));
  const bareLands = bareFrameOwner === 0 ? "a free frame" : bare.host.frames.ownerName(bareFrameOwner);

  const pages = GUEST_MEMORY / PAGE_SIZE;
  const pairs = contiguousPairs(vm1);
  const landed = landings.reduce((n, l) => n + l.pages, 0);
  const foreign = landings.reduce((n, l) => n + l.foreign, 0);
  const atGpa = landings.reduce((n, l) => n + l.atGuestPhysical, 0);
  const checks: SampleCheck[] = [
    check(
      "guest RAM is scattered host memory",
      pairs < pages / 8 && host.frames.framesOwnedBy(vm1.hostOwner) === pages,
      `${pages} guest pages on ${pages} host frames owned by guest:vm1, ${pairs} of them right after the previous one`,
    ),
    check(
      "unmodified nic driver in the guest",
      nicRun.intact,
      `${FRAME_SIZES.length} frames (${formatBytes(nicRun.bytes)}) out and back over the loopback cable`,
    ),
    check(
      "unmodified disk driver in the guest",
      diskRun.intact,
      `${formatBytes(diskRun.bytes / 2)} written and read back`,
    ),
    check(
      "device DMA lands in the guest's host frames",
      landed > 0 && foreign === 0 && atGpa === landed,
      `${landed} pages of ${landings.reduce((n, l) => n + l.accesses, 0)} DMA accesses, all at guest-physical addresses of vm1's frames; ${foreign} elsewhere`,
    ),
    check(
      "host memory outside the guest unchanged",
      changed.length === 0,
      `${snapshot.recordedFrames} host frames hashed, ${changed.length} changed`,
    ),
    check(
      "a host-physical address is no use to the guest's device",
      stolen.outcome === "blocked" && !rogue.sawBytes(SECRET) && readFault?.address === secret.hpa,
      describeFault(readFault),
    ),
    check(
      "another guest's memory is out of reach",
      overwrite.outcome === "blocked" && victimIntact && writeFault?.address === victim.hpa,
      `${describeFault(writeFault)}; vm2's page ${victimIntact ? "intact" : "OVERWRITTEN"}`,
    ),
    check(
      "the device reaches its own guest's memory",
      ownRead.outcome === "complete" && sameBytes(ownRead.bytes, ownBytes),
      `read of guest-physical ${formatAddress(own.gpa)} (host ${formatAddress(own.hpa)}) ${ownRead.outcome}`,
    ),
    check(
      "no remapping: assignment refused, and forced it is unsafe",
      refusal !== "" && bareLeak && bareLands !== "guest:vm1",
      `refused ("${refusal}"); forced, the host secret leaked and guest-physical ${formatAddress(bareOwn.gpa)} reached ${bareLands}`,
    ),
  ];
  const lines = [
    `host: 1 GiB, strict remapping; vm1 and vm2: ${formatBytes(GUEST_MEMORY)} each, RAM from scattered host frames`,
    `vm1 got ${[nicAssignment, diskAssignment, rogueAssignment].map((a) => `${a.device.name} (host ${formatRequesterId(a.hostRequesterId)} -> guest ${formatRequesterId(a.guestRequesterId)})`).join(", ")}`,
    `each device's host domain maps vm1's RAM at its guest-physical addresses (${plural(pages, "page")})`,
    `nic: ${FRAME_SIZES.length} frames, disk: ${formatBytes(diskRun.bytes / 2)} each way, drivers unchanged; ${plural(landed, "DMA page")} checked`,
    `malicious vm1: host secret read ${stolen.outcome}, write over vm2 ${overwrite.outcome}, own memory read ${ownRead.outcome}`,
    `without remapping: ${bareLeak ? "the secret leaked" : "no leak"}`,
  ];
  return {
    name: "device-assignment",
    checks,
    lines,
    figures: {
      guestMemoryBytes: GUEST_MEMORY,
      guestPages: pages,
      hostContiguousPairs: pairs,
      nicFrames: FRAME_SIZES.length,
      nicBytes: nicRun.bytes,
      diskBytes: diskRun.bytes,
      dmaAccesses: landings.reduce((n, l) => n + l.accesses, 0),
      dmaPages: landed,
      dmaPagesElsewhere: foreign,
      hostFramesHashed: snapshot.recordedFrames,
      hostFramesChanged: changed.length,
      rogueFaults: rogueFaults.faults.length,
      secretReadFaultReason: readFault?.reason ?? -1,
      victimWriteFaultReason: writeFault?.reason ?? -1,
      withoutRemappingLeaked: bareLeak,
      virtualTimeNs: host.scheduler.now,
    },
  };
}

const sample: SampleDefinition = {
  name: "device-assignment",
  description: "a VM with assigned devices: unmodified drivers inside, DMA confined to the guest's memory",
  run: ({ seed }) => run(seed),
};

export default sample;
