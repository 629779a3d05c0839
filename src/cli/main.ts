/**
 * `npm start`: the demonstration matrix. Every sample driver (and the rogue device) in every
 * remapping mode, each on a fresh machine; a table of what happened, or with --json exactly one
 * JSON object on stdout. Progress goes to stderr, and only when stderr is a terminal.
 *
 * Bad input (an unknown mode or driver, an absurd memory size, an output folder that cannot be
 * written) is one line on stderr and exit status 1, before anything runs. A scenario that ends in
 * "error" (a crash or an unexplained failure, never an expected outcome) makes the status 1 too.
 */
import "reflect-metadata";
import { SingleBar } from "cli-progress";
import { Command, CommanderError, Option } from "commander";
import { formatBytes } from "../../samples/explain.js";
import { runMatrix } from "../../samples/matrix.js";
import type { ScenarioDriver, ScenarioResult } from "../../samples/scenario.js";
import { REMAPPING_MODES, type RemappingMode, resolveMachineOptions } from "../machine/machine-options.js";
import { GiB } from "../platform/page.js";
import { Artifacts, OutputFolderError } from "./artifacts.js";
import { collectDrivers, collectModes, parseMemorySize, parseSeed } from "./cli-options.js";
import { formatResultsTable } from "./results-table.js";

interface CliOptions {
  readonly mode?: RemappingMode[];
  readonly driver?: ScenarioDriver[];
  readonly memory: number;
  readonly seed: number;
  readonly out: string;
  readonly json?: boolean;
}

function command(): Command {
  return new Command()
    .name("dma-ddi-sim")
    .description(
      "Run the sample drivers against a Windows-style DMA DDI on a simulated machine, with the IOMMU off, " +
        "in passthrough, strict and lazy, and show what the IOMMU stops.",
    )
    .option(
      "-m, --mode <modes>",
      `remapping modes: ${REMAPPING_MODES.join(", ")} (repeatable or comma list; default: all)`,
      collectModes,
    )
    .option(
      "-d, --driver <drivers>",
      "scenarios: nic, disk, legacy, bypass64, bypass32, rogue (repeatable or comma list; default: all)",
      collectDrivers,
    )
    .addOption(
      new Option("--memory <size>", "RAM of each machine: 8G, 16GiB, 4096M or bytes (MMIO hole at 3 GiB)")
        .argParser(parseMemorySize)
        .default(8 * GiB, "8G"),
    )
    .option("--seed <n>", "seed of every machine's random choices (frame placement, data)", parseSeed, 1)
    .option("-o, --out <dir>", "folder for trace.json, nic.pcap and disk.img", "out")
    .option("--json", "print one JSON object {scenarios: [...]} on stdout instead of the table")
    .showSuggestionAfterError(false)
    .allowExcessArguments(false)
    .exitOverride()
    .configureOutput({
      writeOut: (text) => process.stdout.write(text),
      writeErr: (text) => process.stderr.write(text),
    });
}

function main(argv: readonly string[]): number {
  const program = command();
  try {
    program.parse(argv, { from: "user" });
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode;
    throw error;
  }
  const options = program.opts<CliOptions>();
  let artifacts: Artifacts;
  try {
    artifacts = new Artifacts(options.out);
  } catch (error) {
    if (error instanceof OutputFolderError) return fail(error.message);
    throw error;
  }
  const drivers = options.driver;
  const modes = options.mode;
  const uses = (driver: ScenarioDriver): boolean => drivers === undefined || drivers.includes(driver);
  const pcap = uses("nic") ? artifacts.pcap() : undefined;
  const progress = process.stderr.isTTY
    ? new SingleBar({
        stream: process.stderr,
        format: " {bar} {value}/{total} {scenario}",
        hideCursor: true,
        clearOnComplete: true,
      })
    : undefined;
  const results = runMatrix({
    ...(drivers === undefined ? {} : { drivers }),
    ...(modes === undefined ? {} : { modes }),
    memory: options.memory,
    seed: options.seed,
    trace: artifacts.trace,
    ...(pcap === undefined ? {} : { pcap }),
    ...(uses("disk") ? { diskImagePath: artifacts.resetDiskImage() } : {}),
    onProgress: (done, total, next) => {
      if (progress === undefined) return;
      if (done === 0) progress.start(total, 0, { scenario: "" });
      progress.update(done, { scenario: next === undefined ? "" : `${next.driver} / ${next.mode}` });
      if (next === undefined) progress.stop();
    },
    onResult: (result) => {
      if (result.driver === "nic") pcap?.advance(result.virtualTimeNs);
    },
  });
  const written = artifacts.close();
  if (uses("disk")) written.push(artifacts.diskImagePath);

  if (options.json === true) {
    process.stdout.write(`${JSON.stringify({ scenarios: results }, undefined, 2)}\n`);
  } else {
    process.stdout.write(`${report(results, options, written)}\n`);
  }
  const errors = results.filter((r) => r.outcome === "error");
  if (errors.length > 0) {
    return fail(
      `${errors.length} scenario(s) ended in error: ${errors.map((r) => `${r.driver}/${r.mode}`).join(", ")}`,
    );
  }
  return 0;
}

function report(results: readonly ScenarioResult[], options: CliOptions, written: readonly string[]): string {
  const platform = resolveMachineOptions({ memory: options.memory }).platform;
  const high = platform.ramRanges.find((range) => range.start >= 4 * GiB);
  const layout =
    high === undefined ? "all below 4 GiB" : `${formatBytes(high.end - high.start)} of it above 4 GiB`;
  return [
    `Windows DMA DDI on a simulated machine: ${formatBytes(options.memory)} of RAM (${layout}), seed ${options.seed}`,
    "",
    formatResultsTable(results),
    "",
    "ok: every byte checked intact. blocked: the IOMMU faulted, nothing outside the driver's buffers changed.",
    "corrupted: memory nobody gave the device changed. leaked: the rogue device read the secret.",
    "",
    `Artifacts: ${written.join(", ")}`,
    "  trace.json opens in https://ui.perfetto.dev; nic.pcap in Wireshark or `tshark -r`.",
  ].join("\n");
}

function fail(message: string): number {
  process.stderr.write(`error: ${message}\n`);
  return 1;
}

try {
  process.exitCode = main(process.argv.slice(2));
} catch (error) {
  process.stderr.write(
    `error: internal failure: ${error instanceof Error ? error.message.split("\n")[0] : String(error)}\n`,
  );
  process.exitCode = 70;
}
