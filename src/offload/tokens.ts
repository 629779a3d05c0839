/** Injection tokens of the offload layer. */
export const DmaCopyOptions = Symbol.for("offload.DmaCopyOptions");
