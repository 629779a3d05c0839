/**
 * The demonstration matrix: every scenario in every remapping mode, each on a fresh machine.
 * What the rows should show (asserted by test/cli/matrix.test.ts): the well-behaved drivers are
 * "ok" in all four modes; the bypassing driver "works" without remapping on a 64-bit chip,
 * corrupts kernel memory on a 32-bit one, and is "blocked" with remapping on; the rogue device
 * gets what it wants without remapping and nothing with it.
 */
import { REMAPPING_MODES, type RemappingMode } from "../src/machine/machine-options.js";
import { bypass32Scenario, bypass64Scenario } from "./bypass-scenarios.js";
import { diskScenario } from "./disk-scenario.js";
import { legacyScenario } from "./legacy-scenario.js";
import { nicScenario } from "./nic-scenario.js";
import { rogueScenario } from "./rogue-scenario.js";
import { SCENARIO_DRIVERS, type ScenarioDriver, type ScenarioResult } from "./scenario.js";
import { runScenario, type ScenarioDefinition, type ScenarioEnvironment } from "./scenario-run.js";

export const SCENARIOS: Readonly<Record<ScenarioDriver, ScenarioDefinition>> = {
  nic: nicScenario,
  disk: diskScenario,
  legacy: legacyScenario,
  bypass64: bypass64Scenario,
  bypass32: bypass32Scenario,
  rogue: rogueScenario,
};

export interface MatrixOptions extends Omit<ScenarioEnvironment, "tracePid"> {
  readonly drivers?: readonly ScenarioDriver[];
  readonly modes?: readonly RemappingMode[];
  /** Called before each scenario starts (index from 0) and once more when all are done. */
  readonly onProgress?: (
    done: number,
    total: number,
    next: { driver: ScenarioDriver; mode: RemappingMode } | undefined,
  ) => void;
  /** Called after each scenario with its result (a CLI moves its pcap clock on here). */
  readonly onResult?: (result: ScenarioResult) => void;
}

/** Runs the selected drivers (table order) in the selected modes, one trace process per run. */
export function runMatrix(options: MatrixOptions = {}): ScenarioResult[] {
  const drivers = SCENARIO_DRIVERS.filter(
    (d) => options.drivers === undefined || options.drivers.includes(d),
  );
  const modes = REMAPPING_MODES.filter((m) => options.modes === undefined || options.modes.includes(m));
  const plan = drivers.flatMap((driver) => modes.map((mode) => ({ driver, mode })));
  const results: ScenarioResult[] = [];
  plan.forEach((entry, index) => {
    options.onProgress?.(index, plan.length, entry);
    const result = runScenario(SCENARIOS[entry.driver], entry.mode, { ...options, tracePid: index + 1 });
    results.push(result);
    options.onResult?.(result);
  });
  options.onProgress?.(plan.length, plan.length, undefined);
  return results;
}
