/**
 * The IOVA allocator of one DMA domain, after Linux's drivers/iommu/iova.c (iommu-anchors §6):
 *
 * - page granular: it hands out page frame numbers of IOVA space, never PFN 0 (so IOVA 0, which
 *   a device or driver may take for "no address", is never valid; dma-iommu's base pfn of 1);
 * - top-down from the caller's limit (the device's reach), as __alloc_and_insert_iova_range
 *   walks down from limit_pfn;
 * - the allocated ranges are kept sorted by start (two parallel arrays searched by bisection; the
 *   rbtree's role). Like Linux's cached_node there is a search hint per reach class (up to 4 GiB,
 *   above), the start of the last allocation: a search begins below it and, only if that fails,
 *   retries from the limit. So a packed top region is not walked again on every allocation;
 * - `allocFast`/`freeFast` (alloc_iova_fast/free_iova_fast) round sizes below 32 pages up to a
 *   power of two and go through the magazines of IovaRcache first, so the common one-page
 *   map/unmap does no search at all. Ranges in the rcache stay reserved here (as in Linux they
 *   stay in the rbtree), marked as cached so a double free is still caught.
 *
 * Alignment: a fast allocation is size aligned as with Linux's size_aligned: its start is a
 * multiple of its size rounded up to a power of two, capped at 512 pages (2 MiB, the largest leaf
 * a superpage table maps below 1 GiB; Linux does not cap, which only wastes IOVA space on large
 * buffers). `allocRange` takes an explicit alignment (common buffers: 1 page, or 512 pages for a
 * large-page buffer).
 *
 * Boundary: with `boundaryPages` set, no range that fits in one boundary region crosses a
 * multiple of it, the way dma-iommu keeps segments inside the device's segment boundary (4 GiB
 * for PCI by default): a window then stays one scatter/gather element.
 */

import { formatAddress, PAGE_SIZE } from "../platform/page.js";
import { PlatformError } from "../platform/platform-error.js";
import type { CounterCell, Counters } from "../trace/counters.js";
import { IovaRcache } from "./iova-rcache.js";

/** Highest PFN a 32-bit device reaches: the boundary of Linux's cached32_node. */
export const DMA32_LIMIT_PFN = 2 ** 20 - 1;
/** Largest alignment of a fast allocation, in pages (2 MiB). */
export const MAX_SIZE_ALIGNMENT = 512;
/** Sizes below this many pages are rounded up to a power of two by allocFast (Linux: 32). */
const ROUND_UP_BELOW = 32;

/** Where counts go when the allocator has no Counters (a standalone allocator in a test). */
const UNCOUNTED = (): CounterCell => ({ value: 0 });

const ALLOCATED = 0;
const CACHED = 1;
const RESERVED = 2;

export class IovaAllocator {
  /** Highest PFN of the aperture (inclusive). */
  readonly aperturePfn: number;
  /** No range of at most this many pages crosses a multiple of it (0: no boundary). */
  readonly boundaryPages: number;
  readonly #rcacheHits: CounterCell;
  readonly #rcacheMisses: CounterCell;
  readonly #allocs: CounterCell;
  readonly #frees: CounterCell;
  readonly #searches: CounterCell;
  readonly #exhausted: CounterCell;
  readonly #rcache: IovaRcache;
  /** Reserved ranges sorted by first PFN: [lo, hi] inclusive, and ALLOCATED, CACHED or RESERVED. */
  readonly #lo: number[] = [];
  readonly #hi: number[] = [];
  readonly #state: number[] = [];
  /** Search hints (exclusive ceilings) for limits up to 4 GiB and above. */
  readonly #hint = [Number.POSITIVE_INFINITY, Number.POSITIVE_INFINITY];
  #allocatedPages = 0;
  /** Set by #search: where the found range goes in the sorted arrays. */
  #insertAt = 0;

  constructor(aperturePfn: number, counters?: Counters, boundaryPages = 0) {
    if (!Number.isSafeInteger(aperturePfn) || aperturePfn < 1) {
      throw new PlatformError(
        "out-of-range",
        `IOVA aperture PFN ${String(aperturePfn)} must be a positive integer`,
      );
    }
    if (
      !Number.isSafeInteger(boundaryPages) ||
      boundaryPages < 0 ||
      roundUpPowerOfTwo(boundaryPages) !== Math.max(1, boundaryPages)
    ) {
      throw new PlatformError(
        "out-of-range",
        `IOVA boundary ${String(boundaryPages)} must be 0 or a power of two of pages`,
      );
    }
    this.aperturePfn = aperturePfn;
    this.boundaryPages = boundaryPages;
    const cell = (name: string): CounterCell => counters?.cell(name) ?? UNCOUNTED();
    this.#rcacheHits = cell("hal.iova.rcache.hit");
    this.#rcacheMisses = cell("hal.iova.rcache.miss");
    this.#allocs = cell("hal.iova.alloc");
    this.#frees = cell("hal.iova.free");
    this.#searches = cell("hal.iova.search");
    this.#exhausted = cell("hal.iova.exhausted");
    this.#rcache = new IovaRcache((pfn) => this.#remove(this.#indexOf(pfn)));
  }

  /** Pages handed out and not yet freed (the rcache's pages are free, so not counted). */
  get allocatedPages(): number {
    return this.#allocatedPages;
  }

  /** Pages parked in the rcache, reserved for fast reuse. */
  get cachedPages(): number {
    return this.#rcache.cachedPages;
  }

  /** Ranges held here: handed out, cached or reserved for good (the rbtree's node count). */
  get rangeCount(): number {
    return this.#lo.length;
  }

  /** The pages allocFast really reserves for a request of `pages`. */
  static fastSize(pages: number): number {
    return pages < ROUND_UP_BELOW ? roundUpPowerOfTwo(pages) : pages;
  }

  /**
   * alloc_iova_fast: `pages` pages ending at or below `limitPfn`, size aligned, from the rcache
   * when it holds one. Returns the first PFN, or undefined when the space is exhausted (after
   * giving the rcache back and retrying once, as Linux does).
   */
  allocFast(pages: number, limitPfn: number): number | undefined {
    this.#checkPages(pages);
    this.#checkLimit(limitPfn);
    const size = IovaAllocator.fastSize(pages);
    if (IovaRcache.caches(size)) {
      const pfn = this.#rcache.remove(log2(size), limitPfn);
      if (pfn !== undefined) {
        this.#state[this.#indexOf(pfn)] = ALLOCATED;
        this.#allocatedPages += size;
        this.#rcacheHits.value++;
        this.#allocs.value++;
        return pfn;
      }
      this.#rcacheMisses.value++;
    }
    const align = Math.min(roundUpPowerOfTwo(size), MAX_SIZE_ALIGNMENT);
    let pfn = this.#allocate(size, limitPfn, 1, align);
    if (pfn === undefined && this.#rcache.cachedPages > 0) {
      this.#rcache.drain();
      pfn = this.#allocate(size, limitPfn, 1, align);
    }
    return pfn;
  }

  /** free_iova_fast: gives back a range from allocFast; `pages` is what was asked for. */
  freeFast(pfn: number, pages: number): void {
    this.#checkPages(pages);
    const size = IovaAllocator.fastSize(pages);
    const index = this.#allocatedIndex(pfn, size);
    this.#allocatedPages -= size;
    this.#frees.value++;
    if (IovaRcache.caches(size)) {
      this.#state[index] = CACHED;
      this.#rcache.insert(pfn, log2(size));
    } else {
      this.#remove(index);
    }
  }

  /**
   * alloc_iova: exactly `pages` pages within [minPfn, limitPfn], the start a multiple of `align`
   * pages (a power of two), highest first. Undefined when no such range is free.
   */
  allocRange(pages: number, limitPfn: number, minPfn = 1, align = 1): number | undefined {
    this.#checkPages(pages);
    this.#checkLimit(limitPfn);
    if (!Number.isSafeInteger(minPfn) || minPfn < 1 || minPfn > limitPfn) {
      throw new PlatformError(
        "out-of-range",
        `IOVA minimum PFN ${String(minPfn)} must be in [1, ${limitPfn}]`,
      );
    }
    if (!Number.isSafeInteger(align) || align < 1 || roundUpPowerOfTwo(align) !== align) {
      throw new PlatformError(
        "out-of-range",
        `IOVA alignment ${String(align)} must be a power of two of pages`,
      );
    }
    let pfn = this.#allocate(pages, limitPfn, minPfn, align);
    if (pfn === undefined && this.#rcache.cachedPages > 0) {
      this.#rcache.drain();
      pfn = this.#allocate(pages, limitPfn, minPfn, align);
    }
    return pfn;
  }

  /** free_iova: gives back a range from allocRange, exactly as it was allocated. */
  freeRange(pfn: number, pages: number): void {
    this.#checkPages(pages);
    const index = this.#allocatedIndex(pfn, pages);
    this.#allocatedPages -= pages;
    this.#frees.value++;
    this.#remove(index);
  }

  /**
   * reserve_iova: takes [firstPfn, lastPfn] out of the space for good, as dma-iommu reserves the
   * MSI window and other IOMMU reserved regions. The range must be free.
   */
  reserve(firstPfn: number, lastPfn: number): void {
    if (
      !Number.isSafeInteger(firstPfn) ||
      !Number.isSafeInteger(lastPfn) ||
      firstPfn < 1 ||
      lastPfn < firstPfn
    ) {
      throw new PlatformError(
        "out-of-range",
        `IOVA reservation ${String(firstPfn)}..${String(lastPfn)} is not a PFN range`,
      );
    }
    if (firstPfn > this.aperturePfn) return;
    const last = Math.min(lastPfn, this.aperturePfn);
    const i = this.#lastStartingAtOrBelow(last);
    if (i >= 0 && this.#hi[i]! >= firstPfn) {
      throw new PlatformError(
        "already-mapped",
        `IOVA ${formatAddress(firstPfn * PAGE_SIZE)} is already reserved`,
      );
    }
    this.#lo.splice(i + 1, 0, firstPfn);
    this.#hi.splice(i + 1, 0, last);
    this.#state.splice(i + 1, 0, RESERVED);
  }

  /** True when [pfn, pfn + pages) lies inside a range that is handed out. */
  isAllocated(pfn: number, pages = 1): boolean {
    const i = this.#lastStartingAtOrBelow(pfn);
    return i >= 0 && this.#state[i] === ALLOCATED && pfn + pages - 1 <= this.#hi[i]!;
  }

  /** Returns every rcache range to the free space (free_cpu_cached_iovas). */
  drainCache(): void {
    this.#rcache.drain();
  }

  #allocate(pages: number, limitPfn: number, minPfn: number, align: number): number | undefined {
    const hinted = minPfn === 1;
    const reach = limitPfn <= DMA32_LIMIT_PFN ? 0 : 1;
    const ceiling = hinted ? Math.min(limitPfn, this.#hint[reach]! - 1) : limitPfn;
    let pfn = this.#search(pages, ceiling, minPfn, align);
    if (pfn === undefined && ceiling < limitPfn) pfn = this.#search(pages, limitPfn, minPfn, align);
    if (pfn === undefined) {
      this.#exhausted.value++;
      return undefined;
    }
    const at = this.#insertAt;
    this.#lo.splice(at, 0, pfn);
    this.#hi.splice(at, 0, pfn + pages - 1);
    this.#state.splice(at, 0, ALLOCATED);
    this.#allocatedPages += pages;
    if (hinted) this.#hint[reach] = pfn;
    this.#allocs.value++;
    this.#searches.value++;
    return pfn;
  }

  /** Walks the gaps between reserved ranges downward from `ceiling` to `floor` (both inclusive). */
  #search(pages: number, ceiling: number, floor: number, align: number): number | undefined {
    let i = this.#lastStartingAtOrBelow(ceiling);
    let top = ceiling;
    while (top >= floor) {
      const bottom = i >= 0 ? Math.max(floor, this.#hi[i]! + 1) : floor;
      if (top - bottom + 1 >= pages) {
        const first = top - pages + 1;
        let start = first - (first % align);
        const boundary = this.boundaryPages;
        if (boundary !== 0 && pages <= boundary) {
          // Stay below the boundary the range would cross (the device's segment boundary).
          const crossing = Math.floor((start + pages - 1) / boundary) * boundary;
          if (start < crossing) {
            start = crossing - pages;
            start -= start % align;
          }
        }
        if (start >= bottom) {
          this.#insertAt = i + 1;
          return start;
        }
      }
      if (i < 0) return undefined;
      top = Math.min(top, this.#lo[i]! - 1);
      i--;
    }
    return undefined;
  }

  #remove(index: number): void {
    const lo = this.#lo[index]!;
    const hi = this.#hi[index]!;
    this.#lo.splice(index, 1);
    this.#hi.splice(index, 1);
    this.#state.splice(index, 1);
    // __cached_rbnode_delete_update: space freed at or above a hint becomes reachable again.
    for (let reach = 0; reach < 2; reach++) {
      if (lo >= this.#hint[reach]!) this.#hint[reach] = hi + 1;
    }
  }

  /** Index of the last range starting at or below `pfn`, or -1. */
  #lastStartingAtOrBelow(pfn: number): number {
    const lo = this.#lo;
    let low = 0;
    let high = lo.length - 1;
    let found = -1;
    while (low <= high) {
      const middle = (low + high) >>> 1;
      if (lo[middle]! <= pfn) {
        found = middle;
        low = middle + 1;
      } else {
        high = middle - 1;
      }
    }
    return found;
  }

  #indexOf(pfn: number): number {
    const i = this.#lastStartingAtOrBelow(pfn);
    if (i < 0 || this.#lo[i] !== pfn) {
      throw new PlatformError("bad-state", `IOVA ${formatAddress(pfn * PAGE_SIZE)} is not a reserved range`);
    }
    return i;
  }

  /** Validates a free: the range must be handed out with exactly this size. */
  #allocatedIndex(pfn: number, pages: number): number {
    if (!Number.isSafeInteger(pfn) || pfn < 1 || pfn > this.aperturePfn) {
      throw new PlatformError("bad-address", `IOVA PFN ${String(pfn)} is not in [1, ${this.aperturePfn}]`);
    }
    const i = this.#lastStartingAtOrBelow(pfn);
    if (i < 0 || this.#lo[i] !== pfn || this.#state[i] !== ALLOCATED) {
      const inside = i >= 0 && pfn <= this.#hi[i]! && this.#state[i] === ALLOCATED;
      throw new PlatformError(
        inside ? "bad-address" : "double-free",
        inside
          ? `IOVA ${formatAddress(pfn * PAGE_SIZE)} is inside a range, not its start`
          : `IOVA ${formatAddress(pfn * PAGE_SIZE)} is not allocated (double free?)`,
      );
    }
    const size = this.#hi[i]! - pfn + 1;
    if (size !== pages) {
      throw new PlatformError(
        "bad-length",
        `IOVA range ${formatAddress(pfn * PAGE_SIZE)} holds ${size} pages, not ${pages}`,
      );
    }
    return i;
  }

  #checkPages(pages: number): void {
    if (!Number.isSafeInteger(pages) || pages < 1 || pages > this.aperturePfn) {
      throw new PlatformError(
        "bad-length",
        `IOVA size ${String(pages)} pages is not in [1, ${this.aperturePfn}]`,
      );
    }
  }

  #checkLimit(limitPfn: number): void {
    if (!Number.isSafeInteger(limitPfn) || limitPfn < 1 || limitPfn > this.aperturePfn) {
      throw new PlatformError(
        "out-of-range",
        `IOVA limit PFN ${String(limitPfn)} is not in [1, ${this.aperturePfn}]`,
      );
    }
  }
}

export function roundUpPowerOfTwo(n: number): number {
  if (n <= 1) return 1;
  // A shift while the result is a positive int32 (every map register count); powers beyond.
  if (n <= 2 ** 30) return 1 << (32 - Math.clz32(n - 1));
  if (n <= 2 ** 31) return 2 ** (32 - Math.clz32(n - 1));
  return 2 ** Math.ceil(Math.log2(n));
}

function log2(powerOfTwo: number): number {
  return 31 - Math.clz32(powerOfTwo);
}
