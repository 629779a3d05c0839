/**
 * The bug checks the HAL raises, with their parameters. Where Windows documents a layout
 * (DRIVER_VERIFIER_DMA_VIOLATION 0xE6, DMA_COMMON_BUFFER_VECTOR_ERROR 0x1DC; reference section 6
 * and section 1), the parameters follow it. Misuse the WDK gives no code for is raised as 0xE6
 * with parameter 1 = 0x00 ("miscellaneous") and a HAL rule number >= 0x100 in parameter 2, listed
 * in docs/hal.md. Real Windows catches most of these only under Driver Verifier; without it the
 * misuse corrupts memory or crashes later. The simulator stops at once, with the reason.
 */
import { BugCheck, DMA_COMMON_BUFFER_VECTOR_ERROR, DRIVER_VERIFIER_DMA_VIOLATION } from "./wdm/bug-check.js";
import { DISPATCH_LEVEL, PASSIVE_LEVEL } from "./wdm/irql.js";

/** PAGE_FAULT_IN_NONPAGED_AREA: the HAL was given a kernel buffer with no page behind it. */
export { PAGE_FAULT_IN_NONPAGED_AREA } from "./wdm/bug-check.js";

/** Parameter 1 of DRIVER_VERIFIER_DMA_VIOLATION, as documented. */
export const DmaViolation = {
  miscellaneous: 0x00,
  commonBufferDoubleFree: 0x03,
  channelDoubleFree: 0x04,
  mapRegistersDoubleFree: 0x05,
  scatterGatherDoubleFree: 0x06,
  secondChannel: 0x0b,
  unlockedBuffer: 0x0e,
  wrongIrql: 0x13,
  releasedAdapter: 0x18,
  nullAdapter: 0x19,
  addressNotInMdl: 0x1b,
  zeroLengthMap: 0x21,
  insufficientBuffer: 0x24,
} as const;

/** Parameter 2 under DmaViolation.miscellaneous: 1 and 2 are Windows'; 0x100 and up are the HAL's. */
export const HalRule = {
  /** Documented: p3 bytes left, p4 bytes asked. */
  flushBeyondMapRegisterFile: 0x1,
  /** Documented: p3 registers needed, p4 registers available. */
  outOfMapRegisters: 0x2,
  /** An AdapterControl routine returned something that is not an IO_ALLOCATION_ACTION. */
  badAllocationAction: 0x100,
  /** A member beyond the adapter's DMA_OPERATIONS version (past DMA_OPERATIONS.Size). */
  memberBeyondTable: 0x101,
  /** The object passed as DMA_ADAPTER is not an adapter of this machine. */
  notAnAdapter: 0x102,
  /** A MapRegisterBase, list, vector or common buffer that this adapter never handed out. */
  foreignHandle: 0x103,
  /** FreeMapRegisters with another count than AllocateAdapterChannel granted. */
  mapRegisterCountMismatch: 0x104,
  /** An argument that cannot be represented in its C type (a fractional ULONG, a non-function). */
  badArgument: 0x105,
  /** FreeCommonBuffer arguments that do not match the allocation. */
  commonBufferMismatch: 0x106,
  /** The mapping strategy could not map a granted request (out of IOMMU page-table memory). */
  mappingFailed: 0x107,
  /** Not an MDL, or an MDL already freed. */
  badMdl: 0x108,
  /** FreeMapRegisters on registers a scatter/gather list owns (PutScatterGatherList frees them). */
  registersOwnedByList: 0x109,
} as const;

export function dmaViolation(p1: number, p2: number, p3: number, p4: number, explanation: string): BugCheck {
  return new BugCheck(DRIVER_VERIFIER_DMA_VIOLATION, [p1, p2, p3, p4], explanation);
}

/** 0xE6 / 0x00 with a HAL rule. */
export function halViolation(rule: number, p3: number, p4: number, explanation: string): BugCheck {
  return dmaViolation(DmaViolation.miscellaneous, rule, p3, p4, explanation);
}

/** What the WDK page of a member requires of the caller's IRQL. */
export type IrqlRequirement = "passive" | "dispatch" | "at-most-dispatch" | "any";

/**
 * DRIVER_VERIFIER_DMA_VIOLATION 0x13: p2 = 1 when the IRQL must equal p3, 2 when it must not
 * exceed p3; p4 is the current IRQL.
 */
export function checkIrql(current: number, requirement: IrqlRequirement, member: string): void {
  switch (requirement) {
    case "any":
      return;
    case "passive":
      if (current !== PASSIVE_LEVEL)
        throw wrongIrql(1, PASSIVE_LEVEL, current, `${member} must be called at PASSIVE_LEVEL`);
      return;
    case "dispatch":
      if (current !== DISPATCH_LEVEL)
        throw wrongIrql(1, DISPATCH_LEVEL, current, `${member} must be called at DISPATCH_LEVEL`);
      return;
    case "at-most-dispatch":
      if (current > DISPATCH_LEVEL)
        throw wrongIrql(2, DISPATCH_LEVEL, current, `${member} must be called at IRQL <= DISPATCH_LEVEL`);
      return;
  }
}

function wrongIrql(kind: number, expected: number, current: number, explanation: string): BugCheck {
  return dmaViolation(
    DmaViolation.wrongIrql,
    kind,
    expected,
    current,
    `${explanation}, not at IRQL ${current}`,
  );
}

/** DMA_COMMON_BUFFER_VECTOR_ERROR parameter 1 values (documented). */
export const VectorError = {
  wrongIrql: 0x1,
  notEmpty: 0x2,
  indexOutOfBounds: 0x3,
  alreadyFreed: 0x4,
} as const;

export function vectorError(p1: number, p2: number, p3: number, p4: number, explanation: string): BugCheck {
  return new BugCheck(DMA_COMMON_BUFFER_VECTOR_ERROR, [p1, p2, p3, p4], explanation);
}
