/**
 * The offload layer's events on the machine bus (declaration merging into MachineEvents).
 * Emitted only when someone listens.
 */
import type { CopyMethod, CopyReason } from "./dma-copy-result.js";

/** One copy the service completed, by whichever method. */
export interface OffloadCopyEvent {
  readonly method: CopyMethod;
  readonly reason: CopyReason;
  /** The engine channel's name, "" for the CPU. */
  readonly channel: string;
  readonly bytes: number;
  readonly status: number;
  readonly submittedNs: number;
  readonly completedNs: number;
}

declare module "../trace/machine-events.js" {
  interface MachineEvents {
    "offload.copy": [OffloadCopyEvent];
  }
}
