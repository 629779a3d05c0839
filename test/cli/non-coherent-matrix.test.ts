/**
 * The sample NIC on a non-coherent machine (ARM without _CCA): its rings and receive buffers are
 * common buffers it asks uncached, and such memory bypasses the CPU cache, so the correct driver
 * works without KeFlushIoBuffers on its rings, in every remapping mode.
 */
import { describe, expect, it } from "vitest";
import { nicScenario } from "../../samples/nic-scenario.js";
import { runScenario } from "../../samples/scenario-run.js";
import type { RemappingMode } from "../../src/machine/machine-options.js";

const MODES: readonly RemappingMode[] = ["off", "passthrough", "strict", "lazy"];

describe("the nic scenario on a non-coherent machine", () => {
  for (const mode of MODES) {
    it(`moves every frame intact in ${mode}`, () => {
      const result = runScenario(nicScenario, mode, { coherent: false });
      expect(result.outcome, `${result.explanation} ${result.error ?? ""}`).toBe("ok");
      expect(result.dataIntact).toBe(true);
      expect(result.faults).toBe(0);
      expect(result.bytes).toBeGreaterThan(0);
    });
  }
});
