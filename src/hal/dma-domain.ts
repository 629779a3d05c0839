/**
 * The DMA_DOMAIN handle of the remapping path: one IOMMU domain (a page table any number of
 * devices, behind any of the IOMMU's units, translate through), its IOVA allocator and, for the
 * lazy policy, its flush queue. Every adapter starts in a private domain; JoinDmaDomain moves a
 * device into another one, so devices share an IOVA space (the VCMM seed; WDK JoinDmaDomain,
 * windows-dma-ddi §7).
 *
 * The unmap policy is the domain's, as Linux's domain type (DMA or DMA_FQ) is: lazy when the
 * machine is lazy and no untrusted device is attached, strict otherwise.
 */

import type { Iommu } from "../iommu/iommu.js";
import type { IommuDomain } from "../iommu/iommu-domain.js";
import { PAGE_SIZE } from "../platform/page.js";
import type { Scheduler } from "../platform/scheduler.js";
import type { CounterCell, Counters } from "../trace/counters.js";
import type { EventBus, ListenerFlag } from "../trace/event-bus.js";
import type { AdapterObject } from "./adapter-object.js";
import { FlushQueue, type FlushQueueHost, QueuedRangeKind } from "./flush-queue.js";
import type { HalOptions } from "./hal-options.js";
import { IovaAllocator } from "./iova-allocator.js";
import "./remap-events.js";
import type { DMA_DOMAIN } from "./wdm/dma-v3-types.js";

/** A 4-level table translates 48-bit IOVAs: the highest IOVA PFN of every domain. */
export const DOMAIN_APERTURE_PFN = 2 ** 36 - 1;
/** IOVA ranges do not cross 4 GiB (PCI's default DMA segment boundary): no element is split there. */
export const SEGMENT_BOUNDARY_PAGES = 2 ** 20;
/** The MSI window 0xFEE00000-0xFEEFFFFF is never DMA-translated: its PFNs are never handed out. */
export const MSI_WINDOW_FIRST_PFN = 0xfee00;
export const MSI_WINDOW_LAST_PFN = 0xfeeff;

export class DmaDomain implements DMA_DOMAIN, FlushQueueHost {
  readonly kind = "DMA_DOMAIN";
  /** Per machine, in creation order. */
  readonly id: number;
  readonly hardware: IommuDomain;
  readonly iova: IovaAllocator;
  readonly flushQueue: FlushQueue;
  /** Adapters whose device translates through this domain. */
  readonly adapters = new Set<AdapterObject>();
  /** Untrusted devices attached: any makes the domain strict. */
  untrustedDevices = 0;
  readonly #lazy: boolean;
  readonly #iommu: Iommu;
  readonly #events: EventBus;
  readonly #counters: Counters;
  readonly #pageInvalidations: CounterCell;
  readonly #invalidateListened: ListenerFlag;
  #destroyed = false;

  constructor(
    id: number,
    iommu: Iommu,
    options: HalOptions,
    scheduler: Scheduler,
    events: EventBus,
    counters: Counters,
  ) {
    this.id = id;
    this.#iommu = iommu;
    this.#events = events;
    this.#counters = counters;
    this.#pageInvalidations = counters.cell("hal.remap.invalidate.page");
    this.#invalidateListened = events.listenerFlag("dma.invalidate");
    this.#lazy = options.remapping === "lazy";
    this.hardware = iommu.createDomain();
    this.iova = new IovaAllocator(DOMAIN_APERTURE_PFN, counters, SEGMENT_BOUNDARY_PAGES);
    this.iova.reserve(MSI_WINDOW_FIRST_PFN, MSI_WINDOW_LAST_PFN);
    this.flushQueue = new FlushQueue(
      options.flushQueueEntries,
      options.flushQueueTimeoutNs,
      scheduler,
      counters,
      this,
      `flush queue of DMA domain ${id}`,
    );
  }

  /** Strict: every unmap is invalidated before its IOVA can be reused. */
  get strict(): boolean {
    return !this.#lazy || this.untrustedDevices > 0;
  }

  get destroyed(): boolean {
    return this.#destroyed;
  }

  /** Strict unmap: a page-selective invalidation of [iova, +pages) on every unit of the domain. */
  invalidatePages(iova: number, pages: number): void {
    this.#iommu.flushRange(this.hardware, iova, pages, true);
    this.#pageInvalidations.value++;
    if (this.#invalidateListened.active) {
      this.#events.emit("dma.invalidate", { domain: this.id, kind: "page", iova, pages, ranges: 1 });
    }
  }

  /**
   * Ends an unmapped range the domain's way: invalidated now and freed (strict), or queued
   * (lazy). `pages` is the size the allocator reserved.
   */
  retire(pfn: number, pages: number, kind: QueuedRangeKind): void {
    if (this.strict) {
      this.invalidatePages(pfn * PAGE_SIZE, pages);
      this.release(pfn, pages, kind);
    } else {
      this.flushQueue.add(pfn, pages, kind);
    }
  }

  /** FlushQueueHost: the single domain-selective invalidation of a flush. */
  invalidateDomain(): void {
    this.#iommu.flushDomain(this.hardware);
    this.#counters.add("hal.remap.invalidate.domain");
    if (this.#events.hasListeners("dma.invalidate")) {
      this.#events.emit("dma.invalidate", {
        domain: this.id,
        kind: "domain",
        iova: 0,
        pages: this.flushQueue.queuedPages,
        ranges: this.flushQueue.length,
      });
    }
  }

  /** FlushQueueHost: frees a range after its invalidation. */
  release(pfn: number, pages: number, kind: QueuedRangeKind): void {
    if (kind === QueuedRangeKind.Fast) this.iova.freeFast(pfn, pages);
    else this.iova.freeRange(pfn, pages);
  }

  /** Drains the flush queue and frees the page table. No device may be attached any more. */
  destroy(): void {
    this.flushQueue.flush();
    this.#iommu.destroyDomain(this.hardware);
    this.#destroyed = true;
  }
}
