import type { RemappingMode } from "../machine/machine-options.js";

/** What the HAL needs from the machine's options, already resolved. */
export interface HalOptions {
  readonly remapping: RemappingMode;
  /** Bounce pages per reach class (below 16 MiB, below 4 GiB) when not remapping. */
  readonly mapRegisterPoolPages: number;
  /** Lazy policy: unmaps are invalidated when this many are queued ... */
  readonly flushQueueEntries: number;
  /** ... or when this much virtual time has passed since the first one (ns). */
  readonly flushQueueTimeoutNs: number;
}
