/**
 * How the DMA verifier is switched on: for the whole machine, or per driver or adapter, and
 * whether a violation stops the machine (Driver Verifier's bug check) or is collected and the
 * machine goes on (Linux dma-debug's WARN). Bad options are rejected with a PlatformError before
 * anything is built.
 */
import { PlatformError } from "../platform/platform-error.js";

/** bugcheck: throw BugCheck 0xE6 at the first violation. log: record it and go on. */
export type VerifierMode = "bugcheck" | "log";

/** What the verifier knows of an adapter when it decides whether to verify it. */
export interface VerifierTarget {
  /** AdapterObject.id: the n-th adapter IoGetDmaAdapter handed out. */
  readonly adapter: number;
  readonly requesterId: number | undefined;
  /** Service name of the driver whose device object sits on the PDO ("" when none yet). */
  readonly driver: string;
}

export interface VerifierOptions {
  /** Default "bugcheck". */
  readonly mode?: VerifierMode;
  /**
   * Per driver (service name, case-insensitive, as in the INF): its mode, or "off". Drivers not
   * listed get `mode`, unless `onlyListed` is set.
   */
  readonly drivers?: Readonly<Record<string, VerifierMode | "off">>;
  /** Verify only the drivers named in `drivers` (Driver Verifier's /driver list). */
  readonly onlyListed?: boolean;
  /** Last word per adapter: a mode, "off", or undefined to keep what `drivers` decided. */
  readonly select?: (target: VerifierTarget) => VerifierMode | "off" | undefined;
  /** Fence common buffers with tags and padding (default true). */
  readonly guardCommonBuffers?: boolean;
  /** Catch CPU reads of buffers the device may still write (default true). */
  readonly staleReads?: boolean;
  /** Capture `new Error().stack` at every allocation, for leak reports (default true). */
  readonly captureStacks?: boolean;
  /** Violations kept in log mode; later ones are counted, not kept (default 10,000). */
  readonly maxViolations?: number;
}

export interface ResolvedVerifierOptions {
  readonly mode: VerifierMode;
  readonly drivers: ReadonlyMap<string, VerifierMode | "off">;
  readonly onlyListed: boolean;
  readonly select: ((target: VerifierTarget) => VerifierMode | "off" | undefined) | undefined;
  readonly guardCommonBuffers: boolean;
  readonly staleReads: boolean;
  readonly captureStacks: boolean;
  readonly maxViolations: number;
}

const MODES: readonly string[] = ["bugcheck", "log"];

export function resolveVerifierOptions(options: VerifierOptions = {}): ResolvedVerifierOptions {
  const mode = options.mode ?? "bugcheck";
  if (!MODES.includes(mode)) {
    throw new PlatformError("out-of-range", `verifier mode ${String(mode)} is not "bugcheck" or "log"`);
  }
  const drivers = new Map<string, VerifierMode | "off">();
  for (const [name, value] of Object.entries(options.drivers ?? {})) {
    if (value !== "off" && !MODES.includes(value)) {
      throw new PlatformError(
        "out-of-range",
        `verifier mode ${String(value)} for driver ${name} is not "bugcheck", "log" or "off"`,
      );
    }
    drivers.set(name.toLowerCase(), value);
  }
  if (options.select !== undefined && typeof options.select !== "function") {
    throw new PlatformError("out-of-range", "verifier option select must be a function");
  }
  const maxViolations = options.maxViolations ?? 10_000;
  if (!Number.isSafeInteger(maxViolations) || maxViolations < 1) {
    throw new PlatformError(
      "out-of-range",
      `verifier maxViolations ${String(maxViolations)} must be a positive integer`,
    );
  }
  return {
    mode,
    drivers,
    onlyListed: options.onlyListed ?? false,
    select: options.select,
    guardCommonBuffers: options.guardCommonBuffers ?? true,
    staleReads: options.staleReads ?? true,
    captureStacks: options.captureStacks ?? true,
    maxViolations,
  };
}

/** The mode for one adapter, or "off". */
export function modeFor(options: ResolvedVerifierOptions, target: VerifierTarget): VerifierMode | "off" {
  const listed = options.drivers.get(target.driver.toLowerCase());
  let mode: VerifierMode | "off" = listed ?? (options.onlyListed ? "off" : options.mode);
  const chosen = options.select?.(target);
  if (chosen !== undefined) mode = chosen;
  return mode;
}
