/**
 * Host-side acceleration for IOMMU tables: a bounded, direct-mapped cache of Uint32Array views
 * of table frames, keyed by PFN. A view aliases the frame's bytes in PhysicalMemory (frames never
 * move), so the bytes in simulated RAM stay the only truth: a table corrupted through any other
 * path is seen by the next walk, exactly as hardware would see it.
 */
import { PAGE_SIZE } from "../platform/page.js";
import type { PhysicalMemory } from "../platform/physical-memory.js";
import { PlatformError } from "../platform/platform-error.js";

const SLOTS = 4096;
const WORDS_PER_FRAME = PAGE_SIZE / 4;

/** What a hardware read of a frame that was never written sees. Never written itself. */
export const ZERO_TABLE: Uint32Array = new Uint32Array(WORDS_PER_FRAME);

export class TableViews {
  readonly #memory: PhysicalMemory;
  readonly #tags = new Float64Array(SLOTS).fill(-1);
  readonly #views: Uint32Array[] = new Array<Uint32Array>(SLOTS).fill(ZERO_TABLE);

  constructor(memory: PhysicalMemory) {
    if (new Uint8Array(new Uint32Array([1]).buffer)[0] !== 1) {
      throw new PlatformError(
        "bad-state",
        "IOMMU tables are little-endian words: a big-endian host is not supported",
      );
    }
    this.#memory = memory;
  }

  /** The live words of a RAM frame the IOMMU software owns; materialises it if untouched. */
  get(pfn: number): Uint32Array {
    const slot = pfn & (SLOTS - 1);
    if (this.#tags[slot] === pfn) return this.#views[slot]!;
    return this.#fill(slot, pfn);
  }

  /**
   * A hardware read of the frame at `pfn`: its words, ZERO_TABLE when the frame was never
   * written (without materialising it), or undefined when it is not RAM (an access error).
   */
  peek(pfn: number): Uint32Array | undefined {
    const slot = pfn & (SLOTS - 1);
    if (this.#tags[slot] === pfn) return this.#views[slot]!;
    if (!this.#memory.isRam(pfn * PAGE_SIZE, PAGE_SIZE)) return undefined;
    if (!this.#memory.isTouched(pfn)) return ZERO_TABLE;
    return this.#fill(slot, pfn);
  }

  #fill(slot: number, pfn: number): Uint32Array {
    const bytes = this.#memory.frame(pfn);
    const view = new Uint32Array(bytes.buffer, bytes.byteOffset, WORDS_PER_FRAME);
    this.#tags[slot] = pfn;
    this.#views[slot] = view;
    return view;
  }
}
