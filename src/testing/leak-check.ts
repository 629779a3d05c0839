/**
 * What a test machine must be back to at teardown, and the error that lists what is not: the
 * HAL's books (adapters, map registers, IOVA pages, bounce pages, common buffers, lists, queued
 * requests, channels; Hal.resources()), frames per owner against the count when the machine was
 * built, the kernel allocations drivers made (see kernel-allocation-tracker.ts), interrupts still
 * connected, and scheduler work (DPCs, timers) or an IRQL left behind. Driver Verifier checks the
 * same set when a driver unloads (reference section 6, "leaks at unload").
 */
import type { HalResources } from "../hal/hal.js";
import type { FrameAllocator } from "../platform/frame-allocator.js";
import { PlatformError } from "../platform/platform-error.js";

export interface LeakCheckOptions {
  /**
   * Frame owners whose count may differ at teardown. Default DEFAULT_IGNORED_OWNERS: structures
   * the machine keeps once made (IOMMU root and context tables, the bounce pool), and the shared
   * small-pool pages (pool allocations are checked one by one instead).
   */
  readonly ignoreOwners?: readonly string[];
  /** Remove every device from its driver and unload the drivers before checking (default true). */
  readonly unloadDrivers?: boolean;
}

export const DEFAULT_IGNORED_OWNERS: readonly string[] = ["iommu", "hal.bounce", "nonpaged-pool"];

/** One line of a leak report. */
export interface Leak {
  /** "adapters", "map registers", "frames", "pool", "interrupts", "scheduler", "teardown" ... */
  readonly kind: string;
  readonly count: number;
  readonly message: string;
}

export class LeakError extends Error {
  constructor(
    readonly leaks: readonly Leak[],
    context: string,
  ) {
    super(
      `${context} did not give everything back:\n${leaks.map((leak) => `  - ${leak.message}`).join("\n")}`,
    );
    this.name = "LeakError";
  }
}

const HAL_LABELS: Readonly<Record<keyof HalResources, string>> = {
  adaptersOpen: "DMA adapter(s) not released with PutDmaAdapter",
  mapRegistersGranted: "map register(s) still granted",
  bouncePages: "bounce page(s) in use",
  iovaPages: "IOVA page(s) still allocated",
  commonBuffers: "common buffer(s) not freed",
  commonBufferVectors: "common buffer vector(s) not freed",
  scatterGatherLists: "scatter/gather list(s) not put back with PutScatterGatherList",
  queuedRequests: "adapter channel or map register request(s) still queued",
  channelsHeld: "adapter channel(s) still held",
};

export function halLeaks(resources: HalResources): Leak[] {
  return (Object.keys(HAL_LABELS) as (keyof HalResources)[])
    .filter((key) => resources[key] !== 0)
    .map((key) => ({ kind: key, count: resources[key], message: `${resources[key]} ${HAL_LABELS[key]}` }));
}

/** Frames held by each registered owner, by name. */
export function ownerCounts(frames: FrameAllocator): Map<string, number> {
  const counts = new Map<string, number>();
  for (let id = 1; ; id++) {
    let name: string;
    try {
      name = frames.ownerName(id);
    } catch (error) {
      if (error instanceof PlatformError && error.code === "bad-handle") return counts;
      throw error;
    }
    counts.set(name, frames.framesOwnedBy(id));
  }
}

/** Owners holding more frames than at `baseline` (owners unknown then count from 0). */
export function frameLeaks(
  current: ReadonlyMap<string, number>,
  baseline: ReadonlyMap<string, number>,
  ignore: (owner: string) => boolean,
): Leak[] {
  const leaks: Leak[] = [];
  for (const [owner, count] of current) {
    const before = baseline.get(owner) ?? 0;
    if (count > before && !ignore(owner)) {
      leaks.push({
        kind: "frames",
        count: count - before,
        message: `${count - before} frame(s) of "${owner}" not freed (${count} now, ${before} when the machine was built)`,
      });
    }
  }
  return leaks;
}
