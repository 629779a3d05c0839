import { describe, expect, it } from "vitest";
import { fuzz, runsFor, timeLimit } from "./fuzz-run.js";

describe("DMA fuzzing, remapping lazy", () => {
  it(
    "random DDI sequences, valid and invalid, keep every invariant (verifier off, log, bug check)",
    () => {
      const tally = fuzz("lazy", 6221060);
      expect(tally.sequences).toBeGreaterThanOrEqual(runsFor("lazy"));
      expect(tally.bugChecks).toBeGreaterThan(0);
    },
    timeLimit("lazy"),
  );
});
