/**
 * Enumerates the frames of PhysicalMemory that hold host memory (have ever been written).
 *
 * PhysicalMemory exposes only `isTouched(pfn)` and the number of touched frames, so this walks
 * the RAM ranges frame by frame, stopping once every touched frame has been seen. That costs
 * time up to the highest touched frame (about a second per TiB), but no memory. It is the one
 * place to change when PhysicalMemory offers a walk over its directory.
 */
import { PAGE_SIZE } from "./page.js";
import type { PhysicalMemory } from "./physical-memory.js";

/** Calls `visit` with each touched frame's PFN, in ascending order. */
export function forEachTouchedFrame(memory: PhysicalMemory, visit: (pfn: number) => void): void {
  let remaining = memory.touchedFrames;
  for (const range of memory.ranges) {
    const end = range.end / PAGE_SIZE;
    for (let pfn = range.start / PAGE_SIZE; pfn < end && remaining > 0; pfn++) {
      if (memory.isTouched(pfn)) {
        remaining--;
        visit(pfn);
      }
    }
  }
}
