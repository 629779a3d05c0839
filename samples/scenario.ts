/**
 * The demonstration's vocabulary: which scenario, in which remapping mode, and what it observed.
 * A result's outcome is never written by a scenario: ScenarioRun computes it from what the run
 * observed (samples/outcome.ts).
 */
import type { RemappingMode } from "../src/machine/machine-options.js";

/** nic, disk, legacy: well-behaved drivers. bypass64/32: MmGetPhysicalAddress. rogue: an attacker. */
export type ScenarioDriver = "nic" | "disk" | "legacy" | "bypass64" | "bypass32" | "rogue";
export const SCENARIO_DRIVERS: readonly ScenarioDriver[] = [
  "nic",
  "disk",
  "legacy",
  "bypass64",
  "bypass32",
  "rogue",
];

/**
 * ok: every byte checked is intact. blocked: the IOMMU faulted and no memory outside the driver's
 * own buffers changed. corrupted: memory the driver did not own changed. leaked: the rogue device
 * read the secret. error: none of these (a failed request without a fault, a crash).
 */
export type Outcome = "ok" | "blocked" | "corrupted" | "leaked" | "error";

/** A frame that changed although no driver, HAL or IOMMU structure owned it. */
export interface ChangedFrame {
  readonly address: number;
  /** Owner tag of the frame ("kernel-structures"), "free" for an unallocated frame. */
  readonly owner: string;
}

export interface ScenarioResult {
  readonly driver: ScenarioDriver;
  readonly mode: RemappingMode;
  readonly outcome: Outcome;
  /** Every byte the scenario checked (data read back, frames received, kernel memory) was as expected. */
  readonly dataIntact: boolean;
  /** IOMMU faults the scenario's device caused. */
  readonly faults: number;
  /** Bounce copies the HAL made for the device (map registers below its reach). */
  readonly bounces: number;
  /** Bytes the device moved through its DMA port (data, descriptors, queue entries). */
  readonly bytes: number;
  /** IOTLB misses of the whole machine during the run. */
  readonly iotlbMisses: number;
  /** DMA accesses the device made through its port, failed ones included. */
  readonly transfers: number;
  readonly interrupts: number;
  readonly leaked: boolean;
  readonly changedFrames: readonly ChangedFrame[];
  /** Virtual time the run took, ns. */
  readonly virtualTimeNs: number;
  /** One line, computed from what happened. */
  readonly explanation: string;
  /** The message of an unexpected failure (a bug check, a request that never completed). */
  readonly error?: string;
}
