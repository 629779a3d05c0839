/**
 * Bug check codes the DDI raises that src/hal/wdm/bug-check.ts does not name. Codes are the
 * real ones (WDK "Bug Check Code Reference"); where Windows defines no parameter layout for a
 * rule we check, parameter 1 is the rule below and the others say which object was involved.
 * `bugCheck` starts the explanation with the code's name, which BugCheck's own table lacks.
 */
import { BugCheck } from "../hal/wdm/bug-check.js";

export const IRQL_NOT_GREATER_OR_EQUAL = 0x09;
export const SPIN_LOCK_ALREADY_OWNED = 0x0f;
export const SPIN_LOCK_NOT_OWNED = 0x10;
export const MEMORY_MANAGEMENT = 0x1a;
export const MULTIPLE_IRP_COMPLETE_REQUESTS = 0x44;
export const PAGE_FAULT_IN_NONPAGED_AREA = 0x50;
export const PROCESS_HAS_LOCKED_PAGES = 0x76;
export const KMODE_EXCEPTION_NOT_HANDLED = 0x1e;
export const INVALID_PROCESS_ATTACH_ATTEMPT = 0x05;
export const INVALID_PROCESS_DETACH_ATTEMPT = 0x06;
export const BAD_POOL_CALLER = 0xc2;
export const IRQL_UNEXPECTED_VALUE = 0xc8;
export const DRIVER_VERIFIER_IOMANAGER_VIOLATION = 0xc9;

/** BAD_POOL_CALLER parameter 1 values (documented subcodes). */
export const BadPoolCaller = {
  freedTwice: 0x07,
  wrongTag: 0x0a,
  zeroTag: 0x9b,
  invalidAddress: 0x46,
} as const;

/** MEMORY_MANAGEMENT parameter 1 values for MDL, contiguous-memory and I/O-space misuse (our numbering). */
export const MmRule = {
  unlockNotLocked: 1,
  freeLocked: 2,
  freeTwice: 3,
  notResident: 4,
  alreadyResident: 5,
  notContiguousMemory: 6,
  notIoSpace: 7,
} as const;

/**
 * DRIVER_VERIFIER_IOMANAGER_VIOLATION parameter 1 values for I/O manager misuse (our numbering).
 * A wrong kind of object where C takes a pointer (an MDL where a KDPC belongs) is what a bad
 * pointer does in C: an access violation in kernel mode, KMODE_EXCEPTION_NOT_HANDLED with
 * parameter 1 = STATUS_ACCESS_VIOLATION.
 */
export const IoRule = {
  deleteTwice: 1,
  deleteBusDevice: 2,
  disconnectUnknown: 3,
  startPacketWithoutStartIo: 4,
  deleteAttached: 5,
  dpcNotInitialized: 6,
  removeWithoutDetach: 7,
  unloadWithDevices: 8,
} as const;

const NAMES: Record<number, string> = {
  [IRQL_NOT_GREATER_OR_EQUAL]: "IRQL_NOT_GREATER_OR_EQUAL",
  [SPIN_LOCK_ALREADY_OWNED]: "SPIN_LOCK_ALREADY_OWNED",
  [SPIN_LOCK_NOT_OWNED]: "SPIN_LOCK_NOT_OWNED",
  [MEMORY_MANAGEMENT]: "MEMORY_MANAGEMENT",
  [MULTIPLE_IRP_COMPLETE_REQUESTS]: "MULTIPLE_IRP_COMPLETE_REQUESTS",
  [KMODE_EXCEPTION_NOT_HANDLED]: "KMODE_EXCEPTION_NOT_HANDLED",
  [IRQL_UNEXPECTED_VALUE]: "IRQL_UNEXPECTED_VALUE",
  [PAGE_FAULT_IN_NONPAGED_AREA]: "PAGE_FAULT_IN_NONPAGED_AREA",
  [PROCESS_HAS_LOCKED_PAGES]: "PROCESS_HAS_LOCKED_PAGES",
  [INVALID_PROCESS_ATTACH_ATTEMPT]: "INVALID_PROCESS_ATTACH_ATTEMPT",
  [INVALID_PROCESS_DETACH_ATTEMPT]: "INVALID_PROCESS_DETACH_ATTEMPT",
  [BAD_POOL_CALLER]: "BAD_POOL_CALLER",
  [DRIVER_VERIFIER_IOMANAGER_VIOLATION]: "DRIVER_VERIFIER_IOMANAGER_VIOLATION",
};

/** A BugCheck whose explanation names the code when BugCheck's table does not. */
export function bugCheck(
  code: number,
  parameters: readonly [number, number, number, number],
  explanation: string,
): BugCheck {
  const name = NAMES[code];
  return new BugCheck(code, parameters, name === undefined ? explanation : `${name}: ${explanation}`);
}
