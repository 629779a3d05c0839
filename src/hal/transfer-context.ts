/**
 * What the HAL keeps in a DMA_TRANSFER_CONTEXT (V3): the cancel handle of one pending allocation
 * (reference section 1). A context is "initialized" by InitializeDmaTransferContext, "pending"
 * while its allocation waits, "granted" once the allocation's routine ran (or was refused).
 * CancelAdapterChannel on a pending context removes the request; on an initialized one it
 * pre-cancels the next allocation made with it; on a granted one it is too late.
 */
import type { WaitBlock } from "./wait-block.js";
import type { DEVICE_OBJECT } from "./wdm/device-object.js";
import type { DMA_TRANSFER_CONTEXT } from "./wdm/dma-v3-types.js";

export class TransferContextState {
  phase: "initialized" | "pending" | "granted" = "initialized";
  preCancelled = false;
  request: WaitBlock | undefined = undefined;
  deviceObject: DEVICE_OBJECT | undefined = undefined;
}

/** The HAL's state in `context`, or undefined when it was never initialized. */
export function transferContextState(
  context: DMA_TRANSFER_CONTEXT | undefined,
): TransferContextState | undefined {
  if (typeof context !== "object" || context === null) return undefined;
  const state = (context as { Reserved?: unknown }).Reserved;
  return state instanceof TransferContextState ? state : undefined;
}
