import { describe, expect, it } from "vitest";
import { fuzz, runsFor, timeLimit } from "./fuzz-run.js";

describe("DMA fuzzing, remapping strict", () => {
  it(
    "random DDI sequences, valid and invalid, keep every invariant (verifier off, log, bug check)",
    () => {
      const tally = fuzz("strict", 6221059);
      expect(tally.sequences).toBeGreaterThanOrEqual(runsFor("strict"));
      expect(tally.bugChecks).toBeGreaterThan(0);
    },
    timeLimit("strict"),
  );
});
