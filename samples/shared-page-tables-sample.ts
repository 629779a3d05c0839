/**
 * shared-page-tables (seed 004, the VCMM thread): one domain page table used by two devices that
 * sit behind DIFFERENT remapping units, device-only ("one-sided") mappings of memory the CPU never
 * maps, and the DMA_IOMMU_INTERFACE V1/V2 routines a driver calls to build them.
 *
 * The machine has two VT-d units: dmar0 covers bus 1 (a display engine, the consumer), dmar1
 * every other requester (a camera, the producer). The sample plays the driver that owns both:
 * it creates one Translate domain with the HAL's Buddy allocator, attaches both devices, maps 64
 * frames that no kernel virtual address points at as ONE logical range, and lets the camera
 * write frames the display reads, with no CPU copy. Then a reserved range (ring of buffers)
 * recycled without a single page-table allocation, strict unmaps invalidated on both units,
 * a fault handed to the driver's handler at PASSIVE_LEVEL, and the clean-up.
 *
 * Every check is computed from the machine: context entries read back from the units' tables in
 * RAM, invalidation commands the units executed, table frames the frame allocator holds, bytes
 * the devices read.
 */
import { IoManager } from "../src/ddi/io-manager.js";
import { Kernel } from "../src/ddi/kernel.js";
import { RogueDevice } from "../src/devices/rogue-device.js";
import { IommuInterface } from "../src/hal/iommu-interface/iommu-interface.js";
import {
  type DMA_IOMMU_INTERFACE_V1,
  type DMA_IOMMU_INTERFACE_V2,
  DomainConfigurationX64,
  DomainTypeTranslate,
  type FAULT_INFORMATION,
  IOMMU_PERMISSION_READ,
  IOMMU_PERMISSION_WRITE,
  IommuDmaLogicalAllocatorBuddy,
  MapPhysicalAddressTypePfn,
  TranslationFault,
} from "../src/hal/wdm/iommu-interface.js";
import { NT_SUCCESS, ntStatusName, STATUS_NOT_SUPPORTED, STATUS_SUCCESS } from "../src/hal/wdm/ntstatus.js";
import type { IommuInvalidateEvent } from "../src/iommu/iommu-events.js";
import { Machine } from "../src/machine/machine.js";
import { PAGE_SIZE } from "../src/platform/page.js";
import { formatAddress, formatBytes } from "./explain.js";
import type { SampleCheck, SampleDefinition, SampleReport } from "./sample-definition.js";

/** Requester id of the display engine: bus 1, device 0, function 0 (dmar0's only requester). */
const DISPLAY_RID = 0x100;
const FRAME_PAGES = 64;
const RING_SLOTS = 8;
const RING_SLOT_PAGES = 16;
const RING_ROUNDS = 6;
const RW = IOMMU_PERMISSION_READ | IOMMU_PERMISSION_WRITE;
const BUDDY_39 = {
  LogicalAllocatorType: IommuDmaLogicalAllocatorBuddy,
  BuddyAllocatorConfig: { AddressWidth: 39 },
};

function pfnArray(frames: readonly number[]) {
  return {
    MapType: MapPhysicalAddressTypePfn,
    PfnArray: { PageFrame: frames, NumberOfPages: frames.length },
  };
}

function picture(bytes: number, seed: number): Uint8Array {
  const data = new Uint8Array(bytes);
  for (let i = 0; i < bytes; i += 4096) data.fill((seed + i / 4096) % 251, i, Math.min(bytes, i + 4096));
  return data;
}

class Lab {
  readonly machine: Machine;
  readonly kernel: Kernel;
  readonly hal: IommuInterface;
  readonly camera = new RogueDevice({ name: "camera (producer)" });
  readonly display = new RogueDevice({ name: "display engine (consumer)" });
  readonly invalidations: IommuInvalidateEvent[] = [];
  readonly checks: SampleCheck[] = [];
  readonly lines: string[] = [];
  readonly #deviceOnlyOwner: number;

  constructor(seed: number) {
    this.machine = new Machine({
      remapping: "strict",
      seed,
      iommuUnits: [
        { name: "dmar0", requesters: [DISPLAY_RID] },
        { name: "dmar1", requesters: "rest" },
      ],
    });
    this.machine.pci.attach(this.camera, { busMaster: true });
    this.machine.pci.attach(this.display, { bus: 1, device: 0, busMaster: true });
    this.machine.get(IoManager).enumerate();
    this.kernel = this.machine.get(Kernel);
    this.hal = this.machine.get(IommuInterface);
    this.machine.events.on("iommu.invalidate", (event) => this.invalidations.push(event));
    this.#deviceOnlyOwner = this.machine.frames.registerOwner("sample.device-only");
  }

  pdo(device: RogueDevice) {
    return this.machine.get(IoManager).node(device.requesterId).pdo;
  }

  /** Frames with no kernel mapping: what MmAllocatePagesForMdlEx gives a driver before any MmMapLockedPages. */
  deviceOnlyFrames(pages: number): number[] {
    return this.machine.frames.allocate(pages, { owner: this.#deviceOnlyOwner });
  }

  freeDeviceOnly(frames: readonly number[]): void {
    this.machine.frames.free(frames, this.#deviceOnlyOwner);
  }

  tableFrames(): number {
    return this.machine.frames.framesOwnedBy(this.machine.frames.registerOwner("iommu"));
  }

  check(name: string, ok: boolean, detail: string): void {
    this.checks.push({ name, ok, detail });
  }
}

function run(seed: number): SampleReport {
  const lab = new Lab(seed);
  const { machine, kernel } = lab;
  const [dmar0, dmar1] = machine.iommu.units;

  const ex = kernel.IoGetIommuInterfaceEx(2, 0);
  const ex1 = kernel.IoGetIommuInterfaceEx(1, 0);
  lab.check(
    "interface",
    ex.Status === STATUS_SUCCESS && ex.InterfaceOut?.Version === 2,
    ntStatusName(ex.Status),
  );
  const v2 = (ex.InterfaceOut as { V2: DMA_IOMMU_INTERFACE_V2 }).V2;
  const v1 = (ex1.InterfaceOut as { V1: DMA_IOMMU_INTERFACE_V1 }).V1;

  // One Translate domain with the Buddy allocator, both devices attached.
  const created = v2.CreateDomainEx(DomainTypeTranslate, 0, BUDDY_39, undefined);
  const domain = created.DomainOut!;
  const camera = v2.CreateDevice(lab.pdo(lab.camera), undefined).DmaDeviceOut!;
  const display = v2.CreateDevice(lab.pdo(lab.display), undefined).DmaDeviceOut!;
  const types = v2.QueryAvailableDomainTypes(camera);
  const attachCamera = v2.AttachDeviceEx(domain, camera);
  const pageTable = lab.hal.hardwareDomain(domain)!.pageTable;
  const tablesWithOne = pageTable.tableCount;
  const attachDisplay = v2.AttachDeviceEx(domain, display);
  const contextTables = pageTable.tableCount - tablesWithOne;
  const cameraEntry = dmar1!.readContextEntry(lab.camera.requesterId);
  const displayEntry = dmar0!.readContextEntry(lab.display.requesterId);
  const root = pageTable.rootAddress;
  lab.check(
    "one page table, two units",
    NT_SUCCESS(attachCamera) &&
      NT_SUCCESS(attachDisplay) &&
      cameraEntry.pageTableAddress === root &&
      displayEntry.pageTableAddress === root,
    `dmar1 ${lab.camera.requesterId.toString(16)} and dmar0 ${lab.display.requesterId.toString(16)} both point at ${formatAddress(root)}; DIDs ${cameraEntry.domainId} (dmar1), ${displayEntry.domainId} (dmar0)`,
  );

  // A device-only frame buffer: 64 scattered frames, one logical range.
  const frames = lab.deviceOnlyFrames(FRAME_PAGES);
  const scattered = frames.some((pfn, i) => i > 0 && pfn !== frames[i - 1]! + 1);
  const tablesBeforeMap = lab.tableFrames();
  const mapped = v2.MapLogicalRangeEx(domain, RW, pfnArray(frames), undefined, undefined, undefined);
  const tablesForMap = lab.tableFrames() - tablesBeforeMap;
  const la = mapped.LogicalAddressOut;
  const bytes = FRAME_PAGES * PAGE_SIZE;
  let intact = 0;
  const frameCount = 4;
  for (let n = 0; n < frameCount; n++) {
    const image = picture(bytes, seed + n);
    const wrote = lab.camera.write(la, image);
    const seen = lab.display.read(la, bytes);
    if (
      wrote.outcome === "complete" &&
      seen.outcome === "complete" &&
      Buffer.compare(seen.bytes, image) === 0
    )
      intact++;
  }
  lab.check(
    "device-only mapping",
    NT_SUCCESS(mapped.Status) && intact === frameCount,
    `${frameCount} frames of ${formatBytes(bytes)} camera -> display at ${formatAddress(la)}, ${scattered ? "scattered" : "contiguous"} frames with no kernel VA, ${intact}/${frameCount} intact`,
  );

  // Per-device tables would have cost a second table and a second map of the same pages.
  const separate = v2.CreateDomainEx(DomainTypeTranslate, 0, BUDDY_39, undefined).DomainOut!;
  const tablesBeforeSecond = lab.tableFrames();
  const second = v2.MapLogicalRangeEx(separate, RW, pfnArray(frames), undefined, undefined, undefined);
  const tablesForSecondCopy = lab.tableFrames() - tablesBeforeSecond + 1;
  v2.UnmapLogicalRange(separate, second.LogicalAddressOut, FRAME_PAGES);
  v2.DeleteDomain(separate);
  lab.check(
    "sharing saves tables",
    contextTables === 0 && tablesForSecondCopy > 0,
    `attaching the second device added ${contextTables} page-table frames (only a context entry on dmar0); a private copy of the mapping needs ${tablesForSecondCopy} (its own root included)`,
  );

  // Strict unmap: one page-selective invalidation per unit the domain is attached to.
  const faults: { info: FAULT_INFORMATION; irql: number }[] = [];
  const fault = v1.SetDeviceFaultReporting(lab.pdo(lab.display), 0, true, {
    FaultHandler: (_context, info) => faults.push({ info, irql: kernel.KeGetCurrentIrql() }),
    FaultContext: undefined,
  });
  lab.invalidations.length = 0;
  const unmap = v2.UnmapLogicalRange(domain, la, FRAME_PAGES);
  const units = [
    ...new Set(lab.invalidations.filter((e) => e.kind === "iotlb-page").map((e) => e.unit)),
  ].sort();
  const after = [lab.camera.write(la, Uint8Array.of(1)).outcome, lab.display.read(la, 16).outcome];
  machine.runUntilIdle();
  lab.check(
    "unmap reaches both units",
    NT_SUCCESS(unmap) && units.join(",") === "dmar0,dmar1" && after.every((o) => o === "blocked"),
    `invalidated on ${units.join(" and ")}; afterwards camera ${after[0]}, display ${after[1]}`,
  );
  const report = faults[0];
  lab.check(
    "fault handler at PASSIVE_LEVEL",
    NT_SUCCESS(fault) &&
      faults.length === 1 &&
      report!.irql === 0 &&
      report!.info.X64.FaultAddress === la &&
      report!.info.X64.Type === TranslationFault &&
      report!.info.X64.DomainHandle === domain,
    report === undefined
      ? "no report"
      : `${faults.length} report: ${formatAddress(report.info.X64.FaultAddress)}, TranslationFault, IRQL ${report.irql}`,
  );
  v1.SetDeviceFaultReporting(lab.pdo(lab.display), 0, false, undefined);

  // A reserved ring: tables built once, segments recycled with no allocation at all.
  const ring = v2.ReserveLogicalAddressRange(
    domain,
    RING_SLOTS * RING_SLOT_PAGES * PAGE_SIZE,
    undefined,
    undefined,
    undefined,
  );
  const token = ring.LogicalAddressToken!;
  const slotFrames = lab.deviceOnlyFrames(RING_SLOTS * RING_SLOT_PAGES);
  const tablesBeforeRing = lab.tableFrames();
  let moved = 0;
  let ringOk = NT_SUCCESS(ring.Status);
  for (let round = 0; round < RING_ROUNDS; round++) {
    for (let slot = 0; slot < RING_SLOTS; slot++) {
      const first = ((round + slot) % RING_SLOTS) * RING_SLOT_PAGES;
      const segment = v2.MapReservedLogicalRange(
        token,
        slot * RING_SLOT_PAGES * PAGE_SIZE,
        RW,
        pfnArray(slotFrames.slice(first, first + RING_SLOT_PAGES)),
      );
      const at = token.LogicalAddressBase + segment.MappedSegment!.Offset;
      const data = picture(RING_SLOT_PAGES * PAGE_SIZE, round * 17 + slot);
      lab.camera.write(at, data);
      const seen = lab.display.read(at, data.length);
      ringOk &&= NT_SUCCESS(segment.Status) && Buffer.compare(seen.bytes, data) === 0;
      moved += data.length;
      ringOk &&= NT_SUCCESS(v2.UnmapReservedLogicalRange(segment.MappedSegment!));
    }
  }
  const ringTables = lab.tableFrames() - tablesBeforeRing;
  const freed = v2.FreeReservedLogicalAddressRange(token);
  lab.check(
    "reserved range never allocates",
    ringOk && ringTables === 0 && NT_SUCCESS(freed),
    `${RING_ROUNDS * RING_SLOTS} map/unmap cycles, ${formatBytes(moved)} moved, ${ringTables} table frames allocated or freed`,
  );

  // V1 caller-managed domain: DMA blocked until configured, and x64 configuration is the system's.
  const unmanaged = v1.CreateDomain(false).DomainOut!;
  v2.DetachDeviceEx(camera);
  v1.AttachDevice(unmanaged, lab.pdo(lab.camera), 0, 1);
  const blocked = lab.camera.read(0x100000, 64).outcome;
  const configure = v1.ConfigureDomain(unmanaged, { Type: DomainConfigurationX64 });
  v1.DetachDevice(unmanaged, lab.pdo(lab.camera), 0);
  v1.DeleteDomain(unmanaged);
  lab.check(
    "caller-managed domain blocks DMA",
    blocked === "blocked" && configure === STATUS_NOT_SUPPORTED,
    `camera ${blocked} before configuration; ConfigureDomain(X64) ${ntStatusName(configure)}`,
  );

  // Clean-up: everything handed back.
  v2.DetachDeviceEx(display);
  v2.DeleteDevice(camera);
  v2.DeleteDevice(display);
  const deleted = v2.DeleteDomain(domain);
  lab.freeDeviceOnly(frames);
  lab.freeDeviceOnly(slotFrames);
  const left = lab.hal.resources();
  const clean = Object.values(left).every((n) => n === 0);
  lab.check(
    "clean-up",
    NT_SUCCESS(deleted) && clean,
    `domains ${left.domains}, devices ${left.devices}, tokens ${left.tokens}, mapped pages ${left.mappedPages}`,
  );

  const lines = [
    `dmar0 covers the display engine (${lab.display.requesterId.toString(16)}), dmar1 the camera (${lab.camera.requesterId.toString(16)}).`,
    `One Translate domain (Buddy allocator, 39 bits): available types 0b${types.toString(2)}; both context entries point at ${formatAddress(root)}, DID ${displayEntry.domainId} on dmar0 and ${cameraEntry.domainId} on dmar1 (each unit numbers its domains itself).`,
    `${FRAME_PAGES} frames with no CPU mapping became one logical range at ${formatAddress(la)} (${tablesForMap} table frames); the camera wrote ${frameCount} frames, the display read them, the CPU copied nothing.`,
    `A second device cost ${contextTables} page-table frames; a per-device copy of the same mapping would cost ${tablesForSecondCopy} more and a second map call.`,
    `UnmapLogicalRange invalidated on ${units.join(" and ")} before returning; the display's next read faulted and its handler ran at PASSIVE_LEVEL.`,
    `A reserved ${formatBytes(RING_SLOTS * RING_SLOT_PAGES * PAGE_SIZE)} ring was mapped and unmapped ${RING_ROUNDS * RING_SLOTS} times with ${ringTables} page-table allocations.`,
  ];
  return {
    name: "shared-page-tables",
    checks: lab.checks,
    lines,
    figures: {
      rootTable: root,
      didDmar0: displayEntry.domainId,
      didDmar1: cameraEntry.domainId,
      deviceOnlyPages: FRAME_PAGES,
      logicalAddress: la,
      tableFramesForMapping: tablesForMap,
      tableFramesSecondDevice: contextTables,
      tableFramesPrivateCopy: tablesForSecondCopy,
      invalidatedUnits: units.length,
      faultsReported: faults.length,
      ringCycles: RING_ROUNDS * RING_SLOTS,
      ringBytes: moved,
      ringTableAllocations: ringTables,
      iotlbMisses: machine.counters.get("iommu.iotlb.miss"),
      virtualTimeNs: machine.scheduler.now,
    },
  };
}

const sample: SampleDefinition = {
  name: "shared-page-tables",
  description:
    "one domain page table for devices behind two IOMMU units, device-only mappings, DMA_IOMMU_INTERFACE V1/V2",
  run: (options) => run(options.seed),
};

export default sample;
