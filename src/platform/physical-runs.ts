/**
 * Merges the pieces of a virtual range into maximal physically contiguous runs: the one walk the
 * CPU-side address spaces (kernel VA, process VA) share. Each caller only says where byte `done`
 * of its range lives and how far its page (or large page) reaches from there.
 */
export interface PiecePlacement {
  physicalAddress: number;
  /** Bytes from `physicalAddress` to the end of the page or large page holding it. */
  length: number;
}

export type RunVisitor = (physicalAddress: number, done: number, length: number) => void;

export function forEachPhysicalRun(
  length: number,
  place: (done: number, piece: PiecePlacement) => void,
  visit: RunVisitor,
): void {
  const piece: PiecePlacement = { physicalAddress: 0, length: 0 };
  let done = 0;
  let runPa = 0;
  let runStart = 0;
  let runLength = 0;
  while (done < length) {
    place(done, piece);
    const pa = piece.physicalAddress;
    const chunk = Math.min(piece.length, length - done);
    if (runLength > 0 && runPa + runLength === pa) {
      runLength += chunk;
    } else {
      if (runLength > 0) visit(runPa, runStart, runLength);
      runPa = pa;
      runStart = done;
      runLength = chunk;
    }
    done += chunk;
  }
  if (runLength > 0) visit(runPa, runStart, runLength);
}
