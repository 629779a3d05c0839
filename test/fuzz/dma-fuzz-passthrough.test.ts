import { describe, expect, it } from "vitest";
import { fuzz, runsFor, timeLimit } from "./fuzz-run.js";

describe("DMA fuzzing, remapping passthrough", () => {
  it(
    "random DDI sequences, valid and invalid, keep every invariant (verifier off, log, bug check)",
    () => {
      const tally = fuzz("passthrough", 6221058);
      expect(tally.sequences).toBeGreaterThanOrEqual(runsFor("passthrough"));
      expect(tally.bugChecks).toBeGreaterThan(0);
    },
    timeLimit("passthrough"),
  );
});
