/**
 * The logical allocator of IOMMU interface domains: the HAL's Buddy allocator as the WDK describes
 * it (ns-wdm-iommu_dma_logical_allocator_config, windows-dma-ddi §7): it "favors low logical
 * addresses, and will allocate logical addresses on power of two boundaries at or above 4KB",
 * and is "augmented with a cache of free logical address values".
 *
 * Page granular: a block of 2^k pages starts at a multiple of 2^k pages. Free blocks live in one
 * map (first PFN -> order); a freed block first goes to a small per-order cache (reused before any
 * search, not merged), and only an overflowing cache merges blocks with their buddies. Page 0 is
 * never handed out, so logical address 0 keeps meaning "none". PFNs reach 2^51, beyond 32-bit
 * operators: buddy arithmetic uses division and multiplication.
 */
import { PlatformError } from "../../platform/platform-error.js";

/** Freed blocks kept per order before they are merged back (the "free cache"). */
const CACHE_PER_ORDER = 8;

export class BuddyAllocator {
  /** log2 of the aperture in pages. */
  readonly topOrder: number;
  readonly #free = new Map<number, number>();
  readonly #cache: number[][];
  #allocatedPages = 0;

  /** An allocator over [0, 2^topOrder) pages, page 0 kept back. */
  constructor(topOrder: number) {
    if (!Number.isInteger(topOrder) || topOrder < 1 || topOrder > 51) {
      throw new PlatformError("out-of-range", `buddy aperture order ${String(topOrder)} is not in [1, 51]`);
    }
    this.topOrder = topOrder;
    this.#cache = Array.from({ length: topOrder + 1 }, () => []);
    this.#free.set(0, topOrder);
    this.#carve(0, 0);
  }

  /** The block size (pages) an allocation of `pages` takes: the next power of two. */
  static blockPages(pages: number): number {
    return 2 ** BuddyAllocator.order(pages);
  }

  static order(pages: number): number {
    let order = 0;
    while (2 ** order < pages) order++;
    return order;
  }

  /** Pages in allocated or reserved blocks (page 0 included). */
  get allocatedPages(): number {
    return this.#allocatedPages;
  }

  /** Free blocks, cached ones included: a measure of fragmentation. */
  get freeBlocks(): number {
    return this.#free.size + this.#cache.reduce((n, list) => n + list.length, 0);
  }

  /**
   * The lowest block of blockPages(pages) pages inside [minPfn, maxPfn] (inclusive), or undefined
   * when none is free. A cached block of the right order that fits is taken first.
   */
  allocate(pages: number, minPfn: number, maxPfn: number): number | undefined {
    if (!Number.isSafeInteger(pages) || pages < 1 || pages > 2 ** this.topOrder) {
      throw new PlatformError("bad-length", `buddy allocation of ${String(pages)} pages`);
    }
    const order = BuddyAllocator.order(pages);
    const size = 2 ** order;
    const cache = this.#cache[order]!;
    for (let i = cache.length - 1; i >= 0; i--) {
      const pfn = cache[i]!;
      if (pfn >= minPfn && pfn + size - 1 <= maxPfn) {
        cache.splice(i, 1);
        this.#allocatedPages += size;
        return pfn;
      }
    }
    let best = Number.POSITIVE_INFINITY;
    for (const [base, blockOrder] of this.#free) {
      if (blockOrder < order) continue;
      const start = Math.max(base, Math.ceil(minPfn / size) * size);
      const last = Math.min(base + 2 ** blockOrder - 1, maxPfn);
      if (start + size - 1 <= last && start < best) best = start;
    }
    if (best === Number.POSITIVE_INFINITY) return undefined;
    this.#carve(best, order);
    return best;
  }

  /** Frees a block allocate() returned (`pages` as asked; the block is blockPages(pages)). */
  free(pfn: number, pages: number): void {
    const order = BuddyAllocator.order(pages);
    const size = 2 ** order;
    if (!Number.isSafeInteger(pfn) || pfn % size !== 0 || pfn + size > 2 ** this.topOrder || pfn === 0) {
      throw new PlatformError("bad-address", `PFN ${String(pfn)} is not the start of a ${size}-page block`);
    }
    if (this.#inFreeBlock(pfn, order) || this.#cache[order]!.includes(pfn)) {
      throw new PlatformError("double-free", `the ${size}-page block at PFN ${pfn} is already free`);
    }
    this.#allocatedPages -= size;
    const cache = this.#cache[order]!;
    if (cache.length < CACHE_PER_ORDER) {
      cache.push(pfn);
      return;
    }
    this.#merge(pfn, order);
  }

  /**
   * Takes the exact pages [firstPfn, firstPfn + pages) out of the free space (reserved regions,
   * explicit logical addresses). False, with nothing changed, when any of them is not free.
   */
  reserve(firstPfn: number, pages: number): boolean {
    if (
      !Number.isSafeInteger(firstPfn) ||
      !Number.isSafeInteger(pages) ||
      firstPfn < 0 ||
      pages < 1 ||
      firstPfn + pages > 2 ** this.topOrder
    ) {
      return false;
    }
    this.#drainCache();
    const carved: [number, number][] = [];
    for (let pfn = firstPfn; pfn < firstPfn + pages; ) {
      let order = 0;
      while (pfn % 2 ** (order + 1) === 0 && pfn + 2 ** (order + 1) <= firstPfn + pages) order++;
      if (!this.#carve(pfn, order)) {
        for (const [p, o] of carved) this.#release(p, o);
        return false;
      }
      carved.push([pfn, order]);
      pfn += 2 ** order;
    }
    return true;
  }

  /** Gives back a range reserve() took (by its pages, not as one block). */
  unreserve(firstPfn: number, pages: number): void {
    for (let pfn = firstPfn; pfn < firstPfn + pages; ) {
      let order = 0;
      while (pfn % 2 ** (order + 1) === 0 && pfn + 2 ** (order + 1) <= firstPfn + pages) order++;
      this.#release(pfn, order);
      pfn += 2 ** order;
    }
  }

  /** Frees one aligned block of 2^order pages straight into the free map, merging buddies. */
  #release(pfn: number, order: number): void {
    this.#allocatedPages -= 2 ** order;
    this.#merge(pfn, order);
  }

  /** True when a free block of order >= `order` holds `pfn`. */
  #inFreeBlock(pfn: number, order: number): boolean {
    for (let o = order; o <= this.topOrder; o++) {
      if (this.#free.get(Math.floor(pfn / 2 ** o) * 2 ** o) === o) return true;
    }
    return false;
  }

  #merge(pfn: number, order: number): void {
    while (order < this.topOrder) {
      const size = 2 ** order;
      const buddy = (pfn / size) % 2 === 0 ? pfn + size : pfn - size;
      if (this.#free.get(buddy) !== order) break;
      this.#free.delete(buddy);
      pfn = Math.min(pfn, buddy);
      order++;
    }
    this.#free.set(pfn, order);
  }

  #drainCache(): void {
    this.#cache.forEach((list, order) => {
      for (const pfn of list.splice(0)) this.#merge(pfn, order);
    });
  }

  /** Removes the aligned block (pfn, order) from the free block holding it, splitting that block. */
  #carve(pfn: number, order: number): boolean {
    let base = -1;
    let blockOrder = order;
    for (; blockOrder <= this.topOrder; blockOrder++) {
      const candidate = Math.floor(pfn / 2 ** blockOrder) * 2 ** blockOrder;
      if (this.#free.get(candidate) === blockOrder) {
        base = candidate;
        break;
      }
    }
    if (base < 0) return false;
    this.#free.delete(base);
    while (blockOrder > order) {
      blockOrder--;
      const half = 2 ** blockOrder;
      if (pfn >= base + half) {
        this.#free.set(base, blockOrder);
        base += half;
      } else {
        this.#free.set(base + half, blockOrder);
      }
    }
    this.#allocatedPages += 2 ** order;
    return true;
  }
}
