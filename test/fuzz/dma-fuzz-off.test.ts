import { describe, expect, it } from "vitest";
import { fuzz, runsFor, timeLimit } from "./fuzz-run.js";

describe("DMA fuzzing, remapping off", () => {
  it(
    "random DDI sequences, valid and invalid, keep every invariant (verifier off, log, bug check)",
    () => {
      const tally = fuzz("off", 6221057);
      expect(tally.sequences).toBeGreaterThanOrEqual(runsFor("off"));
      expect(tally.bugChecks).toBeGreaterThan(0);
    },
    timeLimit("off"),
  );
});
