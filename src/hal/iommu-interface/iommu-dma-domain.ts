/**
 * IOMMU_DMA_DOMAIN and IOMMU_DMA_DEVICE as the HAL keeps them, and the mechanics of a domain's
 * page table (the routines' argument checks and statuses live in IommuInterface).
 *
 * - Translate (and V1 OS-managed) domains own an IommuDomain: one VT-d second-level table that
 *   every attached device translates through, whichever remapping unit it sits behind; each unit
 *   tags it with its own domain id (the VCMM seed's shared page table, Linux's dmar_domain).
 * - Unmanaged domains own an empty IommuDomain too: until the caller's table is configured, all
 *   DMA of their devices is blocked (nc-wdm-iommu_domain_configure).
 * - PassThrough domains have no table: their devices' context entries say pass-through.
 *
 * Unmaps are strict: the page-selective invalidation goes out on every unit the domain is attached
 * to before the routine returns. A token's pages are unmapped in pieces that never cover a whole
 * table's span, so IoPageTable keeps the tables (the no-allocation promise of reserved ranges).
 */
import { IoPermission } from "../../iommu/io-page-table.js";
import type { Iommu } from "../../iommu/iommu.js";
import type { IommuDomain } from "../../iommu/iommu-domain.js";
import { LARGE_PAGE_SIZE, PAGE_SIZE } from "../../platform/page.js";
import type { Counters } from "../../trace/counters.js";
import type { DEVICE_OBJECT } from "../wdm/device-object.js";
import {
  DomainTypeUnmanaged,
  type IOMMU_DMA_DEVICE,
  type IOMMU_DMA_DOMAIN,
  type IOMMU_INTERFACE_STATE_CHANGE_CALLBACK,
} from "../wdm/iommu-interface.js";
import type { BuddyAllocator } from "./buddy-allocator.js";
import type { LogicalAddressToken } from "./logical-address-token.js";
import { LogicalRangeMap } from "./logical-range-map.js";
import type { PageRun } from "./physical-pages.js";

/** Pages of a level-1 table's span (2 MiB). */
const TABLE_SPAN_PAGES = LARGE_PAGE_SIZE / PAGE_SIZE;

/** An allocator block (pfn, pages: the power-of-two block) and how many of its pages are mapped. */
export interface AllocatorBlock {
  readonly pfn: number;
  readonly pages: number;
  mapped: number;
}

/** Who owns a logical range: a MapLogicalRange(Ex) mapping, an identity mapping or a token. */
export interface RangeOwner {
  readonly kind: "mapping" | "identity" | "token";
  readonly block: AllocatorBlock | undefined;
  readonly token: LogicalAddressToken | undefined;
}

export class IommuDmaDomain implements IOMMU_DMA_DOMAIN {
  readonly kind = "IOMMU_DMA_DOMAIN";
  /** Logical ranges in use: mappings, identity mappings and reserved tokens. */
  readonly ranges = new LogicalRangeMap<RangeOwner>();
  readonly devices = new Set<IommuDmaDevice>();
  readonly tokens = new Set<LogicalAddressToken>();
  deleted = false;
  readonly #iommu: Iommu;
  readonly #counters: Counters;

  constructor(
    /** Per interface, in creation order. */
    readonly id: number,
    readonly type: number,
    /** The page table; undefined for a pass-through domain. */
    readonly hardware: IommuDomain | undefined,
    /** The Buddy logical allocator, when CreateDomainEx configured one. */
    readonly allocator: BuddyAllocator | undefined,
    /** Highest logical page the domain maps (the allocator's aperture, or the 48-bit table's). */
    readonly lastPage: number,
    iommu: Iommu,
    counters: Counters,
  ) {
    this.#iommu = iommu;
    this.#counters = counters;
  }

  /** The HAL owns the page table (Map/Unmap allowed; Configure/Flush refused). */
  get osManaged(): boolean {
    return this.type !== DomainTypeUnmanaged;
  }

  /**
   * Maps `runs` at logical page `first`, consecutively. A failure (no frame for a table) unmaps
   * what this call mapped and rethrows, so the table is as before.
   */
  mapRuns(first: number, runs: readonly PageRun[], permission: IoPermission): void {
    const table = this.hardware!;
    let page = first;
    try {
      for (const run of runs) {
        table.map(page * PAGE_SIZE, run.pfn * PAGE_SIZE, run.pages * PAGE_SIZE, permission);
        page += run.pages;
      }
    } catch (error) {
      if (page > first) table.unmap(first * PAGE_SIZE, (page - first) * PAGE_SIZE);
      throw error;
    }
    this.#counters.add("hal.iommu.map.pages", page - first);
  }

  /**
   * Unmaps [first, first + pages) and invalidates it on every unit of the domain. With
   * `keepTables`, in pieces inside one 2 MiB span and never a whole one: no table is freed.
   */
  unmapPages(first: number, pages: number, keepTables: boolean): void {
    const table = this.hardware!;
    if (!keepTables) {
      table.unmap(first * PAGE_SIZE, pages * PAGE_SIZE);
    } else {
      for (let page = first; page < first + pages; ) {
        const spanEnd = (Math.floor(page / TABLE_SPAN_PAGES) + 1) * TABLE_SPAN_PAGES;
        let piece = Math.min(spanEnd, first + pages) - page;
        if (piece === TABLE_SPAN_PAGES) piece /= 2;
        table.unmap(page * PAGE_SIZE, piece * PAGE_SIZE);
        page += piece;
      }
    }
    this.#iommu.flushRange(table, first * PAGE_SIZE, pages);
    this.#counters.add("hal.iommu.unmap.pages", pages);
    this.#counters.add("hal.iommu.invalidate.page");
  }

  /**
   * Makes the page tables of [first, first + pages) exist: one page of every 2 MiB span is mapped
   * and unmapped again, which leaves the path of tables down to level 1 in place.
   */
  buildTables(first: number, pages: number): void {
    const table = this.hardware!;
    for (let page = first; page < first + pages; ) {
      table.map(page * PAGE_SIZE, 0, PAGE_SIZE, IoPermission.Read);
      table.unmap(page * PAGE_SIZE, PAGE_SIZE);
      page = (Math.floor(page / TABLE_SPAN_PAGES) + 1) * TABLE_SPAN_PAGES;
    }
  }

  /** Domain-selective invalidation on every unit (FlushDomain). */
  flushAll(): void {
    this.#iommu.flushDomain(this.hardware!);
    this.#counters.add("hal.iommu.invalidate.domain");
  }

  /** Page-selective invalidation of single pages (FlushDomainByVaList). */
  flushPage(page: number): void {
    this.#iommu.flushRange(this.hardware!, page * PAGE_SIZE, 1);
    this.#counters.add("hal.iommu.invalidate.page");
  }
}

/** IOMMU_DMA_DEVICE: a PCI function (its PDO and requester id) the interface may attach. */
export class IommuDmaDevice implements IOMMU_DMA_DEVICE {
  readonly kind = "IOMMU_DMA_DEVICE";
  domain: IommuDmaDomain | undefined = undefined;
  deleted = false;
  stateCallback: IOMMU_INTERFACE_STATE_CHANGE_CALLBACK | undefined = undefined;
  stateContext: unknown = undefined;

  constructor(
    readonly pdo: DEVICE_OBJECT,
    readonly requesterId: number,
    /** Behind an external port: DMA Guard never offers it a pass-through domain. */
    readonly external: boolean,
    /** Made by V1 AttachDevice for its PDO, not by CreateDevice: V1 DetachDevice ends it. */
    readonly implicit: boolean,
  ) {}
}
