/**
 * Checks shared by the DDI routines: C-typed arguments, the IRQL a driver callback returns at,
 * and the conversion of a PlatformError from below into the routine's failure value (a
 * PlatformError never reaches a driver).
 */

import { MmCached, MmNonCached, MmWriteCombined } from "../hal/wdm/dma-v3-types.js";
import { HIGH_LEVEL, type KIRQL, PASSIVE_LEVEL } from "../hal/wdm/irql.js";
import { PlatformError } from "../platform/platform-error.js";
import type { Scheduler } from "../platform/scheduler.js";
import { bugCheck, IRQL_UNEXPECTED_VALUE } from "./bug-check-codes.js";

const IRQL_NAMES = ["PASSIVE_LEVEL", "APC_LEVEL", "DISPATCH_LEVEL"];

export function isIrql(level: number): boolean {
  return Number.isInteger(level) && level >= PASSIVE_LEVEL && level <= HIGH_LEVEL;
}

export function irqlName(level: KIRQL): string {
  return IRQL_NAMES[level] ?? (level === HIGH_LEVEL ? "HIGH_LEVEL" : `IRQL ${level}`);
}

/** A pointer-sized value: a safe integer >= 0. */
export function isAddress(value: number): boolean {
  return Number.isSafeInteger(value) && value >= 0;
}

/** A ULONG-like count or size: a safe integer >= 0. */
export function isCount(value: number): boolean {
  return Number.isSafeInteger(value) && value >= 0;
}

export function isPowerOfTwo(value: number): boolean {
  return Number.isSafeInteger(value) && value > 0 && 2 ** Math.round(Math.log2(value)) === value;
}

export function isCacheType(type: number): boolean {
  return type === MmNonCached || type === MmCached || type === MmWriteCombined;
}

/** A bug-check parameter from a value that may not be an address (0 then). */
export function addressParameter(value: number): number {
  return isAddress(value) ? value : 0;
}

export function irqlParameter(value: number): number {
  return isIrql(value) ? value : 0xff;
}

/** Runs `fn`; a PlatformError from below becomes `fallback`'s result, anything else propagates. */
export function convertingPlatformErrors<T>(fn: () => T, fallback: (error: PlatformError) => T): T {
  try {
    return fn();
  } catch (error) {
    if (error instanceof PlatformError) return fallback(error);
    throw error;
  }
}

/**
 * Runs a driver callback (DPC, ISR, StartIo, dispatch routine) that must return at the IRQL it
 * was called at: IRQL_UNEXPECTED_VALUE otherwise, before the scheduler would find out on its own.
 */
export function callDriverRoutine<T>(scheduler: Scheduler, what: string, fn: () => T): T {
  const level = scheduler.irql;
  const result = fn();
  const left = scheduler.irql;
  if (left !== level) {
    throw bugCheck(
      IRQL_UNEXPECTED_VALUE,
      [left, level, 0, 0],
      `a ${what} returned at IRQL ${left}, not ${irqlName(level)}`,
    );
  }
  return result;
}
