/**
 * user-dma (seed 003): a process allocates memory, 2 MiB pages included, and wants its device
 * (the DMA engine, driven from user space as DPDK or SPDK drive theirs) to DMA into it.
 *
 * - naive: uio_pci_generic for the registers, /proc/self/pagemap for physical addresses, those
 *   addresses in the descriptors. Works with remapping off and in passthrough; with remapping on
 *   the device's first DMA faults, and the fault record says who, where and why.
 * - vfio: the device bound to vfio-pci, its group in a type1 container, the buffers mapped with
 *   MAP_DMA at IOVAs the process chooses. Works with remapping on; each 2 MiB page is one
 *   superpage entry of the container's domain; UNMAP_DMA takes the access away again.
 * - bad MAP_DMA input gets VFIO's errno and leaves the mappings and the pinned memory as they were.
 */
import type { ContainerModule } from "inversify";
import legacyModule from "../drivers/legacy/legacy-module.js";
import { IoManager } from "../src/ddi/io-manager.js";
import { DmaEngineDevice } from "../src/devices/dma-engine-device.js";
import {
  CHANNEL_BASE,
  ChannelControl,
  ChannelRegister,
  ChannelStatus,
  DESCRIPTOR_SIZE,
  Descriptor,
  DescriptorControl,
  DescriptorStatus,
  DmaEngineRegister,
} from "../src/devices/dma-engine-registers.js";
import { LegacyDmaDevice } from "../src/devices/legacy-dma-device.js";
import { describeFaultReason, FaultReason } from "../src/iommu/fault-reason.js";
import type { FaultRecord } from "../src/iommu/fault-recorder.js";
import { Machine } from "../src/machine/machine.js";
import { REMAPPING_MODES, type RemappingMode } from "../src/machine/machine-options.js";
import { MiB, PAGE_SIZE } from "../src/platform/page.js";
import { formatRequesterId } from "../src/platform/pci-address.js";
import { PciCommand, PciConfigOffset } from "../src/platform/pci-config-space.js";
import type { ProcessAddressSpace } from "../src/platform/process-address-space.js";
import { ProcessManager } from "../src/platform/process-manager.js";
import { Pagemap } from "../src/virt/vfio/pagemap.js";
import { UioPciGeneric } from "../src/virt/vfio/uio-device.js";
import { Vfio } from "../src/virt/vfio/vfio.js";
import {
  VFIO_DMA_MAP_FLAG_READ,
  VFIO_DMA_MAP_FLAG_WRITE,
  VFIO_NOIOMMU_IOMMU,
  VFIO_PCI_BAR0_REGION_INDEX,
  VFIO_PCI_CONFIG_REGION_INDEX,
  VFIO_TYPE1v2_IOMMU,
} from "../src/virt/vfio/vfio-constants.js";
import type { VfioContainer } from "../src/virt/vfio/vfio-container.js";
import { VfioError } from "../src/virt/vfio/vfio-error.js";
import { deviceName } from "../src/virt/vfio/vfio-group.js";
import { vfioModule } from "../src/virt/vfio/vfio-module.js";
import { formatAddress, formatBytes } from "./explain.js";
import { patternBytes, sameBytes } from "./host-memory.js";
import type { SampleCheck, SampleDefinition, SampleReport } from "./sample-definition.js";

/** The process's memory: a 2 MiB page for the descriptor ring, scattered 4 KiB pages, 2 MiB pages. */
export const RING_BYTES = 2 * MiB;
export const SOURCE_BYTES = 512 * 1024;
export const DESTINATION_BYTES = 4 * MiB;
/** The copy lands across the boundary between the destination's two 2 MiB pages. */
export const DESTINATION_OFFSET = 2 * MiB - 256 * 1024;
export const LOCKED_LIMIT = 8 * MiB;
const RING_DESCRIPTORS = 256;
/** IOVAs the process picks for MAP_DMA (2 MiB aligned, so 2 MiB pages map as superpages). */
export const IOVA = { ring: 0x1000_0000, source: 0x2000_0000, destination: 0x4000_0000 } as const;
const TWO_POW_32 = 2 ** 32;
const MAX_TRANSFER = 1024 * 1024;

/** A user-space window on the device's registers (the mmap of BAR 0). */
interface RegisterWindow {
  read32(offset: number): number;
  write32(offset: number, value: number): void;
}

/** The process's buffers and what it turns their addresses into for the device. */
interface UserBuffers {
  readonly process: ProcessAddressSpace;
  readonly ring: number;
  readonly source: number;
  readonly destination: number;
  readonly data: Uint8Array;
}

export type UserDmaPath = "naive" | "vfio" | "noiommu";

export interface UserDmaRun {
  readonly mode: RemappingMode;
  readonly path: UserDmaPath;
  /** The destination holds the source's bytes. */
  readonly intact: boolean;
  /** The channel halted on a DMA error. */
  readonly halted: boolean;
  readonly descriptors: number;
  readonly faults: readonly FaultRecord[];
  readonly virtualTimeNs: number;
  /** vfio: bytes pinned while mapped, and after the container closed. */
  readonly pinnedBytes: number;
  readonly pinnedAfterClose: number;
  /** vfio: leaves of the domain that are 2 MiB superpages over the destination. */
  readonly superpages: number;
  /** vfio: after UNMAP_DMA of the destination, the device's write there faulted. */
  readonly revoked: boolean;
  /** The bus address the ring was programmed at: physical (naive, noiommu) or an IOVA. */
  readonly ringAddress: number;
  readonly requesterId: number;
}

function makeMachine(mode: RemappingMode, seed: number, modules: readonly ContainerModule[] = []): Machine {
  return new Machine({ remapping: mode, seed }, [
    vfioModule({ enableUnsafeNoiommuMode: mode === "off" }),
    ...modules,
  ]);
}

function allocate(machine: Machine, seed: number): UserBuffers {
  const process = machine.get(ProcessManager).create("dma-app", { lockedMemoryLimit: LOCKED_LIMIT });
  const ring = process.allocate(RING_BYTES, { largePages: true });
  const source = process.allocate(SOURCE_BYTES);
  const destination = process.allocate(DESTINATION_BYTES, { largePages: true });
  const data = patternBytes(SOURCE_BYTES, seed * 31 + 7);
  process.write(source, data);
  return { process, ring, source, destination, data };
}

/**
 * The user-space driver of the engine: channel 0, a ring in the process's memory, one descriptor
 * per stretch that is contiguous for the device both at the source and at the destination.
 * Returns the descriptors written.
 */
function programCopy(
  regs: RegisterWindow,
  buffers: UserBuffers,
  deviceAddress: (va: number) => number,
  source: number,
  destination: number,
  length: number,
): number {
  const { process } = buffers;
  const channel = (register: number): number => CHANNEL_BASE + register;
  regs.write32(channel(ChannelRegister.control), ChannelControl.reset);
  const ringAddress = deviceAddress(buffers.ring);
  regs.write32(channel(ChannelRegister.ringBaseLow), ringAddress % TWO_POW_32);
  regs.write32(channel(ChannelRegister.ringBaseHigh), Math.floor(ringAddress / TWO_POW_32));
  regs.write32(channel(ChannelRegister.ringSize), RING_DESCRIPTORS);
  regs.write32(channel(ChannelRegister.control), ChannelControl.enable | ChannelControl.interruptEnable);
  const descriptor = new Uint8Array(DESCRIPTOR_SIZE);
  const view = new DataView(descriptor.buffer);
  let count = 0;
  for (let done = 0; done < length; count++) {
    const from = deviceAddress(source + done);
    const to = deviceAddress(destination + done);
    const piece = Math.min(
      contiguous(deviceAddress, source + done, length - done),
      contiguous(deviceAddress, destination + done, length - done),
      MAX_TRANSFER,
    );
    descriptor.fill(0);
    view.setUint32(Descriptor.source, from % TWO_POW_32, true);
    view.setUint32(Descriptor.source + 4, Math.floor(from / TWO_POW_32), true);
    view.setUint32(Descriptor.destination, to % TWO_POW_32, true);
    view.setUint32(Descriptor.destination + 4, Math.floor(to / TWO_POW_32), true);
    view.setUint32(Descriptor.length, piece, true);
    done += piece;
    view.setUint32(Descriptor.control, done === length ? DescriptorControl.interrupt : 0, true);
    process.write(buffers.ring + count * DESCRIPTOR_SIZE, descriptor);
  }
  regs.write32(channel(ChannelRegister.tail), count % RING_DESCRIPTORS);
  return count;
}

/** Bytes from `va` (at most `max`) over which the device address grows with the virtual one. */
function contiguous(deviceAddress: (va: number) => number, va: number, max: number): number {
  const start = deviceAddress(va);
  let length = Math.min(max, PAGE_SIZE - (va % PAGE_SIZE));
  while (length < max && deviceAddress(va + length) === start + length) {
    length = Math.min(max, length + PAGE_SIZE);
  }
  return length;
}

function halted(regs: RegisterWindow): boolean {
  return (regs.read32(CHANNEL_BASE + ChannelRegister.status) & ChannelStatus.halted) !== 0;
}

function lastDescriptorDone(buffers: UserBuffers, count: number): boolean {
  const status = new Uint8Array(4);
  buffers.process.read(buffers.ring + (count - 1) * DESCRIPTOR_SIZE + Descriptor.status, status);
  return (new DataView(status.buffer).getUint32(0, true) & DescriptorStatus.done) !== 0;
}

function enableBusMaster(configRead: () => number, configWrite: (value: number) => void): void {
  configWrite((configRead() & 0xffff) | PciCommand.busMaster | PciCommand.memorySpace);
}

/** The seed's way: physical addresses from pagemap, the device in the kernel's default domain. */
export function runNaive(mode: RemappingMode, seed: number): UserDmaRun {
  const machine = makeMachine(mode, seed);
  const engine = new DmaEngineDevice({ channels: 1 });
  const rid = machine.pci.attach(engine);
  const buffers = allocate(machine, seed);
  const pagemap = new Pagemap(buffers.process);
  // mlock: what a pagemap user must do so the frames stay put (the locked-memory limit applies).
  for (const [va, bytes] of [
    [buffers.ring, RING_BYTES],
    [buffers.source, SOURCE_BYTES],
    [buffers.destination, DESTINATION_BYTES],
  ] as const) {
    buffers.process.pin(va, bytes);
  }
  const uio = machine.get(UioPciGeneric).bind(rid);
  uio.onInterrupt(() => uio.write32(DmaEngineRegister.interruptStatus, 0xffffffff));
  enableBusMaster(
    () => uio.configRead32(PciConfigOffset.command),
    (value) => uio.configWrite32(PciConfigOffset.command, value),
  );
  const regs: RegisterWindow = { read32: (o) => uio.read32(o), write32: (o, v) => uio.write32(o, v) };
  const destination = buffers.destination + DESTINATION_OFFSET;
  const count = programCopy(
    regs,
    buffers,
    (va) => pagemap.physicalAddress(va),
    buffers.source,
    destination,
    SOURCE_BYTES,
  );
  machine.runUntilIdle();
  const copied = new Uint8Array(SOURCE_BYTES);
  buffers.process.read(destination, copied);
  return {
    mode,
    path: "naive",
    intact: sameBytes(copied, buffers.data) && lastDescriptorDone(buffers, count),
    halted: halted(regs),
    descriptors: count,
    faults: machine.iommu.serviceFaults().filter((fault) => fault.requesterId === rid),
    virtualTimeNs: machine.scheduler.now,
    pinnedBytes: buffers.process.pinnedBytes,
    pinnedAfterClose: buffers.process.pinnedBytes,
    superpages: 0,
    revoked: false,
    ringAddress: pagemap.physicalAddress(buffers.ring),
    requesterId: rid,
  };
}

/** VFIO: type1 with remapping on; with remapping off, the unsafe noiommu mode (pagemap again). */
export function runVfio(mode: RemappingMode, seed: number): UserDmaRun {
  const machine = makeMachine(mode, seed);
  const engine = new DmaEngineDevice({ channels: 1 });
  const rid = machine.pci.attach(engine);
  const buffers = allocate(machine, seed);
  const vfio = machine.get(Vfio);
  vfio.bind(rid);
  const container = vfio.openContainer(buffers.process);
  const group = vfio.openGroup(vfio.groupOf(rid));
  group.setContainer(container);
  const noiommu = vfio.noiommu;
  container.setIommu(noiommu ? VFIO_NOIOMMU_IOMMU : VFIO_TYPE1v2_IOMMU);
  const flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE;
  let deviceAddress: (va: number) => number;
  if (noiommu) {
    const pagemap = new Pagemap(buffers.process);
    buffers.process.pin(buffers.ring, RING_BYTES);
    buffers.process.pin(buffers.source, SOURCE_BYTES);
    buffers.process.pin(buffers.destination, DESTINATION_BYTES);
    deviceAddress = (va) => pagemap.physicalAddress(va);
  } else {
    container.mapDma({ vaddr: buffers.ring, iova: IOVA.ring, size: RING_BYTES, flags });
    container.mapDma({
      vaddr: buffers.source,
      iova: IOVA.source,
      size: SOURCE_BYTES,
      flags: VFIO_DMA_MAP_FLAG_READ,
    });
    container.mapDma({ vaddr: buffers.destination, iova: IOVA.destination, size: DESTINATION_BYTES, flags });
    deviceAddress = (va) => iovaOf(buffers, va);
  }
  const device = group.getDevice(deviceName(rid));
  device.setIrqs(() =>
    device.regionWrite32(VFIO_PCI_BAR0_REGION_INDEX, DmaEngineRegister.interruptStatus, 0xffffffff),
  );
  enableBusMaster(
    () => device.regionRead32(VFIO_PCI_CONFIG_REGION_INDEX, PciConfigOffset.command),
    (value) => device.regionWrite32(VFIO_PCI_CONFIG_REGION_INDEX, PciConfigOffset.command, value),
  );
  const regs: RegisterWindow = {
    read32: (o) => device.regionRead32(VFIO_PCI_BAR0_REGION_INDEX, o),
    write32: (o, v) => device.regionWrite32(VFIO_PCI_BAR0_REGION_INDEX, o, v),
  };
  const destination = buffers.destination + DESTINATION_OFFSET;
  const count = programCopy(regs, buffers, deviceAddress, buffers.source, destination, SOURCE_BYTES);
  machine.runUntilIdle();
  const copied = new Uint8Array(SOURCE_BYTES);
  buffers.process.read(destination, copied);
  const intact = sameBytes(copied, buffers.data) && lastDescriptorDone(buffers, count);
  const wasHalted = halted(regs);
  const pinnedBytes = buffers.process.pinnedBytes;
  let superpages = 0;
  let revoked = false;
  const faults = machine.iommu.serviceFaults().filter((fault) => fault.requesterId === rid);
  const virtualTimeNs = machine.scheduler.now;
  if (!noiommu) {
    const domain = container.domain!;
    for (let offset = 0; offset < DESTINATION_BYTES; offset += 2 * MiB) {
      if (domain.lookup(IOVA.destination + offset)?.size === 2 * MiB) superpages++;
    }
    revoked = revokedAfterUnmap(machine, container, regs, buffers, rid);
  }
  device.close();
  group.close();
  container.close();
  return {
    mode,
    path: noiommu ? "noiommu" : "vfio",
    intact,
    halted: wasHalted,
    descriptors: count,
    faults,
    virtualTimeNs,
    pinnedBytes,
    pinnedAfterClose: buffers.process.pinnedBytes,
    superpages,
    revoked,
    ringAddress: deviceAddress(buffers.ring),
    requesterId: rid,
  };
}

function iovaOf(buffers: UserBuffers, va: number): number {
  if (va >= buffers.destination && va < buffers.destination + DESTINATION_BYTES) {
    return IOVA.destination + (va - buffers.destination);
  }
  if (va >= buffers.source && va < buffers.source + SOURCE_BYTES) return IOVA.source + (va - buffers.source);
  return IOVA.ring + (va - buffers.ring);
}

/** UNMAP_DMA the destination, then have the device write there again: the write must fault. */
function revokedAfterUnmap(
  machine: Machine,
  container: VfioContainer,
  regs: RegisterWindow,
  buffers: UserBuffers,
  rid: number,
): boolean {
  const unmapped = container.unmapDma({ iova: IOVA.destination, size: DESTINATION_BYTES });
  const before = buffers.process.pinnedBytes;
  programCopy(regs, buffers, (va) => iovaOf(buffers, va), buffers.source, buffers.destination, PAGE_SIZE);
  machine.runUntilIdle();
  const faults = machine.iommu.serviceFaults().filter((f) => f.requesterId === rid);
  return (
    unmapped === DESTINATION_BYTES &&
    before === RING_BYTES + SOURCE_BYTES &&
    halted(regs) &&
    faults.some((f) => f.access === "write" && f.address === IOVA.destination)
  );
}

/** One bad MAP_DMA (or related) call and what VFIO answered. */
export interface BadCall {
  readonly name: string;
  readonly expected: string;
  readonly got: string;
  /** The error's message ("" when nothing was thrown). */
  readonly message: string;
  /** Mappings and pinned bytes are as before the call. */
  readonly unchanged: boolean;
}

/** Bad input against a working type1 container (strict mode), next to a device a kernel driver runs. */
export function badCalls(seed: number): BadCall[] {
  const machine = makeMachine("strict", seed, [legacyModule]);
  const rid = machine.pci.attach(new DmaEngineDevice({ channels: 1 }));
  const kernelDriven = machine.pci.attach(new LegacyDmaDevice());
  const io = machine.get(IoManager);
  io.enumerate();
  io.loadDrivers();
  const buffers = allocate(machine, seed);
  const vfio = machine.get(Vfio);
  vfio.bind(rid);
  const container = vfio.openContainer(buffers.process);
  const group = vfio.openGroup(vfio.groupOf(rid));
  const flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE;
  const calls: BadCall[] = [];
  const attempt = (name: string, expected: string, call: () => unknown): void => {
    const mappings = JSON.stringify(container.mappings);
    const pinned = buffers.process.pinnedBytes;
    let got = "no error";
    let message = "";
    try {
      call();
    } catch (error) {
      if (!(error instanceof VfioError)) throw error;
      got = error.code;
      message = error.message;
    }
    const unchanged =
      JSON.stringify(container.mappings) === mappings && buffers.process.pinnedBytes === pinned;
    calls.push({ name, expected, got, message, unchanged });
  };
  attempt("MAP_DMA before VFIO_SET_IOMMU", "EINVAL", () =>
    container.mapDma({ vaddr: buffers.source, iova: IOVA.source, size: SOURCE_BYTES, flags }),
  );
  group.setContainer(container);
  container.setIommu(VFIO_TYPE1v2_IOMMU);
  container.mapDma({ vaddr: buffers.destination, iova: IOVA.destination, size: DESTINATION_BYTES, flags });
  const extra = buffers.process.allocate(6 * MiB, { largePages: true });
  const cases: [string, string, () => unknown][] = [
    [
      "zero size",
      "EINVAL",
      () => container.mapDma({ vaddr: buffers.source, iova: IOVA.source, size: 0, flags }),
    ],
    [
      "unaligned vaddr",
      "EINVAL",
      () => container.mapDma({ vaddr: buffers.source + 16, iova: IOVA.source, size: PAGE_SIZE, flags }),
    ],
    [
      "unaligned iova",
      "EINVAL",
      () => container.mapDma({ vaddr: buffers.source, iova: IOVA.source + 512, size: PAGE_SIZE, flags }),
    ],
    [
      "unaligned size",
      "EINVAL",
      () => container.mapDma({ vaddr: buffers.source, iova: IOVA.source, size: 1000, flags }),
    ],
    [
      "no READ or WRITE flag",
      "EINVAL",
      () => container.mapDma({ vaddr: buffers.source, iova: IOVA.source, size: PAGE_SIZE, flags: 0 }),
    ],
    [
      "IOVA in the MSI window",
      "EINVAL",
      () => container.mapDma({ vaddr: buffers.source, iova: 0xfee0_0000, size: PAGE_SIZE, flags }),
    ],
    [
      "IOVA beyond 2^48",
      "EINVAL",
      () => container.mapDma({ vaddr: buffers.source, iova: 2 ** 48, size: PAGE_SIZE, flags }),
    ],
    [
      "IOVA overlapping a mapping",
      "EEXIST",
      () =>
        container.mapDma({
          vaddr: buffers.source,
          iova: IOVA.destination + 2 * MiB,
          size: SOURCE_BYTES,
          flags,
        }),
    ],
    [
      "vaddr range with an unmapped page (unpinnable)",
      "EFAULT",
      () =>
        container.mapDma({ vaddr: buffers.source, iova: IOVA.source, size: SOURCE_BYTES + PAGE_SIZE, flags }),
    ],
    [
      "vaddr never allocated",
      "EFAULT",
      () => container.mapDma({ vaddr: 0x7000_0000_0000, iova: IOVA.source, size: PAGE_SIZE, flags }),
    ],
    [
      "over the locked-memory limit",
      "ENOMEM",
      () => container.mapDma({ vaddr: extra, iova: 0x8000_0000, size: 6 * MiB, flags }),
    ],
    [
      "UNMAP_DMA cutting a mapping in two",
      "EINVAL",
      () => container.unmapDma({ iova: IOVA.destination, size: 2 * MiB }),
    ],
    [
      "container closed (bad fd)",
      "EBADF",
      () =>
        closedContainer(vfio, buffers.process).mapDma({
          vaddr: buffers.source,
          iova: IOVA.source,
          size: PAGE_SIZE,
          flags,
        }),
    ],
    ["unknown group", "ENOENT", () => vfio.openGroup(vfio.groupOf(rid) + 1)],
    ["group opened twice", "EBUSY", () => vfio.openGroup(vfio.groupOf(rid))],
    ["group already in a container", "EINVAL", () => group.setContainer(vfio.openContainer(buffers.process))],
    ["device already bound to vfio-pci", "EBUSY", () => vfio.bind(rid)],
    ["device driven by a kernel driver", "EBUSY", () => vfio.bind(kernelDriven)],
  ];
  for (const [name, expected, call] of cases) attempt(name, expected, call);
  return calls;
}

function closedContainer(vfio: Vfio, process: ProcessAddressSpace): VfioContainer {
  const container = vfio.openContainer(process);
  container.close();
  return container;
}

/** What a kernel log prints for a DMAR fault (Linux dmar_fault). */
export function describeFaultRecord(fault: FaultRecord): string {
  const reason = fault.reason.toString(16).padStart(2, "0");
  return `DMAR: [DMA ${fault.access === "read" ? "Read" : "Write"}] Request device [${formatRequesterId(fault.requesterId)}] fault addr ${formatAddress(fault.address)} [fault reason 0x${reason}] ${describeFaultReason(fault.reason)}`;
}

function pathName(run: UserDmaRun): string {
  if (run.path === "naive") return "pagemap + uio";
  return run.path === "noiommu" ? "vfio noiommu + pagemap" : "vfio type1 + MAP_DMA";
}

function outcomeOf(run: UserDmaRun): string {
  if (run.intact) {
    return `copied ${formatBytes(SOURCE_BYTES)} intact in ${run.descriptors} descriptor(s), ${run.virtualTimeNs} ns`;
  }
  if (run.faults.length > 0) {
    return `FAULTED (${run.faults.length} fault record(s)), channel ${run.halted ? "halted" : "running"}`;
  }
  return "damaged, no fault";
}

function describeRun(run: UserDmaRun): string {
  return `${run.mode.padEnd(11)} ${pathName(run).padEnd(24)} ${outcomeOf(run)}`;
}

const userDma: SampleDefinition = {
  name: "user-dma",
  description:
    "a process's memory (2 MiB pages included) as a DMA target: pagemap vs VFIO, in every IOMMU mode",
  run({ seed }): SampleReport {
    const naive = REMAPPING_MODES.map((mode) => runNaive(mode, seed));
    const vfio = REMAPPING_MODES.map((mode) => runVfio(mode, seed));
    const bad = badCalls(seed);
    const remapped = (mode: RemappingMode): boolean => mode === "strict" || mode === "lazy";
    const checks: SampleCheck[] = [];
    for (const run of naive) {
      if (remapped(run.mode)) {
        const first = run.faults[0];
        checks.push({
          name: `naive path faults with remapping ${run.mode}`,
          ok:
            !run.intact &&
            run.halted &&
            first !== undefined &&
            first.requesterId === run.requesterId &&
            first.address === run.ringAddress &&
            first.reason === FaultReason.ReadNotPermitted,
          detail: first === undefined ? "no fault recorded" : describeFaultRecord(first),
        });
      } else {
        checks.push({
          name: `naive path works with remapping ${run.mode}`,
          ok: run.intact && run.faults.length === 0,
          detail: `${pathName(run)}: ${outcomeOf(run)}`,
        });
      }
    }
    for (const run of vfio) {
      checks.push({
        name: `${run.path} path works with remapping ${run.mode}`,
        ok: run.intact && run.faults.length === 0 && !run.halted,
        detail: `${pathName(run)}: ${outcomeOf(run)}`,
      });
      if (run.path === "vfio") {
        checks.push({
          name: `vfio ${run.mode}: 2 MiB pages map as superpages, unmap revokes, unpin on close`,
          ok:
            run.superpages === 2 &&
            run.revoked &&
            run.pinnedBytes === RING_BYTES + SOURCE_BYTES + DESTINATION_BYTES &&
            run.pinnedAfterClose === 0,
          detail: `${run.superpages} superpage(s); pinned ${formatBytes(run.pinnedBytes)} -> ${formatBytes(run.pinnedAfterClose)}; write after UNMAP_DMA ${run.revoked ? "faulted" : "did not fault"}`,
        });
      }
    }
    for (const call of bad) {
      checks.push({
        name: `bad call: ${call.name}`,
        ok: call.got === call.expected && call.unchanged,
        detail: `${call.got} (expected ${call.expected})${call.unchanged ? ", state unchanged" : ", STATE CHANGED"}`,
      });
    }
    const strictNaive = naive.find((run) => run.mode === "strict")!;
    const strictVfio = vfio.find((run) => run.mode === "strict")!;
    const lines = [
      `A process maps ${formatBytes(RING_BYTES)} (2 MiB page, descriptor ring), ${formatBytes(SOURCE_BYTES)} (4 KiB pages) and ${formatBytes(DESTINATION_BYTES)} (2 MiB pages),`,
      `then has the DMA engine copy the ${formatBytes(SOURCE_BYTES)} into the 2 MiB pages, across their boundary. Locked-memory limit ${formatBytes(LOCKED_LIMIT)}.`,
      "",
      ...naive.map(describeRun),
      ...vfio.map(describeRun),
      "",
      "With remapping on, the naive path's fault, as the kernel log shows it:",
      ...strictNaive.faults.map((fault) => `  ${describeFaultRecord(fault)}`),
      "",
      `VFIO in strict mode: ${strictVfio.descriptors} descriptor(s) (IOVAs are contiguous) vs ${strictNaive.descriptors} with physical addresses; ${strictVfio.superpages} superpage entries for the 2 MiB pages.`,
      "",
      "Bad calls:",
      ...bad.map(
        (call) => `  ${call.name}${call.unchanged ? "" : " (STATE CHANGED)"}\n      ${call.message}`,
      ),
    ];
    const figures: Record<string, number | string | boolean> = {
      sourceBytes: SOURCE_BYTES,
      lockedMemoryLimit: LOCKED_LIMIT,
      badCalls: bad.length,
      badCallsAsExpected: bad.filter((call) => call.got === call.expected && call.unchanged).length,
    };
    for (const run of [...naive, ...vfio]) {
      const key = `${run.path}.${run.mode}`;
      figures[`${key}.intact`] = run.intact;
      figures[`${key}.faults`] = run.faults.length;
      figures[`${key}.descriptors`] = run.descriptors;
      figures[`${key}.virtualTimeNs`] = run.virtualTimeNs;
      if (run.path === "vfio") {
        figures[`${key}.superpages`] = run.superpages;
        figures[`${key}.pinnedBytes`] = run.pinnedBytes;
      }
    }
    const fault = strictNaive.faults[0];
    if (fault !== undefined) {
      figures["naive.strict.faultRequester"] = formatRequesterId(fault.requesterId);
      figures["naive.strict.faultAddress"] = formatAddress(fault.address);
      figures["naive.strict.faultReason"] = fault.reason;
    }
    return { name: "user-dma", checks, figures, lines };
  },
};

export default userDma;
