/**
 * An adapter's lookaside of scatter/gather list memory: PutScatterGatherList keeps the nonpaged
 * pool block of a list GetScatterGatherList allocated, and the adapter's next list of the same
 * size takes that block back instead of going to the pool (ExAllocateFromNPagedLookasideList's
 * idea; KMDF keeps such a lookaside of list buffers per DMA enabler, windows-dma-ddi §4). The
 * block stays a pool allocation of the HAL's list owner the whole time, so pool accounting does
 * not change; it is only not given back between two lists.
 *
 * Bounded: at most DEPTH blocks, each a small-pool block (a list big enough for pages of its own
 * goes back to the pool at once, so no frame changes hands). PutDmaAdapter closes it.
 */
import { SMALL_POOL_MAX } from "../platform/kernel-memory.js";

export class ListLookaside {
  static readonly DEPTH = 4;
  readonly #vas: number[] = [];
  readonly #sizes: number[] = [];
  #closed = false;

  /** A kept block of exactly `size` bytes, or undefined. */
  take(size: number): number | undefined {
    const vas = this.#vas;
    const sizes = this.#sizes;
    for (let i = sizes.length - 1; i >= 0; i--) {
      if (sizes[i] !== size) continue;
      const va = vas[i]!;
      const lastVa = vas.pop()!;
      const lastSize = sizes.pop()!;
      if (i < vas.length) {
        vas[i] = lastVa;
        sizes[i] = lastSize;
      }
      return va;
    }
    return undefined;
  }

  /** Keeps the block at `va` of `size` bytes; false when it must go back to the pool instead. */
  keep(va: number, size: number): boolean {
    if (this.#closed || size > SMALL_POOL_MAX || this.#vas.length >= ListLookaside.DEPTH) return false;
    this.#vas.push(va);
    this.#sizes.push(size);
    return true;
  }

  /** Empties the lookaside for good (its adapter is released) and returns the blocks it kept. */
  close(): number[] {
    const vas = [...this.#vas];
    this.#vas.length = 0;
    this.#sizes.length = 0;
    this.#closed = true;
    return vas;
  }
}
