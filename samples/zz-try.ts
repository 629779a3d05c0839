import "reflect-metadata";
import { diskScenario } from "./disk-scenario.js";
import { runScenario } from "./scenario-run.js";
for (const mode of ["off", "passthrough", "strict", "lazy"] as const) {
  const t = performance.now();
  const r = runScenario(diskScenario, mode, {});
  console.log(JSON.stringify({ ...r, changedFrames: r.changedFrames }), (performance.now() - t).toFixed(0), "ms");
}
