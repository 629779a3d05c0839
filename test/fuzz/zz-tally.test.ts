import { it } from "vitest";
import { fuzz } from "./fuzz-run.js";
it("tally", () => {
  const seeds = { off: 0x5eed01, passthrough: 0x5eed02, strict: 0x5eed03, lazy: 0x5eed04 } as const;
  for (const m of ["off", "passthrough", "strict", "lazy"] as const) console.log("TALLY", m, JSON.stringify(fuzz(m, seeds[m])));
}, 600000);
