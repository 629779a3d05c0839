/**
 * Measurement helpers for the benchmarks: wall-clock throughput with warm-up, and the median of
 * several runs. Benchmarks only; tests never assert on time.
 */
import { performance } from "node:perf_hooks";

/** Operations per second of `body`, which performs `opsPerCall` operations per call. */
export function throughput(body: () => void, opsPerCall: number, minMs = 150): number {
  for (let i = 0; i < 3; i++) body();
  let calls = 0;
  const start = performance.now();
  let elapsed = 0;
  do {
    body();
    calls++;
    elapsed = performance.now() - start;
  } while (elapsed < minMs);
  return (calls * opsPerCall * 1000) / elapsed;
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Median of `runs` evaluations of `measure`. */
export function medianOf(runs: number, measure: () => number): number {
  const values: number[] = [];
  for (let i = 0; i < runs; i++) values.push(measure());
  return median(values);
}

/** Rounds for the JSON line: 3 significant digits. */
export function round(value: number): number {
  return Number(value.toPrecision(3));
}
