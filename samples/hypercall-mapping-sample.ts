/**
 * hypercall-mapping (seed 000): "The current DMA mapping interface ... will have to become a trap
 * into the hypervisor, which can then police the IOMMU settings. As a result, multi-chunk DMA
 * operations will, whenever possible, need to be mapped in a single operation to avoid causing
 * excessive traps. That means using dma_map_sg(), rather than mapping each page individually."
 *
 * Four guests on one 1 GiB host (strict remapping), each with its own NIC (loopback cable) and
 * disk, each running the unmodified nic and disk drivers on the same workload:
 * - page:   an IOMMU in caching mode; the guest's DMA layer invalidates, so traps, page by page;
 * - range:  the same IOMMU; one invalidation, so one trap, per mapped or unmapped range (a whole
 *           scatter/gather list is one IOVA range);
 * - lazy:   range, with the guest's unmaps batched by its flush queue (one domain-selective
 *           invalidation per batch);
 * - native: no IOMMU in the guest; the host maps all guest RAM once: no traps, and no policing.
 * Each trap costs the hypervisor's trap cost plus its per-page work (HypervisorOptions); the
 * figures are the traps, the virtual time charged for them, and the cost per page mapped.
 */
import diskModule from "../drivers/disk/disk-module.js";
import nicModule from "../drivers/nic/nic-module.js";
import { DiskController } from "../src/devices/disk-controller.js";
import { LoopbackWire } from "../src/devices/loopback-wire.js";
import { MemoryDiskImage } from "../src/devices/memory-disk-image.js";
import { NicDevice } from "../src/devices/nic-device.js";
import { GiB, MiB } from "../src/platform/page.js";
import type { Guest } from "../src/virt/guest.js";
import type { HypercallKind } from "../src/virt/virt-events.js";
import type { GuestOptions } from "../src/virt/virt-options.js";
import {
  check,
  DmaLanding,
  diskTraffic,
  faultsOf,
  nicTraffic,
  startGuest,
  virtHost,
} from "./device-assignment-sample.js";
import { plural } from "./explain.js";
import type { SampleCheck, SampleDefinition, SampleReport } from "./sample-definition.js";

type Variant = "page" | "range" | "lazy" | "native";
const VARIANTS: readonly Variant[] = ["page", "range", "lazy", "native"];

const GUEST: Record<Variant, Omit<GuestOptions, "name">> = {
  page: { dmaInterface: "trapped", invalidation: "page" },
  range: { dmaInterface: "trapped", invalidation: "range" },
  lazy: { dmaInterface: "trapped", invalidation: "range", remapping: "lazy" },
  native: { dmaInterface: "native" },
};

interface VariantRun {
  readonly variant: Variant;
  readonly intact: boolean;
  readonly traps: number;
  readonly ns: number;
  /** Guest pages the hypervisor handled (shadowed, checked or replayed). */
  readonly pages: number;
  readonly byKind: Readonly<Partial<Record<HypercallKind, number>>>;
  /** Pages the invalidation traps covered. */
  readonly invalidatedPages: number;
  /** Guest HAL mapping operations (dma.map events) and unmappings (dma.unmap). */
  readonly maps: number;
  readonly unmaps: number;
  readonly faults: number;
  readonly dmaPagesElsewhere: number;
}

function runVariant(
  variant: Variant,
  guest: Guest,
  host: ReturnType<typeof virtHost>,
  seed: number,
): VariantRun {
  const nic = new NicDevice();
  host.host.pci.attach(nic);
  new LoopbackWire().plug(nic);
  const image = new MemoryDiskImage(64 * MiB);
  const disk = new DiskController(image);
  host.host.pci.attach(disk);
  const nicAssignment = host.hypervisor.assignDevice(guest, nic.requesterId);
  const diskAssignment = host.hypervisor.assignDevice(guest, disk.requesterId);
  let maps = 0;
  let unmaps = 0;
  const events = guest.machine.events;
  const stopMaps = events.on("dma.map", () => maps++);
  const stopUnmaps = events.on("dma.unmap", () => unmaps++);
  const byKind: Partial<Record<HypercallKind, number>> = {};
  let invalidatedPages = 0;
  const stopTraps = host.host.events.on("virt.hypercall", (e) => {
    if (e.guest !== guest.name) return;
    byKind[e.kind] = (byKind[e.kind] ?? 0) + 1;
    if (e.kind === "invalidate-pages") invalidatedPages += e.pages;
  });
  const faults = [faultsOf(host.host, nic.requesterId), faultsOf(host.host, disk.requesterId)];
  const landings = [nicAssignment, diskAssignment].map((a) => new DmaLanding(host.host, guest, a));
  startGuest(guest);
  const nicRun = nicTraffic(host.host, guest, nicAssignment.guestRequesterId, nic.mac, seed);
  const diskRun = diskTraffic(host.host, guest, diskAssignment.guestRequesterId, image, seed);
  // The lazy guest's flush queue drains on its 10 ms timer; the run is over once it has.
  host.host.runUntilIdle();
  for (const stop of [stopMaps, stopUnmaps, stopTraps, ...faults.map((f) => f.dispose)]) stop();
  for (const landing of landings) landing.dispose();
  const totals = guest.hypercalls;
  return {
    variant,
    intact: nicRun.intact && diskRun.intact,
    traps: totals.hypercalls,
    ns: totals.ns,
    pages: totals.pages,
    byKind,
    invalidatedPages,
    maps,
    unmaps,
    faults: faults.reduce((n, f) => n + f.faults.length, 0),
    dmaPagesElsewhere: landings.reduce((n, l) => n + l.foreign, 0),
  };
}

function run(seed: number): SampleReport {
  const host = virtHost({ memory: GiB, remapping: "strict", seed });
  const runs = new Map<Variant, VariantRun>();
  for (const variant of VARIANTS) {
    const guest = host.hypervisor.createGuest({
      name: variant,
      memory: 64 * MiB,
      modules: [nicModule, diskModule],
      ...GUEST[variant],
    });
    runs.set(variant, runVariant(variant, guest, host, seed));
  }
  const page = runs.get("page")!;
  const range = runs.get("range")!;
  const lazy = runs.get("lazy")!;
  const native = runs.get("native")!;
  const perPage = (r: VariantRun): number => (r.pages === 0 ? 0 : Math.round(r.ns / r.pages));
  const invalidations = (r: VariantRun): number => r.byKind["invalidate-pages"] ?? 0;
  const { trapNs, perPageNs } = host.hypervisor.options;
  const all = [...runs.values()];
  const checks: SampleCheck[] = [
    check(
      "the unmodified drivers work in every guest",
      all.every((r) => r.intact && r.faults === 0 && r.dmaPagesElsewhere === 0),
      all
        .map((r) => `${r.variant}: ${r.intact ? "intact" : "DAMAGED"}, ${plural(r.faults, "fault")}`)
        .join("; "),
    ),
    check(
      "every map and unmap traps",
      invalidations(range) > 0 &&
        invalidations(range) <= range.maps + range.unmaps &&
        invalidations(range) >= range.maps,
      `range: ${plural(invalidations(range), "invalidation trap")} for ${range.maps} mappings and ${range.unmaps} unmappings`,
    ),
    check(
      "page by page: one trap per page",
      invalidations(page) === page.invalidatedPages && invalidations(page) > invalidations(range),
      `page: ${plural(invalidations(page), "invalidation trap")} for ${plural(page.invalidatedPages, "page")}; range: ${invalidations(range)} for ${range.invalidatedPages}`,
    ),
    check(
      "one trap per scatter/gather list costs less",
      range.ns < page.ns && perPage(range) < perPage(page),
      `range: ${plural(range.traps, "trap")}, ${range.ns} ns (${perPage(range)} ns/page); page: ${plural(page.traps, "trap")}, ${page.ns} ns (${perPage(page)} ns/page)`,
    ),
    check(
      "batched unmaps trap less again",
      lazy.intact && lazy.traps < range.traps && (lazy.byKind["invalidate-domain"] ?? 0) > 0,
      `lazy: ${plural(lazy.traps, "trap")} (${lazy.byKind["invalidate-domain"] ?? 0} domain-selective)`,
    ),
    check("no traps without a guest IOMMU", native.traps === 0, `native: ${plural(native.traps, "trap")}`),
  ];
  const lines = [
    `trap cost ${trapNs} ns, hypervisor work ${perPageNs} ns per guest page (vIOMMU, perf-security-anchors §4)`,
    "variant  traps  map/unmap  context  domain  pages  trap time (ns)  ns/page",
    ...all.map(
      (r) =>
        `${r.variant.padEnd(7)}  ${String(r.traps).padStart(5)}  ${String(invalidations(r)).padStart(9)}  ${String(r.byKind.context ?? 0).padStart(7)}  ${String(r.byKind["invalidate-domain"] ?? 0).padStart(6)}  ${String(r.pages).padStart(5)}  ${String(r.ns).padStart(14)}  ${String(perPage(r)).padStart(7)}`,
    ),
    `page by page costs ${(page.ns / range.ns).toFixed(1)}x the traps' time of one trap per list`,
  ];
  const figures: Record<string, number> = { trapNs, perPageNs };
  for (const r of all) {
    figures[`${r.variant}.traps`] = r.traps;
    figures[`${r.variant}.mapUnmapTraps`] = invalidations(r);
    figures[`${r.variant}.trapNs`] = r.ns;
    figures[`${r.variant}.pages`] = r.pages;
    figures[`${r.variant}.nsPerPage`] = perPage(r);
    figures[`${r.variant}.halMaps`] = r.maps;
    figures[`${r.variant}.halUnmaps`] = r.unmaps;
  }
  figures.pageOverRangeTime = Number((page.ns / range.ns).toFixed(2));
  return { name: "hypercall-mapping", checks, lines, figures };
}

const sample: SampleDefinition = {
  name: "hypercall-mapping",
  description: "guest DMA mapping as traps: page by page against one trap per scatter/gather list",
  run: ({ seed }) => run(seed),
};

export default sample;
