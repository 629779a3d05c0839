/**
 * The policy of the copy service: when an engine is worth it, how deep a channel's queue may be
 * before it counts as busy, and what a CPU copy costs in virtual time (the simulated processor
 * has no clock of its own, so the service charges it).
 */
import { checkLength } from "../platform/page.js";
import { PlatformError } from "../platform/platform-error.js";

export interface DmaCopyOptions {
  /**
   * Copies shorter than this go to the CPU even when a channel is free: mapping two buffers and
   * an interrupt cost more than the copy (NET_DMA's copybreak). Default 4096 bytes.
   */
  readonly engineThresholdBytes?: number;
  /** A channel with this many copies in flight counts as busy (default 1: only idle channels). */
  readonly channelQueueDepth?: number;
  /** CPU memcpy rate in bytes per second (default 3 GB/s: cold buffers, one core). */
  readonly cpuBytesPerSecond?: number;
  /** Fixed CPU cost of one copy, ns (default 200). */
  readonly cpuSetupNs?: number;
  /** Retry on the CPU when an engine copy fails (default true). */
  readonly cpuRetryOnEngineError?: boolean;
}

export type ResolvedDmaCopyOptions = Required<DmaCopyOptions>;

export const DEFAULT_DMA_COPY_OPTIONS: ResolvedDmaCopyOptions = {
  engineThresholdBytes: 4096,
  channelQueueDepth: 1,
  cpuBytesPerSecond: 3_000_000_000,
  cpuSetupNs: 200,
  cpuRetryOnEngineError: true,
};

/** Fills in the defaults; a bad value is a PlatformError naming it. */
export function resolveDmaCopyOptions(options: DmaCopyOptions = {}): ResolvedDmaCopyOptions {
  const resolved = { ...DEFAULT_DMA_COPY_OPTIONS, ...options };
  checkLength(resolved.engineThresholdBytes, "engine threshold (bytes)");
  checkLength(resolved.cpuSetupNs, "CPU copy setup (ns)");
  if (!Number.isInteger(resolved.channelQueueDepth) || resolved.channelQueueDepth < 1) {
    throw new PlatformError(
      "out-of-range",
      `channel queue depth ${String(resolved.channelQueueDepth)} must be an integer >= 1`,
    );
  }
  if (!Number.isFinite(resolved.cpuBytesPerSecond) || resolved.cpuBytesPerSecond <= 0) {
    throw new PlatformError(
      "out-of-range",
      `CPU copy rate ${String(resolved.cpuBytesPerSecond)} must be positive`,
    );
  }
  if (typeof resolved.cpuRetryOnEngineError !== "boolean") {
    throw new PlatformError("out-of-range", "cpuRetryOnEngineError must be a boolean");
  }
  return resolved;
}
