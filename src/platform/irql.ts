/**
 * Interrupt request levels as the platform tracks them: one simulated processor, one IRQL. The
 * numbers follow x64 Windows (PASSIVE 0, APC 1, DISPATCH 2, device levels 3..12, HIGH 15); the
 * Windows names are given at the DDI (src/hal/wdm/irql.ts), nothing below it knows them.
 */
import { PlatformError } from "./platform-error.js";

export const Irql = { passive: 0, apc: 1, dispatch: 2, device: 5, high: 15 } as const;

/** Throws a PlatformError unless `level` is an integer IRQL in [passive, high]. */
export function checkIrql(level: number, what: string): number {
  if (!Number.isInteger(level) || level < Irql.passive || level > Irql.high) {
    throw new PlatformError("out-of-range", `${what} ${String(level)} is not an IRQL in [0, ${Irql.high}]`);
  }
  return level;
}
