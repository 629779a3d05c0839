/**
 * Sub-page bouncing for untrusted devices, after Linux's dma-iommu with swiotlb (iommu-anchors
 * §4-5): an IOMMU maps whole 4 KiB pages, so a buffer that covers only part of a page would let
 * the device see (or overwrite) whatever else lives in that page: the Thunderclap lesson
 * (perf-security-anchors §8). Such a page is replaced, in the IOVA window, by a dedicated bounce
 * page (frames owned by "hal.swiotlb") that holds only the buffer's bytes, at the same in-page
 * offset so the logical run stays contiguous; the rest of the page is zero.
 *
 * As swiotlb does, the bytes are copied in at map time for both directions (so a read the device
 * only partly performs leaves the rest of the buffer as it was), and copied back at unmap time for
 * reads. The copies are CPU copies: through CpuMemory, with the bounce page flushed before the
 * device reads it and invalidated before the CPU reads what the device wrote.
 */
import { CpuMemory } from "../platform/cpu-memory.js";
import { FrameAllocator } from "../platform/frame-allocator.js";
import { PAGE_SIZE } from "../platform/page.js";
import { PlatformError } from "../platform/platform-error.js";
import { Counters } from "../trace/counters.js";

export const SWIOTLB_OWNER = "hal.swiotlb";

export class SubpageBounce {
  readonly #frames: FrameAllocator;
  readonly #cpu: CpuMemory;
  readonly #counters: Counters;
  readonly #owner: number;
  readonly #scratch = new Uint8Array(PAGE_SIZE);
  readonly #zero = new Uint8Array(PAGE_SIZE);
  readonly #pfn = [0];
  #inUse = 0;

  constructor(frames: FrameAllocator, cpu: CpuMemory, counters: Counters) {
    this.#frames = frames;
    this.#cpu = cpu;
    this.#counters = counters;
    this.#owner = frames.registerOwner(SWIOTLB_OWNER);
  }

  /** Bounce pages handed out and not yet released. */
  get pagesInUse(): number {
    return this.#inUse;
  }

  /**
   * A zeroed bounce page holding the `length` bytes at physical `source` (which stay within one
   * page) at the same page offset. Returns its PFN, or undefined when no frame is free.
   */
  bounceIn(source: number, length: number): number | undefined {
    const offset = source % PAGE_SIZE;
    if (length < 1 || offset + length > PAGE_SIZE) {
      throw new PlatformError(
        "bad-length",
        `a sub-page bounce of ${length} bytes at page offset ${offset} leaves the page`,
      );
    }
    let pfn: number;
    try {
      pfn = this.#frames.allocate(1, { owner: this.#owner })[0]!;
    } catch (error) {
      if (error instanceof PlatformError && error.code === "no-memory") return undefined;
      throw error;
    }
    const page = pfn * PAGE_SIZE;
    const bytes = this.#scratch.subarray(0, length);
    this.#cpu.read(source, bytes);
    this.#cpu.write(page, this.#zero);
    this.#cpu.write(page + offset, bytes);
    this.#cpu.flush(page, PAGE_SIZE);
    this.#inUse++;
    this.#counters.add("hal.swiotlb.bounce");
    this.#counters.add("hal.swiotlb.bytes", length);
    return pfn;
  }

  /** Copies what the device wrote to the bounce page back to `destination` (a read from the device). */
  copyOut(pfn: number, destination: number, length: number): void {
    const offset = destination % PAGE_SIZE;
    const from = pfn * PAGE_SIZE + offset;
    const bytes = this.#scratch.subarray(0, length);
    this.#cpu.invalidate(from, length);
    this.#cpu.read(from, bytes);
    this.#cpu.write(destination, bytes);
    this.#counters.add("hal.swiotlb.bytes", length);
  }

  /** Gives a bounce page back to the frame allocator (after its IOTLB invalidation). */
  release(pfn: number): void {
    this.#pfn[0] = pfn;
    this.#frames.free(this.#pfn, this.#owner);
    this.#inUse--;
  }
}
