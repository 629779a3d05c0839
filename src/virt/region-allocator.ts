/**
 * Pages of the paravirtual IOMMU's reserved region: bounce slots for mappings and coherent
 * buffers, carved first fit from a cursor that moves on (swiotlb's per-area `index`), so slots
 * freed a moment ago are not handed out again at once. One byte per page; a run never wraps
 * around the end of the region. Bad input throws a PlatformError and changes nothing.
 */
import { PlatformError } from "../platform/platform-error.js";

const FREE = 0;
const USED = 1;

export class RegionAllocator {
  readonly pages: number;
  readonly #used: Uint8Array;
  #cursor = 0;
  #inUse = 0;

  constructor(pages: number) {
    if (!Number.isSafeInteger(pages) || pages < 1) {
      throw new PlatformError("bad-length", `a region needs a positive page count, not ${String(pages)}`);
    }
    this.pages = pages;
    this.#used = new Uint8Array(pages);
  }

  get pagesInUse(): number {
    return this.#inUse;
  }

  /** The first page of `count` free pages (first page a multiple of `alignment`), or undefined. */
  allocate(count: number, alignment = 1): number | undefined {
    if (!Number.isSafeInteger(count) || count < 1 || !Number.isSafeInteger(alignment) || alignment < 1) {
      throw new PlatformError(
        "bad-length",
        `cannot take ${String(count)} pages aligned to ${String(alignment)}`,
      );
    }
    if (count > this.pages - this.#inUse) return undefined;
    const first =
      this.#search(count, alignment, this.#cursor, this.pages) ??
      this.#search(count, alignment, 0, this.#cursor);
    if (first === undefined) return undefined;
    this.#used.fill(USED, first, first + count);
    this.#inUse += count;
    this.#cursor = first + count === this.pages ? 0 : first + count;
    return first;
  }

  /** Gives back pages [first, first + count), which must all be in use. */
  free(first: number, count: number): void {
    if (
      !Number.isSafeInteger(first) ||
      !Number.isSafeInteger(count) ||
      first < 0 ||
      count < 1 ||
      first + count > this.pages
    ) {
      throw new PlatformError(
        "out-of-range",
        `pages ${String(first)}+${String(count)} are not in the region`,
      );
    }
    if (this.#used.subarray(first, first + count).includes(FREE)) {
      throw new PlatformError("double-free", `region pages ${first}+${count} are not all in use`);
    }
    this.#used.fill(FREE, first, first + count);
    this.#inUse -= count;
  }

  /** First fit of an aligned run starting in [from, to). */
  #search(count: number, alignment: number, from: number, to: number): number | undefined {
    let start = Math.ceil(from / alignment) * alignment;
    while (start < to && start + count <= this.pages) {
      const busy = this.#used.subarray(start, start + count).lastIndexOf(USED);
      if (busy < 0) return start;
      start = Math.ceil((start + busy + 1) / alignment) * alignment;
    }
    return undefined;
  }
}
