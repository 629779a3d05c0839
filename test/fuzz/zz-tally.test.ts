import { it } from "vitest";
import { fuzz } from "./fuzz-run.js";
it("tally", () => {
  for (const m of ["off", "passthrough", "strict", "lazy"] as const) console.log(m, JSON.stringify(fuzz(m, 1)));
}, 120000);
