/**
 * The demonstration matrix, run in-process: the outcome of every driver in every mode is the one
 * the design promises, and each outcome rests on what was observed (faults, changed frames, the
 * secret in the rogue device's log), not on what a scenario claims.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { runMatrix } from "../../samples/matrix.js";
import type { Outcome, ScenarioDriver, ScenarioResult } from "../../samples/scenario.js";
import { runScenario } from "../../samples/scenario-run.js";
import { NicDevice } from "../../src/devices/nic-device.js";
import type { RemappingMode } from "../../src/machine/machine-options.js";

const EXPECTED: Record<ScenarioDriver, Record<RemappingMode, readonly Outcome[]>> = {
  nic: { off: ["ok"], passthrough: ["ok"], strict: ["ok"], lazy: ["ok"] },
  disk: { off: ["ok"], passthrough: ["ok"], strict: ["ok"], lazy: ["ok"] },
  legacy: { off: ["ok"], passthrough: ["ok"], strict: ["ok"], lazy: ["ok"] },
  bypass64: { off: ["ok"], passthrough: ["ok"], strict: ["blocked"], lazy: ["blocked"] },
  bypass32: { off: ["corrupted"], passthrough: ["corrupted"], strict: ["blocked"], lazy: ["blocked"] },
  rogue: {
    off: ["leaked", "corrupted"],
    passthrough: ["leaked", "corrupted"],
    strict: ["blocked"],
    lazy: ["blocked"],
  },
};

let results: ScenarioResult[];

function row(driver: ScenarioDriver, mode: RemappingMode): ScenarioResult {
  const found = results.find((r) => r.driver === driver && r.mode === mode);
  if (found === undefined) throw new Error(`no row for ${driver}/${mode}`);
  return found;
}

beforeAll(() => {
  results = runMatrix({});
});

describe("the demonstration matrix (8 GiB, hole at 3 GiB)", () => {
  it("has one row per driver and mode, in table order", () => {
    expect(results.map((r) => `${r.driver}/${r.mode}`)).toEqual(
      Object.keys(EXPECTED).flatMap((d) => ["off", "passthrough", "strict", "lazy"].map((m) => `${d}/${m}`)),
    );
  });

  for (const [driver, modes] of Object.entries(EXPECTED)) {
    for (const [mode, outcomes] of Object.entries(modes)) {
      it(`${driver} in ${mode}: ${outcomes.join(" or ")}`, () => {
        const result = row(driver as ScenarioDriver, mode as RemappingMode);
        expect(outcomes, `${result.explanation} ${result.error ?? ""}`).toContain(result.outcome);
        expect(result.explanation.length).toBeGreaterThan(20);
      });
    }
  }

  it("well-behaved drivers move every byte intact with no fault, in every mode", () => {
    for (const r of results.filter((x) => ["nic", "disk", "legacy"].includes(x.driver))) {
      expect(r.dataIntact, `${r.driver}/${r.mode}`).toBe(true);
      expect(r.faults).toBe(0);
      expect(r.changedFrames).toEqual([]);
      expect(r.bytes).toBeGreaterThan(0);
    }
  });

  it("the 32-bit chip bounces without remapping and reaches memory above 4 GiB through IOVAs with it", () => {
    expect(row("legacy", "off").bounces).toBeGreaterThan(0);
    expect(row("legacy", "passthrough").bounces).toBeGreaterThan(0);
    expect(row("legacy", "strict").bounces).toBe(0);
    expect(row("legacy", "lazy").bounces).toBe(0);
    expect(row("legacy", "strict").iotlbMisses).toBeGreaterThan(0);
    expect(row("disk", "off").bounces).toBe(0);
  });

  it("blocked rows saw IOMMU faults and no memory outside the driver's own change", () => {
    for (const r of results.filter((x) => x.outcome === "blocked")) {
      expect(r.faults, `${r.driver}/${r.mode}`).toBeGreaterThan(0);
      expect(r.changedFrames).toEqual([]);
      expect(r.leaked).toBe(false);
    }
  });

  it("bypass32 without remapping wrote over the kernel structure planted 4 GiB below its buffer", () => {
    for (const mode of ["off", "passthrough"] as const) {
      const r = row("bypass32", mode);
      expect(r.faults).toBe(0);
      expect(r.dataIntact).toBe(false);
      expect(r.changedFrames.length).toBeGreaterThan(0);
      expect(new Set(r.changedFrames.map((f) => f.owner))).toEqual(new Set(["kernel-structures"]));
      expect(r.changedFrames.every((f) => f.address < 4 * 2 ** 30)).toBe(true);
    }
  });

  it("bypass64 moves the data without remapping and nothing with it", () => {
    expect(row("bypass64", "off").dataIntact).toBe(true);
    expect(row("bypass64", "strict").dataIntact).toBe(false);
    expect(row("bypass64", "strict").bytes).toBe(0);
  });

  it("the rogue device reads the secret and overwrites the structure only without remapping", () => {
    for (const mode of ["off", "passthrough"] as const) {
      const r = row("rogue", mode);
      expect(r.leaked).toBe(true);
      expect(r.changedFrames.map((f) => f.owner)).toEqual(["kernel-structures"]);
    }
    for (const mode of ["strict", "lazy"] as const) {
      const r = row("rogue", mode);
      expect(r.leaked).toBe(false);
      expect(r.faults).toBe(2);
      expect(r.bytes).toBe(0);
    }
  });

  it("is deterministic: the same seed gives the same rows", () => {
    const again = runMatrix({ drivers: ["nic", "bypass32"], modes: ["off", "lazy"] });
    for (const r of again) expect(r).toEqual(row(r.driver, r.mode));
  });
});

describe("a scenario that goes wrong", () => {
  it("becomes an error row that says why, not a crash of the whole matrix", () => {
    const result = runScenario(
      {
        driver: "nic",
        modules: [],
        run(run) {
          run.plug(new NicDevice());
          run.start();
          throw new Error("unreachable");
        },
      },
      "strict",
      {},
    );
    expect(result.outcome).toBe("error");
    expect(result.error).toMatch(/did not start .*device node is enumerated/);
    expect(result.explanation).toMatch(/^the run stopped: /);
  });
});

describe("other machines", () => {
  it("without RAM above 4 GiB the truncation is harmless and bypass32 reads correctly", () => {
    const [r] = runMatrix({ drivers: ["bypass32"], modes: ["off"], memory: 2 * 2 ** 30 });
    expect(r!.outcome).toBe("ok");
    expect(r!.dataIntact).toBe(true);
  });

  it("a 16 GiB machine and another seed give the same outcomes", () => {
    const rows = runMatrix({ memory: 16 * 2 ** 30, seed: 7 });
    for (const r of rows)
      expect(EXPECTED[r.driver][r.mode], `${r.driver}/${r.mode}: ${r.explanation}`).toContain(r.outcome);
  });
});
