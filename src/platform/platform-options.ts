import type { RamRange } from "./physical-memory.js";

/** What the platform layer needs from the machine's options, already resolved. */
export interface PlatformOptions {
  readonly ramRanges: readonly RamRange[];
  /** true: x86-style snooping DMA. false: CPU writes sit in a write-back cache until flushed. */
  readonly coherent: boolean;
  readonly seed: number;
}
