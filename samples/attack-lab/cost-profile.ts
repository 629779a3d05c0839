/**
 * CPU cycles a mitigation's counted events stand for, from the anchors of
 * perf-security-anchors §13 (calibration values, not measurements of this simulator, whose
 * virtual time charges nothing to map, unmap or invalidate):
 * - a strict map+unmap of one page is ~6.9k cycles on bare metal, ~2.3k of it software and
 *   ~4.6k the hardware interaction (the synchronous invalidation) [vIOMMU ATC'11, slide 16];
 * - a packet-sized memcpy costs a few hundred cycles per 1500 B, ~0.2 cycle per byte [derived].
 * IOTLB misses are counted but not priced: no per-miss latency was found (§11).
 */
import type { Measured } from "./lab.js";

export const COST_PROFILE = {
  mappingCycles: 2_300,
  invalidationCycles: 4_600,
  bounceCyclesPerByte: 0.2,
} as const;

export function estimatedCycles(measured: Measured): number {
  return Math.round(
    measured.mappings * COST_PROFILE.mappingCycles +
      measured.invalidations * COST_PROFILE.invalidationCycles +
      measured.bounceBytes * COST_PROFILE.bounceCyclesPerByte,
  );
}
