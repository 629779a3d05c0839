/**
 * pv-iommu (seed 001, Joerg Roedel 2008): "reserve a configurable amount of contiguous guest
 * physical memory and map it dma contiguous using some kind of hardware IOMMU. ... The guest
 * does dma_coherent allocations from this memory directly and is done. For map_single and map_sg
 * the guest can do bounce buffering. We avoid nearly all pvdma hypercalls with this approach ...
 * and solve also the problems with device dma_masks and guest memory that is not contiguous on
 * the host side. For systems without any kind of hardware IOMMU ... bounce buffering between
 * host and guest (in this case we can not avoid the hypercalls) ... upon the dma_*_sync calls."
 *
 * Three runs of one workload (the unmodified nic, disk and legacy drivers; the legacy chip has 32
 * address lines) in a 64 MiB guest on an 8 GiB host, where most of the guest's RAM lies above
 * 4 GiB on the host:
 * - paravirtual, host with an IOMMU: the 4 MiB region is mapped once per device (one hypercall
 *   each), below 4 GiB; coherent buffers come from it; every mapping bounces into it.
 * - trapped (an emulated IOMMU in caching mode, one trap per map and unmap): the baseline.
 * - paravirtual, host without an IOMMU: the host bounces below each device's reach, with a
 *   hypercall at each map and at each sync.
 */
import diskModule from "../drivers/disk/disk-module.js";
import legacyModule from "../drivers/legacy/legacy-module.js";
import nicModule from "../drivers/nic/nic-module.js";
import { DiskController } from "../src/devices/disk-controller.js";
import { LegacyDmaDevice } from "../src/devices/legacy-dma-device.js";
import { LoopbackWire } from "../src/devices/loopback-wire.js";
import { MemoryDiskImage } from "../src/devices/memory-disk-image.js";
import { NicDevice } from "../src/devices/nic-device.js";
import type { RemappingMode } from "../src/machine/machine-options.js";
import { GiB, MiB, PAGE_SIZE } from "../src/platform/page.js";
import type { DeviceAssignment } from "../src/virt/device-assignment.js";
import { HOST_BOUNCE_OWNER } from "../src/virt/paravirtual-host.js";
import type { HypercallKind } from "../src/virt/virt-events.js";
import type { GuestDmaInterface } from "../src/virt/virt-options.js";
import {
  check,
  DmaLanding,
  diskTraffic,
  faultsOf,
  legacyTraffic,
  nicTraffic,
  startGuest,
  virtHost,
} from "./device-assignment-sample.js";
import { formatAddress, formatBytes, plural } from "./explain.js";
import type { SampleCheck, SampleDefinition, SampleReport } from "./sample-definition.js";

const REGION_BYTES = 4 * MiB;
const FOUR_GIB = 4 * GiB;

type Setup = "paravirtual" | "trapped" | "bounce";
const SETUPS: Readonly<Record<Setup, { readonly host: RemappingMode; readonly guest: GuestDmaInterface }>> = {
  paravirtual: { host: "strict", guest: "paravirtual" },
  trapped: { host: "strict", guest: "trapped" },
  bounce: { host: "off", guest: "paravirtual" },
};

interface DeviceRun {
  readonly name: string;
  readonly lowest: number;
  readonly highest: number;
  readonly accesses: number;
  readonly elsewhere: number;
  readonly aperture: DeviceAssignment["aperture"];
}

interface SetupRun {
  readonly setup: Setup;
  readonly intact: boolean;
  readonly faults: number;
  readonly hypercalls: number;
  readonly ns: number;
  readonly byKind: Readonly<Partial<Record<HypercallKind, number>>>;
  readonly devices: readonly DeviceRun[];
  /** Common buffers the guest HAL handed out, and how many of those lie in an aperture. */
  readonly commonBuffers: number;
  readonly commonInAperture: number;
  /** Bytes the guest copied into and out of its region. */
  readonly regionBounceBytes: number;
  /** Guest pages whose host frame lies above 4 GiB. */
  readonly guestPagesAbove4G: number;
  readonly liveHostBounces: number;
}

function runSetup(setup: Setup, seed: number): SetupRun {
  const { host, hypervisor } = virtHost({ memory: 8 * GiB, remapping: SETUPS[setup].host, seed });
  const guest = hypervisor.createGuest({
    name: setup,
    memory: 64 * MiB,
    dmaInterface: SETUPS[setup].guest,
    regionBytes: REGION_BYTES,
    modules: [nicModule, diskModule, legacyModule],
  });
  const nic = new NicDevice();
  host.pci.attach(nic);
  new LoopbackWire().plug(nic);
  const image = new MemoryDiskImage(64 * MiB);
  const disk = new DiskController(image);
  host.pci.attach(disk);
  const chip = new LegacyDmaDevice();
  host.pci.attach(chip);
  const assignments = [nic, disk, chip].map((device) => hypervisor.assignDevice(guest, device.requesterId));
  const [nicA, diskA, chipA] = assignments as [DeviceAssignment, DeviceAssignment, DeviceAssignment];
  const extraOwners = setup === "bounce" ? [HOST_BOUNCE_OWNER] : [];
  const landings = assignments.map((a) => new DmaLanding(host, guest, a, extraOwners));
  const faults = assignments.map((a) => faultsOf(host, a.hostRequesterId));
  const byKind: Partial<Record<HypercallKind, number>> = {};
  const stopTraps = host.events.on("virt.hypercall", (e) => {
    byKind[e.kind] = (byKind[e.kind] ?? 0) + 1;
  });
  const commonBuffers: number[] = [];
  const stopMaps = guest.machine.events.on("dma.map", (e) => {
    if (e.kind === "common-buffer") commonBuffers.push(e.iova);
  });

  startGuest(guest);
  const results = [
    nicTraffic(host, guest, nicA.guestRequesterId, nic.mac, seed),
    diskTraffic(host, guest, diskA.guestRequesterId, image, seed),
    legacyTraffic(host, guest, chipA.guestRequesterId, chip, seed),
  ];
  host.runUntilIdle();
  stopTraps();
  stopMaps();
  for (const f of faults) f.dispose();
  for (const l of landings) l.dispose();

  const apertures = assignments.flatMap((a) => (a.aperture === undefined ? [] : [a.aperture]));
  const inAperture = (iova: number): boolean =>
    apertures.some((ap) => iova >= ap.base && iova < ap.base + ap.pages * PAGE_SIZE);
  let above = 0;
  guest.memory.forEachBacking((_pfn, hostPfn) => {
    if (hostPfn * PAGE_SIZE >= FOUR_GIB) above++;
  });
  const totals = guest.hypercalls;
  return {
    setup,
    intact: results.every((r) => r.intact),
    faults: faults.reduce((n, f) => n + f.faults.length, 0),
    hypercalls: totals.hypercalls,
    ns: totals.ns,
    byKind,
    devices: assignments.map((a, i) => ({
      name: a.device.name,
      lowest: landings[i]!.lowestBusAddress,
      highest: landings[i]!.highestBusAddress,
      accesses: landings[i]!.accesses,
      elsewhere: landings[i]!.foreign,
      aperture: a.aperture,
    })),
    commonBuffers: commonBuffers.length,
    commonInAperture: commonBuffers.filter(inAperture).length,
    regionBounceBytes: guest.counters.get("virt.pv.bounce.bytes"),
    guestPagesAbove4G: above,
    liveHostBounces: hypervisor.liveBounceBuffers,
  };
}

function run(seed: number): SampleReport {
  const pv = runSetup("paravirtual", seed);
  const trapped = runSetup("trapped", seed);
  const bounce = runSetup("bounce", seed);
  const all = [pv, trapped, bounce];
  const chip = (r: SetupRun): DeviceRun => r.devices[2]!;
  const withinAperture = (d: DeviceRun): boolean =>
    d.aperture !== undefined &&
    d.accesses > 0 &&
    d.lowest >= d.aperture.base &&
    d.highest < d.aperture.base + d.aperture.pages * PAGE_SIZE;
  const kind = (r: SetupRun, k: HypercallKind): number => r.byKind[k] ?? 0;
  const saved = trapped.hypercalls - pv.hypercalls;
  const checks: SampleCheck[] = [
    check(
      "the unmodified drivers work in all three",
      all.every((r) => r.intact && r.faults === 0 && r.devices.every((d) => d.elsewhere === 0)),
      all
        .map((r) => `${r.setup}: ${r.intact ? "intact" : "DAMAGED"}, ${plural(r.faults, "fault")}`)
        .join("; "),
    ),
    check(
      "region mapped once per device, no hypercall per mapping",
      pv.hypercalls === pv.devices.length && kind(pv, "pv-attach") === pv.devices.length,
      `${plural(pv.hypercalls, "hypercall")} for ${plural(pv.devices.length, "device")}; ${formatBytes(pv.regionBounceBytes)} bounced through the region instead`,
    ),
    check(
      "every device address lies in the DMA-contiguous aperture",
      pv.devices.every(withinAperture),
      pv.devices
        .map(
          (d) =>
            `${d.name} ${formatAddress(d.lowest)}-${formatAddress(d.highest)} in ${formatAddress(d.aperture?.base ?? 0)}+${formatBytes(REGION_BYTES)}`,
        )
        .join("; "),
    ),
    check(
      "coherent buffers come from the region",
      pv.commonBuffers > 0 && pv.commonInAperture === pv.commonBuffers,
      `${pv.commonInAperture} of ${plural(pv.commonBuffers, "common buffer")} inside an aperture`,
    ),
    check(
      "the 32-bit device's mask is honoured",
      chip(pv).highest < FOUR_GIB && chip(bounce).highest < FOUR_GIB && bounce.guestPagesAbove4G > 0,
      `highest bus address ${formatAddress(chip(pv).highest)} (aperture), ${formatAddress(chip(bounce).highest)} (host bounce); ${bounce.guestPagesAbove4G} of the guest's pages lie above 4 GiB on the host`,
    ),
    check(
      "without an IOMMU: a hypercall at each map and each sync",
      kind(bounce, "pv-map") > 0 &&
        kind(bounce, "pv-map") === kind(bounce, "pv-sync") &&
        bounce.liveHostBounces === 0,
      `${kind(bounce, "pv-map")} maps, ${kind(bounce, "pv-sync")} syncs, ${kind(bounce, "pv-coherent")} coherent buffers, ${kind(bounce, "pv-attach")} attaches`,
    ),
    check(
      "hypercalls saved",
      saved > 0 && pv.hypercalls < bounce.hypercalls,
      `paravirtual ${pv.hypercalls}, trapped ${trapped.hypercalls} (${saved} saved), host bounce ${bounce.hypercalls}`,
    ),
  ];
  const lines = [
    `guest 64 MiB on an 8 GiB host (${bounce.guestPagesAbove4G} of its 16384 pages above 4 GiB there), region ${formatBytes(REGION_BYTES)}`,
    "setup        hypercalls  trap time (ns)  by kind",
    ...all.map(
      (r) =>
        `${r.setup.padEnd(11)}  ${String(r.hypercalls).padStart(10)}  ${String(r.ns).padStart(14)}  ${Object.entries(
          r.byKind,
        )
          .map(([k, n]) => `${k} ${n}`)
          .join(", ")}`,
    ),
    `apertures: ${pv.devices.map((d) => `${d.name} at ${formatAddress(d.aperture?.base ?? 0)}`).join(", ")}`,
  ];
  const figures: Record<string, number> = {
    regionBytes: REGION_BYTES,
    guestPagesAbove4G: bounce.guestPagesAbove4G,
    hypercallsSaved: saved,
    regionBounceBytes: pv.regionBounceBytes,
  };
  for (const r of all) {
    figures[`${r.setup}.hypercalls`] = r.hypercalls;
    figures[`${r.setup}.trapNs`] = r.ns;
    for (const [k, n] of Object.entries(r.byKind)) figures[`${r.setup}.${k}`] = n;
  }
  figures.legacyHighestBusAddressAperture = chip(pv).highest;
  figures.legacyHighestBusAddressBounce = chip(bounce).highest;
  return { name: "pv-iommu", checks, lines, figures };
}

const sample: SampleDefinition = {
  name: "pv-iommu",
  description: "a paravirtual IOMMU: a region mapped once, bounce buffering into it, hypercalls saved",
  run: ({ seed }) => run(seed),
};

export default sample;
