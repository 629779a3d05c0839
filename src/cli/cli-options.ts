/**
 * The command line's values, parsed and checked before anything runs: each parser throws
 * commander's InvalidArgumentError with a one-line reason, which commander prints as
 * "error: option '--mode <mode>' argument 'x' is invalid. <reason>" and exits 1.
 */
import { InvalidArgumentError } from "commander";
import { SCENARIO_DRIVERS, type ScenarioDriver } from "../../samples/scenario.js";
import { REMAPPING_MODES, type RemappingMode, resolveMachineOptions } from "../machine/machine-options.js";
import { PlatformError } from "../platform/platform-error.js";

const UNITS: Readonly<Record<string, number>> = {
  "": 1,
  k: 2 ** 10,
  m: 2 ** 20,
  g: 2 ** 30,
  t: 2 ** 40,
  p: 2 ** 50,
};

/**
 * A memory size: bytes ("8589934592") or a number with a binary unit, K/M/G/T/P optionally
 * followed by "iB" or "B" ("8G", "16GiB", "512MB"; memory sizes are powers of 1024 here). It
 * must be a size the machine can have: whole pages, 16 MiB to 4 PiB.
 */
export function parseMemorySize(text: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([kmgtp]?)(i?b)?\s*$/i.exec(text);
  if (match === null || (match[2] === "" && match[3] !== undefined && match[3].toLowerCase() !== "b")) {
    throw new InvalidArgumentError(`"${text}" is not a memory size (examples: 8G, 16GiB, 4096M, 8589934592)`);
  }
  const bytes = Number(match[1]) * UNITS[match[2]!.toLowerCase()]!;
  try {
    resolveMachineOptions({ memory: bytes });
  } catch (error) {
    if (error instanceof PlatformError) throw new InvalidArgumentError(`${text}: ${error.message}`);
    throw error;
  }
  return bytes;
}

/** Collects --mode values: repeatable and comma-separated. */
export function collectModes(text: string, previous: readonly RemappingMode[] | undefined): RemappingMode[] {
  return [...(previous ?? []), ...split(text).map((value) => oneOf(value, REMAPPING_MODES, "mode"))];
}

/** Collects --driver values: repeatable and comma-separated. */
export function collectDrivers(
  text: string,
  previous: readonly ScenarioDriver[] | undefined,
): ScenarioDriver[] {
  return [...(previous ?? []), ...split(text).map((value) => oneOf(value, SCENARIO_DRIVERS, "driver"))];
}

/** --seed: an integer the machine's Random accepts. */
export function parseSeed(text: string): number {
  const seed = Number(text.trim());
  if (text.trim() === "" || !Number.isSafeInteger(seed)) {
    throw new InvalidArgumentError(`"${text}" is not an integer`);
  }
  return seed;
}

function split(text: string): string[] {
  const values = text.split(",").map((value) => value.trim().toLowerCase());
  if (values.some((value) => value === "")) throw new InvalidArgumentError(`"${text}" has an empty item`);
  return values;
}

function oneOf<T extends string>(value: string, allowed: readonly T[], what: string): T {
  if (!(allowed as readonly string[]).includes(value)) {
    throw new InvalidArgumentError(`unknown ${what} "${value}" (one of ${allowed.join(", ")})`);
  }
  return value as T;
}
