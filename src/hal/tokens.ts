/** Injection tokens of the HAL: its options and the DMA_OPERATIONS seam the verifier decorates. */
export const HalOptions = Symbol.for("hal.HalOptions");
export const DmaOperations = Symbol.for("hal.DmaOperations");
