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
/** Frames per leaf of the directory (one Int32Array of slot numbers). */
const LEAF_FRAMES = 512;
/** Frames per top-level entry (1 GiB): 512 leaves. */
const GIB_FRAMES = 512 * LEAF_FRAMES;

/** A [start, end) range of physical addresses backed by RAM. */
export interface RamRange {
  readonly start: number;
  readonly end: number;
}

export class PhysicalMemory {
  /** One past the highest RAM byte: the width of the physical address space in use. */
  readonly limit: number;
  readonly ranges: readonly RamRange[];
  /**
   * frame -> host slot + 1 (0: untouched), as GiB -> leaf -> Int32Array. Pre-sized packed arrays
   * keep V8 off dictionary elements, which a sparse array indexed by PFN would fall into.
   */
  readonly #directory: ((Int32Array | undefined)[] | undefined)[];
  readonly #slabs: Uint8Array[] = [];
  /**
   * Views of whole frames by host slot, made on first whole-frame read: slots are dense, so this
   * grows with touched frames only, and a DMA read of a full page allocates nothing.
   */
  readonly #frameViews: (Uint8Array | undefined)[] = [];
  readonly #rangeStarts: Float64Array;
  readonly #rangeEnds: Float64Array;
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
    this.#rangeStarts = Float64Array.from(ranges, (r) => r.start);
    this.#rangeEnds = Float64Array.from(ranges, (r) => r.end);
    this.#directory = new Array(Math.ceil(previousEnd / PAGE_SIZE / GIB_FRAMES)).fill(undefined);
  }

  /** Bytes of RAM (holes excluded). */
  get ramBytes(): number {
    return this.ranges.reduce((sum, r) => sum + (r.end - r.start), 0);
  }

  /** Frames that hold host memory. */
  get touchedFrames(): number {
    return this.#nextSlot;
  }

  /** Host bytes spent on frames (whole slabs) and on the directory. */
  get hostBytes(): number {
    return this.#slabs.length * SLAB_BYTES;
  }

  /** True when every byte of [address, address + length) is RAM. */
  isRam(address: number, length: number): boolean {
    if (!Number.isSafeInteger(address) || !Number.isSafeInteger(length) || address < 0 || length < 0)
      return false;
    const end = address + length;
    const starts = this.#rangeStarts;
    const ends = this.#rangeEnds;
    for (let i = 0; i < starts.length; i++) {
      if (address >= starts[i]! && end <= ends[i]!) return true;
    }
    return false;
  }

  /** Copies [address, address + dst.length) into dst. */
  read(address: number, dst: Uint8Array): void {
    this.readInto(address, dst, 0, dst.length);
  }

  /** Copies src to [address, address + src.length), materialising untouched frames in order. */
  write(address: number, src: Uint8Array): void {
    this.writeFrom(address, src, 0, src.length);
  }

  /** Copies `length` bytes at `address` into dst[dstOffset...]: the DMA path, no allocation when one frame. */
  readInto(address: number, dst: Uint8Array, dstOffset: number, length: number): void {
    if (!this.isRam(address, length) || dstOffset < 0 || dstOffset + length > dst.length) {
      this.#reject(address, length);
    }
    const pfn = Math.floor(address / PAGE_SIZE);
    const offset = address - pfn * PAGE_SIZE;
    if (offset + length <= PAGE_SIZE) {
      const slot = this.#slot(pfn);
      if (slot < 0) dst.fill(0, dstOffset, dstOffset + length);
      else if (length === PAGE_SIZE) dst.set(this.#frameView(slot), dstOffset);
      else {
        const base = (slot % SLAB_FRAMES) * PAGE_SIZE + offset;
        dst.set(this.#slabs[Math.floor(slot / SLAB_FRAMES)]!.subarray(base, base + length), dstOffset);
      }
      return;
    }
    let done = 0;
    while (done < length) {
      const run = this.#run(address + done, length - done, false);
      const at = dstOffset + done;
      if (run.slab === undefined) dst.fill(0, at, at + run.length);
      else dst.set(run.slab.subarray(run.offset, run.offset + run.length), at);
      done += run.length;
    }
  }

  /** Copies src[srcOffset, srcOffset + length) to `address`, materialising untouched frames in order. */
  writeFrom(address: number, src: Uint8Array, srcOffset: number, length: number): void {
    if (!this.isRam(address, length) || srcOffset < 0 || srcOffset + length > src.length) {
      this.#reject(address, length);
    }
    const whole = srcOffset === 0 && length === src.length;
    const pfn = Math.floor(address / PAGE_SIZE);
    const offset = address - pfn * PAGE_SIZE;
    const slot = offset + length <= PAGE_SIZE ? this.#slot(pfn) : -1;
    if (slot >= 0) {
      // One touched frame: the common DMA page, written without walking runs.
      const base = (slot % SLAB_FRAMES) * PAGE_SIZE + offset;
      this.#slabs[Math.floor(slot / SLAB_FRAMES)]!.set(
        whole ? src : src.subarray(srcOffset, srcOffset + length),
        base,
      );
      return;
    }
    let done = 0;
    while (done < length) {
      const run = this.#run(address + done, length - done, true);
      const from = srcOffset + done;
      run.slab!.set(whole && run.length === length ? src : src.subarray(from, from + run.length), run.offset);
      done += run.length;
    }
  }

  /** Fills [address, address + length) with one byte value. */
  fill(address: number, length: number, value: number): void {
    if (!this.isRam(address, length)) this.#reject(address, length);
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
    if (!this.isRam(srcAddress, length)) this.#reject(srcAddress, length);
    if (!this.isRam(dstAddress, length)) this.#reject(dstAddress, length);
    let done = 0;
    while (done < length) {
      const src = this.#run(srcAddress + done, length - done, false);
      const srcSlab = src.slab;
      const srcOffset = src.offset;
      const dst = this.#run(dstAddress + done, src.length, true);
      const n = dst.length;
      if (srcSlab === undefined) dst.slab!.fill(0, dst.offset, dst.offset + n);
      else dst.slab!.set(srcSlab.subarray(srcOffset, srcOffset + n), dst.offset);
      done += n;
    }
  }

  /**
   * The live 4 KiB view of one frame, materialised if needed. For hardware models that keep
   * structures in RAM (IOMMU tables, fault records); never hand it to a device model.
   */
  frame(pfn: number): Uint8Array {
    if (!this.isRam(pfn * PAGE_SIZE, PAGE_SIZE)) this.#reject(pfn * PAGE_SIZE, PAGE_SIZE);
    let slot = this.#slot(pfn);
    if (slot < 0) slot = this.#materialise(pfn);
    const slab = this.#slabs[Math.floor(slot / SLAB_FRAMES)]!;
    const offset = (slot % SLAB_FRAMES) * PAGE_SIZE;
    return slab.subarray(offset, offset + PAGE_SIZE);
  }

  /** Calls `visit` with every frame that holds host memory, in ascending PFN order. */
  forEachTouchedFrame(visit: (pfn: number) => void): void {
    const directory = this.#directory;
    for (let g = 0; g < directory.length; g++) {
      const leaves = directory[g];
      if (leaves === undefined) continue;
      for (let l = 0; l < leaves.length; l++) {
        const leaf = leaves[l];
        if (leaf === undefined) continue;
        const base = g * GIB_FRAMES + l * LEAF_FRAMES;
        for (let i = 0; i < LEAF_FRAMES; i++) {
          if (leaf[i] !== 0) visit(base + i);
        }
      }
    }
  }

  /** True when the frame holds host memory (has been written). */
  isTouched(pfn: number): boolean {
    return this.#slot(pfn) >= 0;
  }

  /** Throws the PlatformError that explains why [address, +length) cannot be accessed. */
  #reject(address: number, length: number): never {
    checkAddress(address, "physical address");
    checkLength(length, "length");
    throw new PlatformError(
      "out-of-range",
      `physical range ${formatAddress(address)}+${formatAddress(length)} is not RAM (or overruns its buffer)`,
    );
  }

  #frameView(slot: number): Uint8Array {
    let view = this.#frameViews[slot];
    if (view === undefined) {
      const offset = (slot % SLAB_FRAMES) * PAGE_SIZE;
      view = this.#slabs[Math.floor(slot / SLAB_FRAMES)]!.subarray(offset, offset + PAGE_SIZE);
      this.#frameViews[slot] = view;
    }
    return view;
  }

  #slot(pfn: number): number {
    const gib = Math.floor(pfn / GIB_FRAMES);
    const leaves = this.#directory[gib];
    if (leaves === undefined) return -1;
    const rest = pfn - gib * GIB_FRAMES;
    const leaf = leaves[rest >>> 9];
    return leaf === undefined ? -1 : leaf[rest & (LEAF_FRAMES - 1)]! - 1;
  }

  #materialise(pfn: number): number {
    const gib = Math.floor(pfn / GIB_FRAMES);
    let leaves = this.#directory[gib];
    if (leaves === undefined) {
      leaves = new Array(GIB_FRAMES / LEAF_FRAMES).fill(undefined);
      this.#directory[gib] = leaves;
    }
    const rest = pfn - gib * GIB_FRAMES;
    let leaf = leaves[rest >>> 9];
    if (leaf === undefined) {
      leaf = new Int32Array(LEAF_FRAMES);
      leaves[rest >>> 9] = leaf;
    }
    const slot = this.#nextSlot++;
    if (slot % SLAB_FRAMES === 0) this.#slabs.push(new Uint8Array(SLAB_BYTES));
    this.#frameViews.push(undefined);
    leaf[rest & (LEAF_FRAMES - 1)] = slot + 1;
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
