/**
 * The driver buffers a device may be using right now, indexed by physical page: every piece
 * MapTransfer mapped and every scatter/gather list handed out, until its flush or put. Two
 * questions are asked of it (iommu-anchors.md section 3, dma-debug's overlap and sync checks):
 *
 * - does a new mapping overlap a live one while one of the two lets the device write
 *   ("mapping an already-mapped range", 0xE6/0x1D)?
 * - does a CPU load touch a buffer the device may still be writing (stale data, the CPU reading
 *   before PutScatterGatherList or FlushAdapterBuffers)?
 *
 * Ranges are byte exact within their pages, so a 100-byte buffer shares its page with others
 * without false alarms. The pages are copied from the MDL when the range goes in: an MDL
 * unlocked while still mapped does not lose its entry.
 */
import type { Mdl } from "../platform/mdl.js";
import { PAGE_SIZE } from "../platform/page.js";

/** One MDL's part of a live transfer. */
export interface InFlightRange {
  readonly mdl: Mdl;
  /** Byte offset of the range in its MDL. */
  readonly offset: number;
  readonly length: number;
  /** True: the device only reads it. False: the device writes it. */
  readonly writeToDevice: boolean;
  /** The adapter (AdapterObject.id) that mapped it. */
  readonly adapter: number;
}

interface Slot {
  readonly range: InFlightRange;
  /** Byte range within the page. */
  readonly from: number;
  readonly to: number;
}

export class InFlightIndex {
  readonly #pages = new Map<number, Slot[]>();
  readonly #frames = new Map<InFlightRange, readonly number[]>();
  #deviceWritable = 0;

  /** Ranges the device may write: when zero, CPU loads need no look-up at all. */
  get deviceWritable(): number {
    return this.#deviceWritable;
  }

  get size(): number {
    return this.#frames.size;
  }

  /** The first live range that `range` overlaps where one of the two is device-writable. */
  conflict(range: Omit<InFlightRange, "adapter">): InFlightRange | undefined {
    let found: InFlightRange | undefined;
    walk(range.mdl.pfns, range.mdl.byteOffset + range.offset, range.length, (pfn, from, to) => {
      for (const slot of this.#pages.get(pfn) ?? []) {
        if (slot.from < to && from < slot.to && !(slot.range.writeToDevice && range.writeToDevice)) {
          found = slot.range;
          return false;
        }
      }
      return true;
    });
    return found;
  }

  add(range: InFlightRange): void {
    const frames: number[] = [];
    walk(range.mdl.pfns, range.mdl.byteOffset + range.offset, range.length, (pfn, from, to) => {
      frames.push(pfn);
      let slots = this.#pages.get(pfn);
      if (slots === undefined) {
        slots = [];
        this.#pages.set(pfn, slots);
      }
      slots.push({ range, from, to });
      return true;
    });
    this.#frames.set(range, frames);
    if (!range.writeToDevice) this.#deviceWritable++;
  }

  remove(range: InFlightRange): void {
    const frames = this.#frames.get(range);
    if (frames === undefined) return;
    for (const pfn of frames) {
      const slots = this.#pages.get(pfn)!;
      const kept = slots.filter((slot) => slot.range !== range);
      if (kept.length === 0) this.#pages.delete(pfn);
      else this.#pages.set(pfn, kept);
    }
    this.#frames.delete(range);
    if (!range.writeToDevice) this.#deviceWritable--;
  }

  /** The device-writable range a CPU load of [pa, pa + length) touches, if any. */
  deviceWritableAt(pa: number, length: number): InFlightRange | undefined {
    if (this.#deviceWritable === 0 || length === 0) return undefined;
    const end = pa + length;
    for (let page = Math.floor(pa / PAGE_SIZE); page * PAGE_SIZE < end; page++) {
      const slots = this.#pages.get(page);
      if (slots === undefined) continue;
      const from = Math.max(pa, page * PAGE_SIZE) - page * PAGE_SIZE;
      const to = Math.min(end, (page + 1) * PAGE_SIZE) - page * PAGE_SIZE;
      for (const slot of slots) {
        if (!slot.range.writeToDevice && slot.from < to && from < slot.to) return slot.range;
      }
    }
    return undefined;
  }
}

/** Visits the pages of [position, position + length) of a PFN array with the byte range in each. */
function walk(
  pfns: readonly number[],
  position: number,
  length: number,
  visit: (pfn: number, from: number, to: number) => boolean,
): void {
  const end = position + length;
  while (position < end) {
    const page = Math.floor(position / PAGE_SIZE);
    const from = position - page * PAGE_SIZE;
    const to = Math.min(end - page * PAGE_SIZE, PAGE_SIZE);
    const pfn = pfns[page];
    if (pfn !== undefined && !visit(pfn, from, to)) return;
    position = page * PAGE_SIZE + to;
  }
}
