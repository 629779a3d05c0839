/**
 * Map registers of the no-remapping path: a run of physically contiguous pages below a reach
 * limit (reference section 3: on x86/x64 without an IOMMU a "map register" is a HAL-owned page of
 * low, device-reachable memory used as a bounce buffer). Registers are handed out as contiguous
 * runs, first fit, like the bitmap of ReactOS's master adapter, so a bounced piece is one logical
 * run however scattered its source pages are. The pool lies entirely below 4 GiB, so no run of it
 * crosses a 4 GiB boundary.
 */
import { formatAddress, PAGE_SIZE } from "../platform/page.js";
import { PlatformError } from "../platform/platform-error.js";

export class BouncePool {
  /** Physical address of register 0. */
  readonly base: number;
  readonly pages: number;
  /** Highest physical address of the reach class the pool serves, inclusive. */
  readonly reach: number;
  /**
   * The live bytes of each register's frame (PhysicalMemory.frame): the HAL is the bounce engine,
   * so it copies straight into the frames the device will read.
   */
  readonly views: readonly Uint8Array[];
  readonly #used: Uint8Array;
  #inUse = 0;

  constructor(base: number, pages: number, reach: number, views: readonly Uint8Array[]) {
    if (base % PAGE_SIZE !== 0 || pages < 1 || base + pages * PAGE_SIZE - 1 > reach) {
      throw new PlatformError(
        "out-of-range",
        `bounce pool ${formatAddress(base)}+${pages} pages is not page aligned below ${formatAddress(reach)}`,
      );
    }
    this.base = base;
    this.pages = pages;
    if (views.length !== pages)
      throw new PlatformError("out-of-range", `bounce pool needs ${pages} frame views`);
    this.reach = reach;
    this.views = views;
    this.#used = new Uint8Array(pages);
  }

  get pagesInUse(): number {
    return this.#inUse;
  }

  /** Physical address of `register`. */
  address(register: number): number {
    return this.base + register * PAGE_SIZE;
  }

  /** The first register of a free run of `count`, now taken; undefined when no run is free. */
  allocate(count: number): number | undefined {
    if (!Number.isInteger(count) || count < 1) {
      throw new PlatformError("bad-length", `cannot allocate ${String(count)} map registers`);
    }
    if (count > this.pages - this.#inUse) return undefined;
    const used = this.#used;
    let runStart = 0;
    for (let i = 0; i < this.pages; i++) {
      if (used[i] !== 0) {
        runStart = i + 1;
      } else if (i - runStart + 1 === count) {
        used.fill(1, runStart, runStart + count);
        this.#inUse += count;
        return runStart;
      }
    }
    return undefined;
  }

  free(first: number, count: number): void {
    if (
      !Number.isInteger(first) ||
      !Number.isInteger(count) ||
      first < 0 ||
      count < 1 ||
      first + count > this.pages
    ) {
      throw new PlatformError(
        "out-of-range",
        `map registers ${String(first)}+${String(count)} are not in the pool`,
      );
    }
    if (this.#used.subarray(first, first + count).includes(0)) {
      throw new PlatformError("double-free", `map registers ${first}+${count} are not all allocated`);
    }
    this.#used.fill(0, first, first + count);
    this.#inUse -= count;
  }
}
