/**
 * `npm run bench`: runs every layer's benchmark module and prints, as its LAST line, one JSON object
 * with all keys. Progress goes to stderr so the last stdout line stays machine-readable.
 */
import "reflect-metadata";
import { round } from "./measure.js";

type BenchModule = { run(): Promise<Record<string, number>> };

const modules: Record<string, () => Promise<BenchModule>> = {
  iommu: () => import("./iommu-bench.js"),
  "dma-port": () => import("./dma-port-bench.js"),
  hal: () => import("./hal-bench.js"),
  remap: () => import("./remap-bench.js"),
};

const only = process.argv.slice(2);
const results: Record<string, number> = {};
const started = Date.now();
for (const [name, load] of Object.entries(modules)) {
  if (only.length > 0 && !only.includes(name)) continue;
  process.stderr.write(`bench ${name} ...\n`);
  const figures = await (await load()).run();
  for (const [key, value] of Object.entries(figures)) results[key] = round(value);
  process.stderr.write(`  ${JSON.stringify(figures)}\n`);
}
process.stderr.write(`bench done in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
console.log(JSON.stringify(results));
