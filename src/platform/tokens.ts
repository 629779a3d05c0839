/** Injection tokens of the platform layer: the seams. Concrete classes are their own tokens. */
export const PlatformOptions = Symbol.for("platform.PlatformOptions");
export const DmaRemapper = Symbol.for("platform.DmaRemapper");
