import "reflect-metadata";
import { runMatrix } from "./matrix.js";
const t = performance.now();
for (const r of runMatrix({})) console.log(r.driver.padEnd(9), r.mode.padEnd(12), r.outcome.padEnd(10), r.faults, r.bounces, r.bytes, r.iotlbMisses, r.error ?? "", "|", r.explanation);
console.log((performance.now() - t).toFixed(0), "ms");
