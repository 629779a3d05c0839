/**
 * Walking a range of an MDL chain (Irp->MdlAddress and its Next links) the way the scatter/gather
 * routines see it: offset 0 is the first MDL's virtual address, and the range continues into the
 * following MDLs. Each MDL's part is visited with its CurrentVa, so per-MDL routines (MapTransfer,
 * FlushAdapterBuffers) can be applied to it.
 */
import type { Mdl } from "../platform/mdl.js";
import { spanPages } from "../platform/page.js";

/** One MDL's part of a chain range. */
export interface MdlSegment {
  readonly mdl: Mdl;
  /** CurrentVa of the part: an address inside `mdl`. */
  readonly currentVa: number;
  readonly length: number;
}

/** Bytes described by the chain starting at `mdl`. */
export function chainLength(mdl: Mdl): number {
  let total = 0;
  for (let m: Mdl | undefined = mdl; m !== undefined; m = m.next) total += m.byteCount;
  return total;
}

/** The parts of [offset, offset + length) of the chain, in order; the range must lie within it. */
export function chainSegments(mdl: Mdl, offset: number, length: number): MdlSegment[] {
  const segments: MdlSegment[] = [];
  let skip = offset;
  let left = length;
  for (let m: Mdl | undefined = mdl; m !== undefined && left > 0; m = m.next) {
    if (skip >= m.byteCount) {
      skip -= m.byteCount;
      continue;
    }
    const take = Math.min(left, m.byteCount - skip);
    segments.push({ mdl: m, currentVa: m.virtualAddress + skip, length: take });
    left -= take;
    skip = 0;
  }
  return segments;
}

/** Map registers a chain range needs: ADDRESS_AND_SIZE_TO_SPAN_PAGES summed over its MDLs. */
export function chainMapRegisters(segments: readonly MdlSegment[]): number {
  let registers = 0;
  for (const segment of segments) registers += spanPages(segment.currentVa, segment.length);
  return registers;
}
