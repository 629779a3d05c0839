/**
 * How a run's outcome follows from what it observed, in order of gravity: a secret that left the
 * machine outranks memory that changed, which outranks a fault; only a clean, intact run is "ok".
 */
import type { Outcome } from "./scenario.js";

export interface Observed {
  /** The rogue device's reads brought the secret back. */
  readonly leaked: boolean;
  /** Frames outside the driver's, the HAL's and the IOMMU's own memory that changed. */
  readonly changedFrames: number;
  readonly faults: number;
  readonly dataIntact: boolean;
  /** The run ended in an exception (a bug check) or a request that never completed. */
  readonly failed: boolean;
}

export function computeOutcome(observed: Observed): Outcome {
  if (observed.leaked) return "leaked";
  if (observed.changedFrames > 0) return "corrupted";
  if (observed.failed) return "error";
  if (observed.faults > 0) return "blocked";
  return observed.dataIntact ? "ok" : "error";
}
