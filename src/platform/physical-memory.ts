/**
 * Sparse physical memory. The address space may be terabytes; host memory is spent only on
 * 4 KiB frames that have been written, carved in touch order from 2 MiB ArrayBuffer slabs.
 * Physically consecutive frames that also sit consecutively in a slab form a run, and a run is
 * moved with one `Uint8Array.set` — so a contiguous buffer written once costs one copy per run.
 * Untouched frames read as zeros and allocate nothing.
 *
 * Only hardware models use this class directly: devices go through their DmaPort, the CPU through
 * CpuMemory, the IOMMU walks its tables here.
 */
import { checkAddress, checkLength, formatAddress, PAGE_SIZE } from "./page.js";
import { PlatformError } from "./platform-error.js";

const SLAB_FRAMES = 512;
const SLAB_BYTES = SLAB_FRAMES * PAGE_SIZE;
const DIRECTORY_FRAMES = 512;

/** A [start, end) range of physical addresses backed by RAM. */
export interface RamRange {
  readonly start: number;
  readonly end: number;
}

export class PhysicalMemory {
  /** One past the highest RAM byte: the width of the physical address space in use. */
  readonly limit: number;
  readonly ranges: readonly RamRange[];
  readonly #directory: (Int32Array | undefined)[] = [];
  readonly #slabs: Uint8Array[] = [];
  #nextSlot = 0;
  /** The one run result #run hands out, reused so the data path allocates nothing. */
  readonly #result: Run = { slab: undefined, offset: 0, length: 0 };

  constructor(ranges: readonly RamRange[]) {
    if (ranges.length === 0)
      throw new PlatformError("out-of-range", "physical memory needs at least one RAM range");
    let previousEnd = 0;
    for (const range of ranges) {
      checkAddress(range.start, "RAM range start");
      checkAddress(range.end, "RAM range end", 53);
      if (range.start % PAGE_SIZE !== 0 || range.end % PAGE_SIZE !== 0 || range.end <= range.start) {
        throw new PlatformError(
          "out-of-range",
          `RAM range ${formatAddress(range.start)}-${formatAddress(range.end)} must be page aligned and non-empty`,
        );
      }
      if (range.start < previousEnd)
        throw new PlatformError("out-of-range", "RAM ranges must be sorted and disjoint");
      previousEnd = range.end;
    }
    this.ranges = ranges.map((r) => ({ start: r.start, end: r.end }));
    this.limit = previousEnd;
  }

  /** Bytes of RAM (holes excluded). */
  get ramBytes(): number {
    return this.ranges.reduce((sum, r) => sum + (r.end - r.start), 0);
  }

  /** Frames that hold host memory. */
  get touchedFrames(): number {
    return this.#nextSlot;
  }

  /** Host bytes spent on frames (whole slabs). */
  get hostBytes(): number {
    return this.#slabs.length * SLAB_BYTES;
  }

  /** True when every byte of [address, address + length) is RAM. */
  isRam(address: number, length: number): boolean {
    if (!Number.isSafeInteger(address) || !Number.isSafeInteger(length) || address < 0 || length < 0)
      return false;
    const end = address + length;
    for (const range of this.ranges) {
      if (address >= range.start && end <= range.end) return true;
    }
    return false;
  }

  /** Copies [address, address + dst.length) into dst. */
  read(address: number, dst: Uint8Array): void {
    this.#checkRam(address, dst.length);
    let done = 0;
    while (done < dst.length) {
      const pa = address + done;
      const run = this.#run(pa, dst.length - done, false);
      if (run.slab === undefined) dst.fill(0, done, done + run.length);
      else dst.set(run.slab.subarray(run.offset, run.offset + run.length), done);
      done += run.length;
    }
  }

  /** Copies src to [address, address + src.length), materialising untouched frames in order. */
  write(address: number, src: Uint8Array): void {
    this.#checkRam(address, src.length);
    let done = 0;
    while (done < src.length) {
      const run = this.#run(address + done, src.length - done, true);
      run.slab!.set(src.subarray(done, done + run.length), run.offset);
      done += run.length;
    }
  }

  /** Fills [address, address + length) with one byte value. */
  fill(address: number, length: number, value: number): void {
    this.#checkRam(address, length);
    let done = 0;
    while (done < length) {
      const pa = address + done;
      const untouched = value === 0 && this.#slot(Math.floor(pa / PAGE_SIZE)) < 0;
      const run = this.#run(pa, length - done, !untouched);
      if (run.slab !== undefined) run.slab.fill(value, run.offset, run.offset + run.length);
      done += run.length;
    }
  }

  /** Physical-to-physical copy (bounce buffers); overlapping ranges are not supported. */
  copy(dstAddress: number, srcAddress: number, length: number): void {
    this.#checkRam(srcAddress, length);
    this.#checkRam(dstAddress, length);
    let done = 0;
    while (done < length) {
      const src = this.#run(srcAddress + done, length - done, false);
      const dst = this.#run(dstAddress + done, src.length, true);
      const n = dst.length;
      if (src.slab === undefined) dst.slab!.fill(0, dst.offset, dst.offset + n);
      else dst.slab!.set(src.slab.subarray(src.offset, src.offset + n), dst.offset);
      done += n;
    }
  }

  /**
   * The live 4 KiB view of one frame, materialised if needed. For hardware models that keep
   * structures in RAM (IOMMU tables, fault records); never hand it to a device model.
   */
  frame(pfn: number): Uint8Array {
    this.#checkRam(pfn * PAGE_SIZE, PAGE_SIZE);
    let slot = this.#slot(pfn);
    if (slot < 0) slot = this.#materialise(pfn);
    const slab = this.#slabs[Math.floor(slot / SLAB_FRAMES)]!;
    const offset = (slot % SLAB_FRAMES) * PAGE_SIZE;
    return slab.subarray(offset, offset + PAGE_SIZE);
  }

  /** Calls `visit` with every frame that holds host memory, in ascending PFN order. */
  forEachTouchedFrame(visit: (pfn: number) => void): void {
    const directory = this.#directory;
    for (let d = 0; d < directory.length; d++) {
      const leaf = directory[d];
      if (leaf === undefined) continue;
      for (let i = 0; i < DIRECTORY_FRAMES; i++) {
        if (leaf[i] !== 0) visit(d * DIRECTORY_FRAMES + i);
      }
    }
  }

  /** True when the frame holds host memory (has been written). */
  isTouched(pfn: number): boolean {
    return this.#slot(pfn) >= 0;
  }

  #checkRam(address: number, length: number): void {
    checkAddress(address, "physical address");
    checkLength(length, "length");
    if (!this.isRam(address, length)) {
      throw new PlatformError(
        "out-of-range",
        `physical range ${formatAddress(address)}+${formatAddress(length)} is not RAM`,
      );
    }
  }

  #slot(pfn: number): number {
    const leaf = this.#directory[Math.floor(pfn / DIRECTORY_FRAMES)];
    return leaf === undefined ? -1 : leaf[pfn % DIRECTORY_FRAMES]! - 1;
  }

  #materialise(pfn: number): number {
    const dirIndex = Math.floor(pfn / DIRECTORY_FRAMES);
    let leaf = this.#directory[dirIndex];
    if (leaf === undefined) {
      leaf = new Int32Array(DIRECTORY_FRAMES);
      this.#directory[dirIndex] = leaf;
    }
    const slot = this.#nextSlot++;
    if (slot % SLAB_FRAMES === 0) this.#slabs.push(new Uint8Array(SLAB_BYTES));
    leaf[pfn % DIRECTORY_FRAMES] = slot + 1;
    return slot;
  }

  /**
   * The longest run starting at `address` (at most `max` bytes) that is one stretch of host
   * memory, or one stretch of untouched frames when `materialise` is false. Reuses one result
   * object: no allocation per page.
   */
  #run(address: number, max: number, materialise: boolean): Run {
    let pfn = Math.floor(address / PAGE_SIZE);
    const first = address % PAGE_SIZE;
    let slot = this.#slot(pfn);
    if (slot < 0 && materialise) slot = this.#materialise(pfn);
    let length = Math.min(PAGE_SIZE - first, max);
    const result = this.#result;
    if (slot < 0) {
      while (length < max && this.#slot(pfn + 1) < 0) {
        pfn++;
        length = Math.min(length + PAGE_SIZE, max);
      }
      result.slab = undefined;
      result.offset = 0;
      result.length = length;
      return result;
    }
    const slabIndex = Math.floor(slot / SLAB_FRAMES);
    let last = slot;
    while (length < max) {
      let next = this.#slot(pfn + 1);
      if (next < 0 && materialise) next = this.#materialise(pfn + 1);
      if (next !== last + 1 || Math.floor(next / SLAB_FRAMES) !== slabIndex) break;
      pfn++;
      last = next;
      length = Math.min(length + PAGE_SIZE, max);
    }
    result.slab = this.#slabs[slabIndex];
    result.offset = (slot % SLAB_FRAMES) * PAGE_SIZE + first;
    result.length = length;
    return result;
  }
}

interface Run {
  slab: Uint8Array | undefined;
  offset: number;
  length: number;
}
