/**
 * The type1 IOMMU backend of one container (drivers/vfio/vfio_iommu_type1.c, iommu-anchors §8):
 * ONE IOMMU domain that every group in the container is attached to, and the list of user DMA
 * mappings (vfio_dma: iova, vaddr, size, prot), kept sorted by IOVA.
 *
 * MAP_DMA, in vfio_dma_do_map's order, each failure leaving everything as it was:
 * 1. EINVAL: flags other than READ/WRITE, neither of them, a zero size, vaddr, iova or size not
 *    page aligned, a range that wraps or leaves the valid IOVA ranges (below 2^48, outside the
 *    MSI window that is never DMA-translated);
 * 2. EEXIST: the IOVA range overlaps an existing mapping;
 * 3. ENOSPC: the container already holds dma_entry_limit mappings;
 * 4. pinning the pages (vfio_pin_pages_remote): EFAULT when a page of [vaddr, vaddr + size) is
 *    not mapped in the process, ENOMEM when the pinned pages would pass its locked-memory limit
 *    (RLIMIT_MEMLOCK);
 * 5. mapping each physically contiguous run into the domain, so a 2 MiB page lands in one
 *    superpage entry: ENOMEM if a table frame cannot be had (the runs mapped so far are undone
 *    and the pages unpinned).
 * UNMAP_DMA follows type1v2: an unmap must not cut a mapping in two (EINVAL); it removes every
 * mapping inside the range and returns the bytes removed. Each removal clears the entries,
 * invalidates the IOTLB at once (VFIO never defers), and only then unpins the pages.
 * Pinned pages are counted per page, not per mapping: mapping the same memory twice pins it once.
 */

import { IoPermission } from "../../iommu/io-page-table.js";
import type { Iommu } from "../../iommu/iommu.js";
import type { IommuDomain } from "../../iommu/iommu-domain.js";
import { formatAddress, PAGE_SIZE } from "../../platform/page.js";
import { PlatformError } from "../../platform/platform-error.js";
import { type ProcessAddressSpace, USER_SPACE_END } from "../../platform/process-address-space.js";
import type { Counters } from "../../trace/counters.js";
import type { EventBus } from "../../trace/event-bus.js";
import {
  VFIO_DMA_MAP_FLAG_READ,
  VFIO_DMA_MAP_FLAG_WRITE,
  VFIO_IOMMU_INFO_PGSIZES,
} from "./vfio-constants.js";
import { VfioError } from "./vfio-error.js";
import "./vfio-events.js";

/** vfio_iommu_type1_dma_map, without argsz. */
export interface VfioDmaMap {
  /** READ and/or WRITE, from the device's point of view. */
  readonly flags: number;
  /** Process virtual address of the buffer. */
  readonly vaddr: number;
  /** The bus address the device will use. */
  readonly iova: number;
  readonly size: number;
}

/** vfio_iommu_type1_dma_unmap, without argsz and the dirty bitmap. */
export interface VfioDmaUnmap {
  readonly flags?: number;
  readonly iova: number;
  readonly size: number;
}

/** One mapping, as the container lists it. */
export interface VfioDmaMapping {
  readonly iova: number;
  readonly vaddr: number;
  readonly size: number;
  readonly flags: number;
}

/** A [start, end] range of valid IOVAs (VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE, inclusive). */
export interface IovaRange {
  readonly start: number;
  readonly end: number;
}

/** vfio_iommu_type1_info with its IOVA_RANGE and DMA_AVAIL capabilities. */
export interface VfioIommuInfo {
  readonly flags: number;
  /** Page sizes the domain maps: 4 KiB | 2 MiB | 1 GiB. */
  readonly iovaPgsizes: number;
  readonly iovaRanges: readonly IovaRange[];
  /** Mappings still allowed (dma_entry_limit minus those in use). */
  readonly dmaAvail: number;
}

const MAP = "VFIO_IOMMU_MAP_DMA";
const UNMAP = "VFIO_IOMMU_UNMAP_DMA";
const IOVA_LIMIT = 2 ** 48;
/** The MSI window is never DMA-translated: type1 reports it as a hole in the IOVA ranges. */
const MSI_START = 0xfee0_0000;
const MSI_END = 0xfeef_ffff;
export const TYPE1_IOVA_RANGES: readonly IovaRange[] = [
  { start: 0, end: MSI_START - 1 },
  { start: MSI_END + 1, end: IOVA_LIMIT - 1 },
];
const PAGE_SIZES = PAGE_SIZE | (2 * 1024 * 1024) | (1024 * 1024 * 1024);

export class VfioIommuType1 {
  /** type1v2 (what QEMU and DPDK ask for) or the original type1; unmap follows v2 either way. */
  readonly v2: boolean;
  readonly #iommu: Iommu;
  readonly #process: ProcessAddressSpace;
  readonly #counters: Counters;
  readonly #events: EventBus;
  readonly #entryLimit: number;
  readonly #container: number;
  readonly #devices = new Set<number>();
  /** Sorted by IOVA, never overlapping. */
  readonly #mappings: VfioDmaMapping[] = [];
  #domain: IommuDomain | undefined;

  constructor(
    iommu: Iommu,
    process: ProcessAddressSpace,
    counters: Counters,
    events: EventBus,
    entryLimit: number,
    v2: boolean,
    container: number,
  ) {
    this.#iommu = iommu;
    this.#process = process;
    this.#counters = counters;
    this.#events = events;
    this.#entryLimit = entryLimit;
    this.v2 = v2;
    this.#container = container;
  }

  /** The container's IOMMU domain, while a group is attached. */
  get domain(): IommuDomain | undefined {
    return this.#domain;
  }

  get mappings(): readonly VfioDmaMapping[] {
    return this.#mappings;
  }

  /** Attaches a group's devices to the domain (made with the first group). All or nothing. */
  attach(devices: readonly number[], operation: string): void {
    const created = this.#domain === undefined;
    const domain = this.#domain ?? this.#iommu.createDomain();
    const done: number[] = [];
    try {
      for (const rid of devices) {
        this.#iommu.attach(rid, domain);
        done.push(rid);
      }
    } catch (error) {
      for (const rid of done) this.#iommu.detach(rid);
      if (created) this.#iommu.destroyDomain(domain);
      if (error instanceof PlatformError) throw new VfioError("ENODEV", operation, error.message);
      throw error;
    }
    this.#domain = domain;
    for (const rid of devices) this.#devices.add(rid);
  }

  /** Detaches a group's devices; with the last one gone, every mapping is removed and the domain freed. */
  detach(devices: readonly number[]): void {
    for (const rid of devices) {
      if (!this.#devices.delete(rid)) continue;
      if (this.#iommu.attachment(rid) === this.#domain) this.#iommu.detach(rid);
    }
    if (this.#devices.size > 0 || this.#domain === undefined) return;
    for (const mapping of [...this.#mappings]) this.#remove(mapping);
    this.#iommu.destroyDomain(this.#domain);
    this.#domain = undefined;
  }

  info(): VfioIommuInfo {
    return {
      flags: VFIO_IOMMU_INFO_PGSIZES,
      iovaPgsizes: PAGE_SIZES,
      iovaRanges: TYPE1_IOVA_RANGES,
      dmaAvail: this.#entryLimit - this.#mappings.length,
    };
  }

  map(map: VfioDmaMap): void {
    const { flags, vaddr, iova, size } = map;
    if (
      !Number.isInteger(flags) ||
      flags < 0 ||
      (flags & ~(VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE)) !== 0
    ) {
      throw new VfioError("EINVAL", MAP, `flags ${String(flags)}: only READ (1) and WRITE (2) exist`);
    }
    if (flags === 0)
      throw new VfioError("EINVAL", MAP, "neither READ nor WRITE: a mapping the device could not use");
    checkRange(MAP, vaddr, iova, size);
    if (!inValidRanges(iova, size)) {
      throw new VfioError(
        "EINVAL",
        MAP,
        `IOVA ${formatAddress(iova)}+${formatAddress(size)} leaves the valid IOVA ranges (below 2^48, outside the MSI window 0xfee00000-0xfeefffff)`,
      );
    }
    const overlap = this.#overlapping(iova, size);
    if (overlap !== undefined) {
      throw new VfioError(
        "EEXIST",
        MAP,
        `IOVA ${formatAddress(iova)}+${formatAddress(size)} overlaps the mapping at ${formatAddress(overlap.iova)}+${formatAddress(overlap.size)}`,
      );
    }
    if (this.#mappings.length >= this.#entryLimit) {
      throw new VfioError(
        "ENOSPC",
        MAP,
        `the container already holds dma_entry_limit = ${this.#entryLimit} mappings`,
      );
    }
    if (vaddr + size > USER_SPACE_END) {
      throw new VfioError(
        "EFAULT",
        MAP,
        `vaddr ${formatAddress(vaddr)}+${formatAddress(size)} is not a user address range`,
      );
    }
    this.#pin(vaddr, size);
    const domain = this.#domain!;
    const permission = toPermission(flags);
    const mapped: [number, number][] = [];
    try {
      this.#process.forEachPhysicalRun(vaddr, size, (pa, done, length) => {
        domain.map(iova + done, pa, length, permission);
        mapped.push([iova + done, length]);
      });
    } catch (error) {
      for (const [at, length] of mapped) domain.unmap(at, length);
      this.#process.unpin(vaddr, size);
      if (error instanceof PlatformError) throw new VfioError("ENOMEM", MAP, error.message);
      throw error;
    }
    const mapping: VfioDmaMapping = { iova, vaddr, size, flags };
    this.#mappings.splice(this.#insertionIndex(iova), 0, mapping);
    this.#counters.add("vfio.map");
    this.#counters.add("vfio.map.bytes", size);
    if (this.#events.hasListeners("vfio.dma")) {
      this.#events.emit("vfio.dma", { container: this.#container, kind: "map", iova, vaddr, size });
    }
  }

  /** Returns the bytes unmapped (0 when no mapping lies in the range). */
  unmap(unmap: VfioDmaUnmap): number {
    const { iova, size } = unmap;
    const flags = unmap.flags ?? 0;
    if (flags !== 0) throw new VfioError("EINVAL", UNMAP, `flags ${String(flags)}: none are supported`);
    if (!isAligned(iova) || !isAligned(size) || size === 0 || iova + size > IOVA_LIMIT) {
      throw new VfioError(
        "EINVAL",
        UNMAP,
        `IOVA ${formatAddress(iova)}+${formatAddress(size)} is not a non-empty, page-aligned range below 2^48`,
      );
    }
    const first = this.#containing(iova);
    const last = this.#containing(iova + size - 1);
    for (const cut of [
      first?.iova === iova ? undefined : first,
      last !== undefined && last.iova + last.size !== iova + size ? last : undefined,
    ]) {
      if (cut !== undefined) {
        throw new VfioError(
          "EINVAL",
          UNMAP,
          `${formatAddress(iova)}+${formatAddress(size)} would cut the mapping at ${formatAddress(cut.iova)}+${formatAddress(cut.size)} in two`,
        );
      }
    }
    const inside = this.#mappings.filter((m) => m.iova >= iova && m.iova + m.size <= iova + size);
    let unmapped = 0;
    for (const mapping of inside) {
      this.#remove(mapping);
      unmapped += mapping.size;
    }
    return unmapped;
  }

  #pin(vaddr: number, size: number): void {
    try {
      this.#process.pin(vaddr, size);
    } catch (error) {
      if (!(error instanceof PlatformError)) throw error;
      if (error.code === "no-memory") {
        throw new VfioError(
          "ENOMEM",
          MAP,
          `RLIMIT_MEMLOCK (${this.#process.lockedMemoryLimit}) exceeded: ${this.#process.pinnedBytes} bytes already pinned, ${formatAddress(size)} more asked`,
        );
      }
      throw new VfioError(
        "EFAULT",
        MAP,
        `cannot pin vaddr ${formatAddress(vaddr)}+${formatAddress(size)}: ${error.message}`,
      );
    }
  }

  /** Clears the entries, invalidates the IOTLB, then unpins: the device loses the pages before they go. */
  #remove(mapping: VfioDmaMapping): void {
    const domain = this.#domain!;
    domain.unmap(mapping.iova, mapping.size);
    this.#iommu.flushRange(domain, mapping.iova, mapping.size / PAGE_SIZE);
    if (!this.#process.destroyed) this.#process.unpin(mapping.vaddr, mapping.size);
    this.#mappings.splice(this.#mappings.indexOf(mapping), 1);
    this.#counters.add("vfio.unmap");
    if (this.#events.hasListeners("vfio.dma")) {
      this.#events.emit("vfio.dma", {
        container: this.#container,
        kind: "unmap",
        iova: mapping.iova,
        vaddr: mapping.vaddr,
        size: mapping.size,
      });
    }
  }

  /** Index of the first mapping whose IOVA is at or above `iova`. */
  #insertionIndex(iova: number): number {
    let low = 0;
    let high = this.#mappings.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (this.#mappings[mid]!.iova < iova) low = mid + 1;
      else high = mid;
    }
    return low;
  }

  #containing(address: number): VfioDmaMapping | undefined {
    const index = this.#insertionIndex(address + 1) - 1;
    const mapping = this.#mappings[index];
    return mapping !== undefined && address < mapping.iova + mapping.size ? mapping : undefined;
  }

  #overlapping(iova: number, size: number): VfioDmaMapping | undefined {
    const before = this.#containing(iova);
    if (before !== undefined) return before;
    const next = this.#mappings[this.#insertionIndex(iova)];
    return next !== undefined && next.iova < iova + size ? next : undefined;
  }
}

function isAligned(value: number): boolean {
  return Number.isSafeInteger(value) && value >= 0 && value % PAGE_SIZE === 0;
}

function checkRange(operation: string, vaddr: number, iova: number, size: number): void {
  if (!Number.isSafeInteger(size) || size <= 0) {
    throw new VfioError(
      "EINVAL",
      operation,
      `size ${String(size)} must be a positive multiple of the page size`,
    );
  }
  for (const [what, value] of [
    ["vaddr", vaddr],
    ["iova", iova],
    ["size", size],
  ] as const) {
    if (!isAligned(value)) {
      throw new VfioError(
        "EINVAL",
        operation,
        `${what} ${formatAddress(value)} is not aligned to the 4 KiB page size`,
      );
    }
  }
  if (!Number.isSafeInteger(iova + size) || !Number.isSafeInteger(vaddr + size)) {
    throw new VfioError("EINVAL", operation, "the range wraps around");
  }
}

function inValidRanges(iova: number, size: number): boolean {
  return TYPE1_IOVA_RANGES.some((range) => iova >= range.start && iova + size - 1 <= range.end);
}

function toPermission(flags: number): IoPermission {
  const read = (flags & VFIO_DMA_MAP_FLAG_READ) !== 0;
  const write = (flags & VFIO_DMA_MAP_FLAG_WRITE) !== 0;
  return read && write ? IoPermission.ReadWrite : write ? IoPermission.Write : IoPermission.Read;
}
