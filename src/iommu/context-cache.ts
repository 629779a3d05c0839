/**
 * One unit's context-cache (iommu-anchors §1.4): present context entries as last read from RAM, tagged by
 * source id. Direct-mapped and bounded. A global invalidation bumps a generation number and
 * thereby drops every entry in O(1), as QEMU's context_cache_gen does (iommu-anchors §9.2);
 * domain- and device-selective invalidations clear matching slots. Not-present entries are never
 * cached (CAP.CM = 0), so making an entry present needs no invalidation.
 */
import { CONTEXT_DID_SHIFT } from "./entry-format.js";

const SLOTS = 256;
const EMPTY = -1;
/** Source-id bits ignored by a device-selective invalidation for FM = 0..3 (QEMU vtd_context_device_invalidate). */
const FUNCTION_MASKS = [0, 0x4, 0x6, 0x7] as const;

export class ContextCache {
  readonly #tag = new Int32Array(SLOTS).fill(EMPTY);
  readonly #generation = new Float64Array(SLOTS);
  /** Words 0-2 of the cached context entry (word 3 is reserved and checked when read). */
  readonly #words = new Uint32Array(SLOTS * 3);
  #current = 1;

  /** The slot holding `sid`'s context entry, or -1. */
  lookup(sid: number): number {
    const slot = slotOf(sid);
    return this.#tag[slot] === sid && this.#generation[slot] === this.#current ? slot : EMPTY;
  }

  fill(sid: number, word0: number, word1: number, word2: number): number {
    const slot = slotOf(sid);
    this.#tag[slot] = sid;
    this.#generation[slot] = this.#current;
    this.#words[slot * 3] = word0;
    this.#words[slot * 3 + 1] = word1;
    this.#words[slot * 3 + 2] = word2;
    return slot;
  }

  word(slot: number, index: 0 | 1 | 2): number {
    return this.#words[slot * 3 + index]!;
  }

  invalidateAll(): void {
    this.#current++;
  }

  invalidateDomain(did: number): void {
    for (let slot = 0; slot < SLOTS; slot++) {
      if (
        this.#tag[slot] !== EMPTY &&
        ((this.#words[slot * 3 + 2]! >>> CONTEXT_DID_SHIFT) & 0xffff) === did
      ) {
        this.#tag[slot] = EMPTY;
      }
    }
  }

  /** Device-selective: `sid`, with the function-number bits FM selects ignored. */
  invalidateDevice(sid: number, functionMask: 0 | 1 | 2 | 3): void {
    const keep = ~FUNCTION_MASKS[functionMask];
    for (let slot = 0; slot < SLOTS; slot++) {
      const tag = this.#tag[slot]!;
      if (tag !== EMPTY && (tag & keep) === (sid & keep)) this.#tag[slot] = EMPTY;
    }
  }
}

function slotOf(sid: number): number {
  return (sid ^ (sid >>> 8)) & (SLOTS - 1);
}
