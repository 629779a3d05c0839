/**
 * `npm run sample -- NAME [--json] [--seed N]`: runs samples/NAME-sample.ts and prints its report,
 * or with --json exactly one JSON object {"sample", "ok", "checks", ...figures}. No NAME lists them.
 */
import "reflect-metadata";
import { readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { type SampleDefinition, sampleOk } from "../../samples/sample-definition.js";

const samplesDir = join(dirname(fileURLToPath(import.meta.url)), "../../samples");

function available(): string[] {
  return readdirSync(samplesDir)
    .filter((file) => file.endsWith("-sample.ts"))
    .map((file) => file.slice(0, -"-sample.ts".length))
    .sort();
}

async function load(name: string): Promise<SampleDefinition> {
  const module = (await import(pathToFileURL(join(samplesDir, `${name}-sample.ts`)).href)) as {
    default: SampleDefinition;
  };
  return module.default;
}

function fail(message: string): never {
  process.stderr.write(`sample: ${message}\n`);
  process.exit(2);
}

async function main(argv: readonly string[]): Promise<void> {
  const json = argv.includes("--json");
  const seedIndex = argv.indexOf("--seed");
  const seed = seedIndex >= 0 ? Number(argv[seedIndex + 1]) : 1;
  if (!Number.isSafeInteger(seed)) fail(`--seed needs an integer, got ${argv[seedIndex + 1]}`);
  const name = argv.find((arg, i) => !arg.startsWith("--") && argv[i - 1] !== "--seed");
  const names = available();
  if (name === undefined) {
    for (const each of names) process.stdout.write(`${each.padEnd(22)} ${(await load(each)).description}\n`);
    return;
  }
  if (!names.includes(name)) fail(`unknown sample "${name}"; one of: ${names.join(", ")}`);
  const sample = await load(name);
  const report = await sample.run({ seed, json });
  const ok = sampleOk(report);
  if (json) {
    process.stdout.write(
      `${JSON.stringify({ sample: report.name, ok, checks: report.checks, ...report.figures })}\n`,
    );
  } else {
    process.stdout.write(`${sample.name}: ${sample.description}\n\n`);
    for (const line of report.lines) process.stdout.write(`  ${line}\n`);
    process.stdout.write("\n");
    for (const check of report.checks)
      process.stdout.write(`  [${check.ok ? "ok" : "FAIL"}] ${check.name}: ${check.detail}\n`);
    process.stdout.write(`\n${ok ? "all checks held" : "SOME CHECKS FAILED"}\n`);
  }
  process.exitCode = ok ? 0 : 1;
}

main(process.argv.slice(2)).catch((error: unknown) =>
  fail(error instanceof Error ? error.message : String(error)),
);
