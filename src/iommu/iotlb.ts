/**
 * One unit's IOTLB: a bounded cache of leaf translations (iommu-anchors §1.4), tagged by source id and
 * domain id and remembering the leaf level (4 KiB, 2 MiB, 1 GiB), as QEMU keys it
 * ({gfn, sid, level}, iommu-anchors §9.2). It is filled by page walks and emptied only by
 * invalidation commands or by replacement, so a stale entry keeps translating until software
 * invalidates it.
 *
 * Layout: parallel typed arrays indexed by slot, a chained hash index for lookups, a free-slot
 * stack, and round-robin (FIFO) replacement when full, so the same accesses always evict the
 * same entries. Lookups and fills allocate nothing.
 */
import { LEVEL_SIZE } from "./entry-format.js";

const EMPTY = -1;

export class Iotlb {
  readonly capacity: number;
  readonly #sid: Int32Array;
  readonly #did: Int32Array;
  readonly #level: Uint8Array;
  /** IOVA frame number at the entry's level: floor(iova / LEVEL_SIZE[level]). */
  readonly #page: Float64Array;
  readonly #physical: Float64Array;
  readonly #permissions: Uint8Array;
  readonly #next: Int32Array;
  readonly #heads: Int32Array;
  readonly #shift: number;
  readonly #free: Int32Array;
  #freeCount = 0;
  #victim = 0;
  #count = 0;
  /**
   * The slot that answered last: checked first, as back-to-back DMA to one page is the common
   * case. Only a hint: the slot's own tag is compared, so a removed or reused slot cannot lie.
   */
  #hint = 0;
  readonly #perLevel = new Int32Array(4);

  constructor(capacity: number) {
    this.capacity = capacity;
    this.#sid = new Int32Array(capacity);
    this.#did = new Int32Array(capacity);
    this.#level = new Uint8Array(capacity);
    this.#page = new Float64Array(capacity);
    this.#physical = new Float64Array(capacity);
    this.#permissions = new Uint8Array(capacity);
    this.#next = new Int32Array(capacity);
    let bits = 4;
    while (1 << bits < capacity * 2) bits++;
    this.#heads = new Int32Array(1 << bits);
    this.#shift = 32 - bits;
    this.#free = new Int32Array(capacity);
    this.invalidateAll();
  }

  /** Valid entries. */
  get size(): number {
    return this.#count;
  }

  /**
   * The slot translating `address` for `sid` with all of `permissions` (PTE R/W bits), or -1.
   * An entry that lacks a permission is a miss: the unit walks again, as hardware may.
   */
  lookup(sid: number, address: number, permissions: number): number {
    if (this.#count === 0) return EMPTY;
    const hint = this.#hint;
    if (
      this.#sid[hint] === sid &&
      this.#page[hint] === Math.floor(address / LEVEL_SIZE[this.#level[hint]!]!)
    ) {
      return (this.#permissions[hint]! & permissions) === permissions ? hint : EMPTY;
    }
    for (let level = 1; level <= 3; level++) {
      if (this.#perLevel[level] === 0) continue;
      const page = Math.floor(address / LEVEL_SIZE[level]!);
      for (
        let slot = this.#heads[this.#bucket(sid, level, page)]!;
        slot !== EMPTY;
        slot = this.#next[slot]!
      ) {
        if (this.#page[slot] === page && this.#sid[slot] === sid && this.#level[slot] === level) {
          this.#hint = slot;
          return (this.#permissions[slot]! & permissions) === permissions ? slot : EMPTY;
        }
      }
    }
    return EMPTY;
  }

  /** Physical address of `address` through the entry in `slot`. */
  physicalAddress(slot: number, address: number): number {
    const size = LEVEL_SIZE[this.#level[slot]!]!;
    return this.#physical[slot]! + (address - this.#page[slot]! * size);
  }

  /** Bytes from `address` to the end of the entry's page or superpage. */
  remaining(slot: number, address: number): number {
    const size = LEVEL_SIZE[this.#level[slot]!]!;
    return (this.#page[slot]! + 1) * size - address;
  }

  /** Caches a leaf found by a walk; `physicalBase` is the leaf's (superpage's) base address. */
  insert(
    sid: number,
    did: number,
    level: number,
    address: number,
    physicalBase: number,
    permissions: number,
  ): void {
    const page = Math.floor(address / LEVEL_SIZE[level]!);
    const bucket = this.#bucket(sid, level, page);
    let slot = this.#heads[bucket]!;
    while (
      slot !== EMPTY &&
      !(this.#page[slot] === page && this.#sid[slot] === sid && this.#level[slot] === level)
    ) {
      slot = this.#next[slot]!;
    }
    if (slot !== EMPTY) {
      this.#did[slot] = did;
      this.#physical[slot] = physicalBase;
      this.#permissions[slot] = permissions;
      return;
    }
    if (this.#freeCount > 0) {
      slot = this.#free[--this.#freeCount]!;
    } else {
      this.#remove(this.#victim);
      this.#victim = (this.#victim + 1) % this.capacity;
      slot = this.#free[--this.#freeCount]!;
    }
    this.#sid[slot] = sid;
    this.#did[slot] = did;
    this.#level[slot] = level;
    this.#page[slot] = page;
    this.#physical[slot] = physicalBase;
    this.#permissions[slot] = permissions;
    this.#next[slot] = this.#heads[bucket]!;
    this.#heads[bucket] = slot;
    this.#count++;
    this.#perLevel[level]!++;
  }

  /** Global invalidation. */
  invalidateAll(): number {
    const removed = this.#count;
    this.#sid.fill(EMPTY);
    this.#heads.fill(EMPTY);
    for (let i = 0; i < this.capacity; i++) this.#free[i] = this.capacity - 1 - i;
    this.#freeCount = this.capacity;
    this.#count = 0;
    this.#perLevel.fill(0);
    return removed;
  }

  /** Domain-selective invalidation: every entry tagged `did`. */
  invalidateDomain(did: number): number {
    if (this.#count === 0) return 0;
    let removed = 0;
    for (let slot = 0; slot < this.capacity; slot++) {
      if (this.#sid[slot] !== EMPTY && this.#did[slot] === did) {
        this.#remove(slot);
        removed++;
      }
    }
    return removed;
  }

  /**
   * Page-selective invalidation: every entry tagged `did` whose page or superpage overlaps
   * [address, address + bytes), so a 4 KiB invalidation also drops a 2 MiB entry around it.
   */
  invalidateRange(did: number, address: number, bytes: number): number {
    if (this.#count === 0) return 0;
    const end = address + bytes;
    let removed = 0;
    for (let slot = 0; slot < this.capacity; slot++) {
      if (this.#sid[slot] === EMPTY || this.#did[slot] !== did) continue;
      const size = LEVEL_SIZE[this.#level[slot]!]!;
      const start = this.#page[slot]! * size;
      if (start < end && start + size > address) {
        this.#remove(slot);
        removed++;
      }
    }
    return removed;
  }

  #bucket(sid: number, level: number, page: number): number {
    return Math.imul((page >>> 0) ^ Math.imul(sid ^ (level << 16), 0x27d4eb2d), 0x9e3779b1) >>> this.#shift;
  }

  #remove(slot: number): void {
    const sid = this.#sid[slot]!;
    if (sid === EMPTY) return;
    const level = this.#level[slot]!;
    const bucket = this.#bucket(sid, level, this.#page[slot]!);
    let current = this.#heads[bucket]!;
    if (current === slot) {
      this.#heads[bucket] = this.#next[slot]!;
    } else {
      while (this.#next[current] !== slot) current = this.#next[current]!;
      this.#next[current] = this.#next[slot]!;
    }
    this.#sid[slot] = EMPTY;
    this.#free[this.#freeCount++] = slot;
    this.#count--;
    this.#perLevel[level]!--;
  }
}
