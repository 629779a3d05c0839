/**
 * Proof that nothing wrote where it must not. A snapshot records a 64-bit hash (two FNV-1a
 * variants over 32-bit words) of every frame that holds host memory; untouched frames are
 * implicitly zero and cost nothing. `changedFrames` then lists every frame whose contents differ
 * from then (a frame touched since counts if it is no longer all zeros), with its current owner.
 * Frames of the excepted owners (the buffers a test expects to change) are left out.
 *
 * It compares physical memory as devices see it: CPU writes still sitting in a non-coherent
 * cache are not there yet.
 */
import { FrameAllocator } from "./frame-allocator.js";
import { PAGE_SIZE } from "./page.js";
import type { PhysicalMemory } from "./physical-memory.js";

export interface SnapshotOptions {
  /** Owners whose frames may change (checked when the snapshot is taken and when compared). */
  readonly exceptOwners?: readonly number[];
}

export interface FrameChange {
  readonly pfn: number;
  /** Current owner id, 0 when the frame is free. */
  readonly owner: number;
  /** Current owner name, "free" when the frame is free. */
  readonly ownerName: string;
}

const WORDS = PAGE_SIZE / 4;

export class MemorySnapshot {
  readonly #memory: PhysicalMemory;
  readonly #allocator: FrameAllocator;
  readonly #except: ReadonlySet<number>;
  /** Hash per touched frame, two 32-bit halves packed into one exact double. */
  readonly #hashes = new Map<number, number>();
  readonly #scratch = new Uint8Array(PAGE_SIZE);
  readonly #words = new Uint32Array(this.#scratch.buffer);

  private constructor(memory: PhysicalMemory, allocator: FrameAllocator, except: readonly number[]) {
    this.#memory = memory;
    this.#allocator = allocator;
    this.#except = new Set(except);
  }

  /** Hashes every touched frame not held by an excepted owner. */
  static take(
    memory: PhysicalMemory,
    allocator: FrameAllocator,
    options: SnapshotOptions = {},
  ): MemorySnapshot {
    const snapshot = new MemorySnapshot(memory, allocator, options.exceptOwners ?? []);
    memory.forEachTouchedFrame((pfn) => {
      if (!snapshot.#excepted(pfn)) snapshot.#hashes.set(pfn, snapshot.#hash(pfn));
    });
    return snapshot;
  }

  /** Frames recorded when the snapshot was taken. */
  get recordedFrames(): number {
    return this.#hashes.size;
  }

  /** Frames whose contents changed since the snapshot, in ascending PFN order. */
  changedFrames(): FrameChange[] {
    const changes: FrameChange[] = [];
    const zero = MemorySnapshot.#zeroHash;
    this.#memory.forEachTouchedFrame((pfn) => {
      if (this.#excepted(pfn)) return;
      const before = this.#hashes.get(pfn) ?? zero;
      if (this.#hash(pfn) === before) return;
      const owner = this.#allocator.ownerOf(pfn);
      changes.push({ pfn, owner, ownerName: owner === 0 ? "free" : this.#allocator.ownerName(owner) });
    });
    return changes;
  }

  #excepted(pfn: number): boolean {
    return this.#except.size > 0 && this.#except.has(this.#allocator.ownerOf(pfn));
  }

  #hash(pfn: number): number {
    this.#memory.read(pfn * PAGE_SIZE, this.#scratch);
    return hashWords(this.#words);
  }

  static readonly #zeroHash = hashWords(new Uint32Array(WORDS));
}

/** FNV-1a over words, twice with different offset bases, packed as high * 2^21 + low (53 bits). */
function hashWords(words: Uint32Array): number {
  let a = 0x811c9dc5;
  let b = 0x01000193 ^ 0x9e3779b9;
  for (let i = 0; i < words.length; i++) {
    const word = words[i]!;
    a = Math.imul(a ^ word, 0x01000193);
    b = Math.imul(b ^ word ^ (b >>> 15), 0x01000193);
  }
  return ((a >>> 0) % 2 ** 21) * 2 ** 32 + (b >>> 0);
}
