/**
 * Fences around a verified common buffer, as Driver Verifier lays them (reference section 6:
 * "buffers are fenced by tags DmaVrfy0 and padding bytes 0x0F"): the verifier asks the HAL for a
 * guard page more on each side and hands the driver the middle.
 *
 *   outer VA/LA                     VA/LA the driver gets
 *   | 0x0F ... 0x0F | "DmaVrfy0" | buffer (Length bytes) | "DmaVrfy0" | 0x0F ... up to the end |
 *   |<------------- one page ---------->|                 |<--- rest of its page + one page --->|
 *
 * A driver that writes past either end, or a device that DMAs past it, changes a tag (the bytes
 * next to the buffer) or the padding beyond. The check reads the fence twice: as the CPU sees it
 * (a driver's store may still sit in a non-coherent cache) and as memory holds it (a device
 * writes memory, under the cache). Sub-codes and parameters are those of 0xE6/0x0F.
 */
import type { CpuMemory } from "../platform/cpu-memory.js";
import type { KernelMemory } from "../platform/kernel-memory.js";
import { PAGE_SIZE, roundUpToPage } from "../platform/page.js";
import type { PhysicalMemory } from "../platform/physical-memory.js";
import { Overrun } from "./violation-codes.js";

export const FENCE_TAG = new TextEncoder().encode("DmaVrfy0");
export const FENCE_PADDING = 0x0f;
const TAG = FENCE_TAG.length;
/** Longest tail fence: the rest of the last buffer page plus a whole page. */
const MAX_TAIL = 2 * PAGE_SIZE;

/** The allocation a fenced buffer of `length` bytes needs (a guard page before, the tail after). */
export function fencedLength(length: number): number {
  return PAGE_SIZE + roundUpToPage(length) + PAGE_SIZE;
}

/** A damaged fence: 0x0F's sub-code and its parameters 3 and 4. */
export interface FenceDamage {
  readonly subCode: number;
  readonly p3: number;
  readonly p4: number;
  /** Virtual address of the first changed byte. */
  readonly address: number;
  /** Where it was seen: "cpu" (a store that may sit in a cache: the driver) or "memory" (also a device). */
  readonly seenIn: "cpu" | "memory";
}

export class CommonBufferFence {
  readonly #kernel: KernelMemory;
  readonly #cpu: CpuMemory;
  readonly #memory: PhysicalMemory;
  readonly #head = new Uint8Array(PAGE_SIZE).fill(FENCE_PADDING);
  readonly #tail = new Uint8Array(MAX_TAIL).fill(FENCE_PADDING);
  readonly #headScratch = new Uint8Array(PAGE_SIZE);
  readonly #tailScratch = new Uint8Array(MAX_TAIL);

  constructor(kernel: KernelMemory, cpu: CpuMemory, memory: PhysicalMemory) {
    this.#kernel = kernel;
    this.#cpu = cpu;
    this.#memory = memory;
    this.#head.set(FENCE_TAG, PAGE_SIZE - TAG);
    this.#tail.set(FENCE_TAG, 0);
  }

  /** Writes both fences of the buffer at `va` (the driver's VA) and pushes them to memory. */
  build(va: number, length: number): void {
    const tailLength = this.#tailLength(length);
    this.#store(va - PAGE_SIZE, this.#head);
    this.#store(va + length, this.#tail.subarray(0, tailLength));
  }

  /** The first damage found, tags before padding, the CPU's view before memory's; undefined if intact. */
  check(va: number, length: number): FenceDamage | undefined {
    return this.#checkIn(va, length, "cpu") ?? this.#checkIn(va, length, "memory");
  }

  /** As `check`, in memory only: what a device changed. */
  checkMemory(va: number, length: number): FenceDamage | undefined {
    return this.#checkIn(va, length, "memory");
  }

  #checkIn(va: number, length: number, view: "cpu" | "memory"): FenceDamage | undefined {
    const head = this.#read(va - PAGE_SIZE, this.#headScratch, view);
    const headTag = firstDifference(head.subarray(PAGE_SIZE - TAG), FENCE_TAG);
    if (headTag >= 0) {
      const address = va - TAG + headTag;
      return { subCode: Overrun.tagBefore, p3: length, p4: va, address, seenIn: view };
    }
    const tailLength = this.#tailLength(length);
    const tail = this.#read(va + length, this.#tailScratch.subarray(0, tailLength), view);
    const tailTag = firstDifference(tail.subarray(0, TAG), FENCE_TAG);
    if (tailTag >= 0) {
      return { subCode: Overrun.tagAfter, p3: length, p4: va, address: va + length + tailTag, seenIn: view };
    }
    const headPadding = lastDifference(
      head.subarray(0, PAGE_SIZE - TAG),
      this.#head.subarray(0, PAGE_SIZE - TAG),
    );
    if (headPadding >= 0) {
      const address = va - PAGE_SIZE + headPadding;
      return { subCode: Overrun.paddingBefore, p3: va, p4: address, address, seenIn: view };
    }
    const tailPadding = firstDifference(tail.subarray(TAG), this.#tail.subarray(TAG, tailLength));
    if (tailPadding >= 0) {
      const address = va + length + TAG + tailPadding;
      return { subCode: Overrun.paddingAfter, p3: va, p4: address, address, seenIn: view };
    }
    return undefined;
  }

  #tailLength(length: number): number {
    return roundUpToPage(length) - length + PAGE_SIZE;
  }

  #store(va: number, bytes: Uint8Array): void {
    this.#kernel.write(va, bytes);
    this.#kernel.forEachPhysicalRun(va, bytes.length, (pa, _done, run) => this.#cpu.flush(pa, run));
  }

  /** Fills `out` from [va, va + out.length) as the CPU or as memory sees it. */
  #read(va: number, out: Uint8Array, view: "cpu" | "memory"): Uint8Array {
    if (view === "cpu") this.#kernel.read(va, out);
    else
      this.#kernel.forEachPhysicalRun(va, out.length, (pa, done, run) =>
        this.#memory.read(pa, out.subarray(done, done + run)),
      );
    return out;
  }
}

/** Index of the first byte where `a` and `b` differ, -1 when equal (whole-array compare first). */
function firstDifference(a: Uint8Array, b: Uint8Array): number {
  if (Buffer.from(a.buffer, a.byteOffset, a.length).equals(Buffer.from(b.buffer, b.byteOffset, b.length)))
    return -1;
  let i = 0;
  while (a[i] === b[i]) i++;
  return i;
}

/** Index of the last byte where `a` and `b` differ (the one nearest the buffer, for a front fence), -1 when equal. */
function lastDifference(a: Uint8Array, b: Uint8Array): number {
  if (firstDifference(a, b) < 0) return -1;
  let i = a.length - 1;
  while (i >= 0 && a[i] === b[i]) i--;
  return i;
}
