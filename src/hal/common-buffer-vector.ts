/**
 * DMA_COMMON_BUFFER_VECTOR (AllocateCommonBufferVector and friends, reference section 1):
 * NumberOfElements common buffers of one size, allocated together, freed one by one, then the
 * vector itself. Elements smaller than half a page are packed into shared pages (each element on
 * its own cache lines, so a non-coherent flush of one never touches its neighbours); larger ones
 * get buffers of their own. A chunk goes back when its last element is freed.
 */
import { PAGE_SIZE } from "../platform/page.js";
import type { AdapterObject } from "./adapter-object.js";
import type { CommonBuffer } from "./dma-mapping-strategy.js";
import type { DMA_COMMON_BUFFER_VECTOR } from "./wdm/dma-v3-types.js";

const LINE = 64;

/** How elements of `size` bytes are laid out: `perChunk` of them every `stride` bytes. */
export function vectorLayout(size: number): { readonly stride: number; readonly perChunk: number } {
  if (size > PAGE_SIZE / 2) return { stride: size, perChunk: 1 };
  const stride = Math.ceil(size / LINE) * LINE;
  return { stride, perChunk: Math.floor(PAGE_SIZE / stride) };
}

interface Chunk {
  readonly buffer: CommonBuffer;
  live: number;
}

export class CommonBufferVector implements DMA_COMMON_BUFFER_VECTOR {
  readonly kind = "DMA_COMMON_BUFFER_VECTOR" as const;
  readonly #chunks: Chunk[];
  readonly #stride: number;
  readonly #perChunk: number;
  readonly #freed: Uint8Array;
  #live: number;
  released = false;

  constructor(
    readonly adapter: AdapterObject,
    readonly elementSize: number,
    readonly count: number,
    buffers: readonly CommonBuffer[],
  ) {
    const { stride, perChunk } = vectorLayout(elementSize);
    this.#stride = stride;
    this.#perChunk = perChunk;
    this.#chunks = buffers.map((buffer, i) => ({ buffer, live: Math.min(perChunk, count - i * perChunk) }));
    this.#freed = new Uint8Array(count);
    this.#live = count;
  }

  /** Elements not yet freed. */
  get live(): number {
    return this.#live;
  }

  isFreed(index: number): boolean {
    return this.#freed[index] === 1;
  }

  /** The first element still allocated, or -1. */
  firstLive(): number {
    return this.#freed.indexOf(0);
  }

  addresses(index: number): { readonly virtualAddress: number; readonly logicalAddress: number } {
    const chunk = this.#chunks[Math.floor(index / this.#perChunk)]!;
    const offset = (index % this.#perChunk) * this.#stride;
    return {
      virtualAddress: chunk.buffer.virtualAddress + offset,
      logicalAddress: chunk.buffer.logicalAddress + offset,
    };
  }

  /** Marks `index` freed; returns its chunk's buffer when that was the chunk's last element. */
  free(index: number): CommonBuffer | undefined {
    this.#freed[index] = 1;
    this.#live--;
    const chunk = this.#chunks[Math.floor(index / this.#perChunk)]!;
    chunk.live--;
    return chunk.live === 0 ? chunk.buffer : undefined;
  }
}
