/**
 * How many sequences the fuzzer runs, and the property it checks for one remapping mode. CI runs
 * 2,000 sequences over the four modes (one test file per mode, so they spread over the cores);
 * DMA_FUZZ_RUNS=<n> runs n instead. The seeds are fixed, so a failure comes back on the next run;
 * DMA_FUZZ_SEED=<n> shifts them to explore other sequences.
 */
import fc from "fast-check";
import type { RemappingMode } from "../../src/machine/machine-options.js";
import { DmaFuzzHarness, emptyTally, type FuzzTally, type FuzzVerifier } from "./dma-fuzz-harness.js";
import { sequenceArbitrary } from "./fuzz-commands.js";

const MODES: readonly RemappingMode[] = ["off", "passthrough", "strict", "lazy"];
const DEFAULT_TOTAL = 2000;

export function totalRuns(): number {
  const asked = Number(process.env.DMA_FUZZ_RUNS ?? DEFAULT_TOTAL);
  return Number.isSafeInteger(asked) && asked > 0 ? asked : DEFAULT_TOTAL;
}

export function runsFor(_mode: RemappingMode): number {
  return Math.ceil(totalRuns() / MODES.length);
}

/** A generous time limit for one mode's run: 100 ms per sequence (they take about 15 ms), at least a minute. */
export function timeLimit(mode: RemappingMode): number {
  return Math.max(60_000, runsFor(mode) * 100);
}

const verifierArbitrary = fc.constantFrom<FuzzVerifier>("off", "log", "bugcheck");

/** Runs the fuzzer for `mode`; throws (with the shrunk sequence) when an invariant breaks. */
export function fuzz(mode: RemappingMode, seed: number): FuzzTally {
  const tally = emptyTally();
  const shift = Number(process.env.DMA_FUZZ_SEED ?? 0);
  fc.assert(
    fc.property(verifierArbitrary, sequenceArbitrary, (verifier, commands) => {
      new DmaFuzzHarness(mode, verifier, tally).run(commands);
    }),
    { seed: seed + (Number.isSafeInteger(shift) ? shift : 0), numRuns: runsFor(mode) },
  );
  return tally;
}
