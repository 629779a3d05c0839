/** What the copy service reports about one copy. */
import type { NTSTATUS } from "../ddi/index.js";

export type CopyMethod = "engine" | "cpu";

/**
 * Why the method was chosen: "engine" when a channel did the copy; otherwise why the CPU did it.
 * - no-engine: no DMA engine channel is running on this machine;
 * - below-threshold: shorter than the engine threshold;
 * - channels-busy: every channel had its queue depth of copies in flight;
 * - engine-refused: the channel did not accept the copy (mapping failed);
 * - engine-failed: the engine copy failed (a DMA error) and the CPU did it again.
 */
export type CopyReason =
  | "engine"
  | "no-engine"
  | "below-threshold"
  | "channels-busy"
  | "engine-refused"
  | "engine-failed";

export const FALLBACK_REASONS: readonly Exclude<CopyReason, "engine">[] = [
  "no-engine",
  "below-threshold",
  "channels-busy",
  "engine-refused",
  "engine-failed",
];

export interface DmaCopyResult {
  /** STATUS_SUCCESS, or why the copy failed (an engine error with CPU retry off). */
  readonly status: NTSTATUS;
  readonly method: CopyMethod;
  readonly reason: CopyReason;
  /** The channel that did it ("\\Device\\DmaEngine0 ch1"), undefined for the CPU. */
  readonly channel: string | undefined;
  readonly bytes: number;
  /** Virtual time of the call and of the completion, ns. */
  readonly submittedNs: number;
  readonly completedNs: number;
}

/** Running totals of a service. */
export interface DmaCopyStatistics {
  copies: number;
  engineCopies: number;
  cpuCopies: number;
  engineBytes: number;
  cpuBytes: number;
  /** Copies that completed with a failure status. */
  failures: number;
  /** CPU copies by reason. */
  readonly fallbacks: Record<Exclude<CopyReason, "engine">, number>;
  /** Virtual time the simulated processor spent copying, ns. */
  cpuBusyNs: number;
}
