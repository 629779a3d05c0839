/**
 * The lazy unmap policy's flush queue, after Linux's dma-iommu flush queue (iommu-anchors §5,
 * perf-security-anchors §10): an unmap clears the page-table entries at once but does not
 * invalidate the IOTLB; the IOVA range is queued instead. When `capacity` ranges are queued (the
 * capacity-th unmap) or `timeoutNs` of virtual time has passed since the first one, ONE
 * domain-selective invalidation runs and every queued range is freed.
 *
 * So an IOVA is never reused before its invalidation, but a device whose IOTLB still holds a
 * translation can keep using it until then: the window the lazy policy trades for speed.
 * Linux keeps a ring per CPU (256 entries) and a 10 ms timer per domain; this machine has one CPU,
 * so one ring per domain.
 */
import { PlatformError } from "../platform/platform-error.js";
import type { Scheduler, TimerHandle } from "../platform/scheduler.js";
import type { CounterCell, Counters } from "../trace/counters.js";

/** How a queued range goes back: allocFast's rcache path or allocRange's. */
export const QueuedRangeKind = { Fast: 0, Range: 1 } as const;
export type QueuedRangeKind = (typeof QueuedRangeKind)[keyof typeof QueuedRangeKind];

export interface FlushQueueHost {
  /** The domain-selective invalidation (on every unit the domain is attached to). */
  invalidateDomain(): void;
  /** Frees one range once the invalidation has run. */
  release(pfn: number, pages: number, kind: QueuedRangeKind): void;
}

export class FlushQueue {
  readonly capacity: number;
  readonly timeoutNs: number;
  readonly #scheduler: Scheduler;
  readonly #counters: Counters;
  readonly #entries: CounterCell;
  readonly #host: FlushQueueHost;
  readonly #label: string;
  readonly #pfns: Float64Array;
  readonly #pages: Float64Array;
  readonly #kinds: Uint8Array;
  readonly #onTimeout = (): void => {
    this.#timer = undefined;
    this.#counters.add("hal.flushqueue.timeouts");
    this.flush();
  };
  #length = 0;
  #queuedPages = 0;
  #timer: TimerHandle | undefined;

  constructor(
    capacity: number,
    timeoutNs: number,
    scheduler: Scheduler,
    counters: Counters,
    host: FlushQueueHost,
    label: string,
  ) {
    if (!Number.isSafeInteger(capacity) || capacity < 1) {
      throw new PlatformError(
        "out-of-range",
        `flush queue capacity ${String(capacity)} must be a positive integer`,
      );
    }
    if (!Number.isSafeInteger(timeoutNs) || timeoutNs < 0) {
      throw new PlatformError(
        "out-of-range",
        `flush queue timeout ${String(timeoutNs)} ns must be a non-negative integer`,
      );
    }
    this.capacity = capacity;
    this.timeoutNs = timeoutNs;
    this.#scheduler = scheduler;
    this.#counters = counters;
    this.#entries = counters.cell("hal.flushqueue.entries");
    this.#host = host;
    this.#label = label;
    this.#pfns = new Float64Array(capacity);
    this.#pages = new Float64Array(capacity);
    this.#kinds = new Uint8Array(capacity);
  }

  /** Ranges waiting for the invalidation. */
  get length(): number {
    return this.#length;
  }

  /** IOVA pages waiting for the invalidation (still allocated). */
  get queuedPages(): number {
    return this.#queuedPages;
  }

  /** True while the timeout is armed. */
  get timerPending(): boolean {
    return this.#timer !== undefined;
  }

  /** True when [pfn, pfn + pages) overlaps a queued range. */
  holds(pfn: number, pages = 1): boolean {
    for (let i = 0; i < this.#length; i++) {
      if (pfn < this.#pfns[i]! + this.#pages[i]! && this.#pfns[i]! < pfn + pages) return true;
    }
    return false;
  }

  /** Queues an unmapped range; the first one arms the timer, the capacity-th one flushes. */
  add(pfn: number, pages: number, kind: QueuedRangeKind): void {
    const i = this.#length++;
    this.#pfns[i] = pfn;
    this.#pages[i] = pages;
    this.#kinds[i] = kind;
    this.#queuedPages += pages;
    this.#entries.value++;
    if (this.#length === this.capacity) {
      this.#counters.add("hal.flushqueue.full");
      this.flush();
    } else if (this.#timer === undefined) {
      this.#timer = this.#scheduler.schedule(this.timeoutNs, this.#onTimeout, this.#label);
    }
  }

  /** Invalidates the domain once and frees every queued range (nothing to do when empty). */
  flush(): void {
    if (this.#timer !== undefined) {
      this.#scheduler.cancel(this.#timer);
      this.#timer = undefined;
    }
    if (this.#length === 0) return;
    this.#host.invalidateDomain();
    this.#counters.add("hal.flushqueue.flushes");
    const n = this.#length;
    this.#length = 0;
    this.#queuedPages = 0;
    for (let i = 0; i < n; i++)
      this.#host.release(this.#pfns[i]!, this.#pages[i]!, this.#kinds[i]! as QueuedRangeKind);
  }
}
