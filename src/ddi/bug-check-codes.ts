/**
 * The DDI's bug check rules. The codes are the real ones (WDK "Bug Check Code Reference"), kept
 * with their names in src/hal/wdm/bug-check.ts; where Windows defines no parameter layout for a
 * rule we check, parameter 1 is the rule below and the others say which object was involved.
 */
import { BugCheck } from "../hal/wdm/bug-check.js";

export {
  BAD_POOL_CALLER,
  DRIVER_VERIFIER_IOMANAGER_VIOLATION,
  INVALID_PROCESS_ATTACH_ATTEMPT,
  INVALID_PROCESS_DETACH_ATTEMPT,
  IRQL_NOT_GREATER_OR_EQUAL,
  IRQL_UNEXPECTED_VALUE,
  KMODE_EXCEPTION_NOT_HANDLED,
  MEMORY_MANAGEMENT,
  MULTIPLE_IRP_COMPLETE_REQUESTS,
  PAGE_FAULT_IN_NONPAGED_AREA,
  PROCESS_HAS_LOCKED_PAGES,
  SPIN_LOCK_ALREADY_OWNED,
  SPIN_LOCK_NOT_OWNED,
} from "../hal/wdm/bug-check.js";

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

/** A BugCheck (KeBugCheckEx) with one of the codes above; its message names the code. */
export function bugCheck(
  code: number,
  parameters: readonly [number, number, number, number],
  explanation: string,
): BugCheck {
  return new BugCheck(code, parameters, explanation);
}
