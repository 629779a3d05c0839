/**
 * One test body under every remapping mode: a well-behaved driver must work unchanged with the
 * IOMMU off, in passthrough, strict and lazy (DESIGN.md "What the product is").
 *
 *   forEachMode((mode) => {
 *     it("reads a sector", () => { const t = testMachine({ remapping: mode }); ... });
 *   });
 */
import { describe } from "vitest";
import { REMAPPING_MODES, type RemappingMode } from "../machine/machine-options.js";

/** A `describe("remapping <mode>")` block per mode, in the order off, passthrough, strict, lazy. */
export function forEachMode(
  body: (mode: RemappingMode) => void,
  modes: readonly RemappingMode[] = REMAPPING_MODES,
): void {
  for (const mode of modes) describe(`remapping ${mode}`, () => body(mode));
}
