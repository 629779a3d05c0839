/**
 * The IOVA range cache: freed small ranges kept in per-size magazines, so the common one-page
 * map/unmap reuses an IOVA without searching the allocator's ranges. It follows Linux's rcache
 * (drivers/iommu/iova.c, after Bonwick and Adams' magazines; iommu-anchors §6), for one CPU:
 *
 * - one cache per order 0..5 (1..32 pages), each with a `loaded` and a `prev` magazine of 127
 *   PFNs and a depot of full magazines (at most 32 here; Linux trims its depot on a timer);
 * - insert pushes to `loaded`, swaps with `prev` when full, or parks the full magazine in the
 *   depot; when the depot is full too, the magazine's ranges go back to the allocator;
 * - remove pops from `loaded` (any range whose end is within the caller's limit, as
 *   iova_magazine_pop does), else swaps in `prev`, else takes a depot magazine.
 *
 * Magazines are typed arrays recycled through a spare list: a warm cache allocates nothing.
 */
import { PlatformError } from "../platform/platform-error.js";

/** Orders 0..5 are cached: ranges of 1..32 pages (Linux IOVA_RANGE_CACHE_MAX_SIZE = 6). */
export const IOVA_RCACHE_ORDERS = 6;
/** Largest cached range, in pages. */
const MAX_CACHED_PAGES = 2 ** (IOVA_RCACHE_ORDERS - 1);
/** PFNs per magazine (Linux IOVA_MAG_SIZE, which makes a magazine 1 KiB). */
export const IOVA_MAGAZINE_SIZE = 127;
/** Full magazines the depot keeps per order before ranges go back to the allocator. */
export const IOVA_DEPOT_MAGAZINES = 32;

class Magazine {
  readonly pfns = new Float64Array(IOVA_MAGAZINE_SIZE);
  size = 0;
}

interface SizeCache {
  loaded: Magazine;
  prev: Magazine;
  readonly depot: Magazine[];
}

/** Called for each range that leaves the cache for the allocator: (first PFN, pages). */
export type RcacheRelease = (pfn: number, pages: number) => void;

export class IovaRcache {
  readonly #caches: SizeCache[] = [];
  readonly #spare: Magazine[] = [];
  readonly #release: RcacheRelease;
  #cachedPages = 0;

  constructor(release: RcacheRelease) {
    this.#release = release;
    for (let order = 0; order < IOVA_RCACHE_ORDERS; order++) {
      this.#caches.push({ loaded: new Magazine(), prev: new Magazine(), depot: [] });
    }
  }

  /** Pages held by the cache (free for reuse, still reserved in the allocator). */
  get cachedPages(): number {
    return this.#cachedPages;
  }

  /** True when ranges of `pages` pages are cached (a power of two up to 32). */
  static caches(pages: number): boolean {
    return pages <= MAX_CACHED_PAGES && (pages & (pages - 1)) === 0;
  }

  /** Caches the range of 2^order pages at `pfn`. */
  insert(pfn: number, order: number): void {
    const cache = this.#cache(order);
    if (cache.loaded.size === IOVA_MAGAZINE_SIZE) {
      if (cache.prev.size < IOVA_MAGAZINE_SIZE) {
        const t = cache.loaded;
        cache.loaded = cache.prev;
        cache.prev = t;
      } else if (cache.depot.length < IOVA_DEPOT_MAGAZINES) {
        cache.depot.push(cache.loaded);
        cache.loaded = this.#spare.pop() ?? new Magazine();
      } else {
        this.#empty(cache.loaded, order);
      }
    }
    const magazine = cache.loaded;
    magazine.pfns[magazine.size++] = pfn;
    this.#cachedPages += 1 << order;
  }

  /**
   * Takes a cached range of 2^order pages that ends at or below `limitPfn`, or returns undefined
   * (a miss: the caller searches the allocator).
   */
  remove(order: number, limitPfn: number): number | undefined {
    const cache = this.#cache(order);
    if (cache.loaded.size === 0) {
      if (cache.prev.size > 0) {
        const t = cache.loaded;
        cache.loaded = cache.prev;
        cache.prev = t;
      } else {
        const full = cache.depot.pop();
        if (full === undefined) return undefined;
        this.#spare.push(cache.loaded);
        cache.loaded = full;
      }
    }
    const magazine = cache.loaded;
    const pfns = magazine.pfns;
    const highestStart = limitPfn - (1 << order) + 1;
    let i = magazine.size - 1;
    while (pfns[i]! > highestStart) {
      if (i === 0) return undefined;
      i--;
    }
    const pfn = pfns[i]!;
    pfns[i] = pfns[--magazine.size]!;
    this.#cachedPages -= 1 << order;
    return pfn;
  }

  /** Gives every cached range back through `release` (free_cpu_cached_iovas + the depot). */
  drain(): void {
    for (let order = 0; order < IOVA_RCACHE_ORDERS; order++) {
      const cache = this.#caches[order]!;
      this.#empty(cache.loaded, order);
      this.#empty(cache.prev, order);
      for (const magazine of cache.depot) {
        this.#empty(magazine, order);
        this.#spare.push(magazine);
      }
      cache.depot.length = 0;
    }
  }

  #cache(order: number): SizeCache {
    const cache = this.#caches[order];
    if (cache === undefined || !Number.isInteger(order)) {
      throw new PlatformError(
        "out-of-range",
        `IOVA rcache order ${String(order)} is not in [0, ${IOVA_RCACHE_ORDERS})`,
      );
    }
    return cache;
  }

  #empty(magazine: Magazine, order: number): void {
    const pages = 1 << order;
    for (let i = 0; i < magazine.size; i++) this.#release(magazine.pfns[i]!, pages);
    this.#cachedPages -= magazine.size * pages;
    magazine.size = 0;
  }
}
