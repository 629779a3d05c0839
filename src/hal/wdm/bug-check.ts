/**
 * A bug check (KeBugCheckEx): the simulated machine stops. Thrown where Windows would crash:
 * verifier violations (0xE6), IOMMU faults under a fault policy, misuse the HAL cannot survive.
 */
export const DRIVER_VERIFIER_DMA_VIOLATION = 0xe6;
export const IRQL_NOT_LESS_OR_EQUAL = 0x0a;
export const DRIVER_IRQL_NOT_LESS_OR_EQUAL = 0xd1;
export const DMA_COMMON_BUFFER_VECTOR_ERROR = 0x1dc;
export const HAL_ILLEGAL_IOMMU_PAGE_FAULT = 0x159;
export const INVALID_PROCESS_ATTACH_ATTEMPT = 0x05;
export const INVALID_PROCESS_DETACH_ATTEMPT = 0x06;
export const IRQL_NOT_GREATER_OR_EQUAL = 0x09;
export const SPIN_LOCK_ALREADY_OWNED = 0x0f;
export const SPIN_LOCK_NOT_OWNED = 0x10;
export const MEMORY_MANAGEMENT = 0x1a;
export const KMODE_EXCEPTION_NOT_HANDLED = 0x1e;
export const MULTIPLE_IRP_COMPLETE_REQUESTS = 0x44;
export const PAGE_FAULT_IN_NONPAGED_AREA = 0x50;
export const PROCESS_HAS_LOCKED_PAGES = 0x76;
export const BAD_POOL_CALLER = 0xc2;
export const IRQL_UNEXPECTED_VALUE = 0xc8;
export const DRIVER_VERIFIER_IOMANAGER_VIOLATION = 0xc9;

const CODE_NAMES: Record<number, string> = {
  [DRIVER_VERIFIER_DMA_VIOLATION]: "DRIVER_VERIFIER_DMA_VIOLATION",
  [IRQL_NOT_LESS_OR_EQUAL]: "IRQL_NOT_LESS_OR_EQUAL",
  [DRIVER_IRQL_NOT_LESS_OR_EQUAL]: "DRIVER_IRQL_NOT_LESS_OR_EQUAL",
  [DMA_COMMON_BUFFER_VECTOR_ERROR]: "DMA_COMMON_BUFFER_VECTOR_ERROR",
  [HAL_ILLEGAL_IOMMU_PAGE_FAULT]: "HAL_ILLEGAL_IOMMU_PAGE_FAULT",
  [INVALID_PROCESS_ATTACH_ATTEMPT]: "INVALID_PROCESS_ATTACH_ATTEMPT",
  [INVALID_PROCESS_DETACH_ATTEMPT]: "INVALID_PROCESS_DETACH_ATTEMPT",
  [IRQL_NOT_GREATER_OR_EQUAL]: "IRQL_NOT_GREATER_OR_EQUAL",
  [SPIN_LOCK_ALREADY_OWNED]: "SPIN_LOCK_ALREADY_OWNED",
  [SPIN_LOCK_NOT_OWNED]: "SPIN_LOCK_NOT_OWNED",
  [MEMORY_MANAGEMENT]: "MEMORY_MANAGEMENT",
  [KMODE_EXCEPTION_NOT_HANDLED]: "KMODE_EXCEPTION_NOT_HANDLED",
  [MULTIPLE_IRP_COMPLETE_REQUESTS]: "MULTIPLE_IRP_COMPLETE_REQUESTS",
  [PAGE_FAULT_IN_NONPAGED_AREA]: "PAGE_FAULT_IN_NONPAGED_AREA",
  [PROCESS_HAS_LOCKED_PAGES]: "PROCESS_HAS_LOCKED_PAGES",
  [BAD_POOL_CALLER]: "BAD_POOL_CALLER",
  [IRQL_UNEXPECTED_VALUE]: "IRQL_UNEXPECTED_VALUE",
  [DRIVER_VERIFIER_IOMANAGER_VIOLATION]: "DRIVER_VERIFIER_IOMANAGER_VIOLATION",
};

export class BugCheck extends Error {
  readonly parameters: readonly [number, number, number, number];

  constructor(
    readonly code: number,
    parameters: readonly [number, number, number, number],
    readonly explanation: string,
  ) {
    const hex = (v: number): string => `0x${v.toString(16)}`;
    super(
      `*** STOP ${hex(code)} ${CODE_NAMES[code] ?? ""} (${parameters.map(hex).join(", ")}): ${explanation}`,
    );
    this.name = "BugCheck";
    this.parameters = parameters;
  }

  get codeName(): string {
    return CODE_NAMES[this.code] ?? `0x${this.code.toString(16)}`;
  }
}
