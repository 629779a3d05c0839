/**
 * A bug check (KeBugCheckEx): the simulated machine stops. Thrown where Windows would crash:
 * verifier violations (0xE6), IOMMU faults under a fault policy, misuse the HAL cannot survive.
 */
export const DRIVER_VERIFIER_DMA_VIOLATION = 0xe6;
export const IRQL_NOT_LESS_OR_EQUAL = 0x0a;
export const DRIVER_IRQL_NOT_LESS_OR_EQUAL = 0xd1;
export const DMA_COMMON_BUFFER_VECTOR_ERROR = 0x1dc;
export const HAL_ILLEGAL_IOMMU_PAGE_FAULT = 0x159;

const CODE_NAMES: Record<number, string> = {
  [DRIVER_VERIFIER_DMA_VIOLATION]: "DRIVER_VERIFIER_DMA_VIOLATION",
  [IRQL_NOT_LESS_OR_EQUAL]: "IRQL_NOT_LESS_OR_EQUAL",
  [DRIVER_IRQL_NOT_LESS_OR_EQUAL]: "DRIVER_IRQL_NOT_LESS_OR_EQUAL",
  [DMA_COMMON_BUFFER_VECTOR_ERROR]: "DMA_COMMON_BUFFER_VECTOR_ERROR",
  [HAL_ILLEGAL_IOMMU_PAGE_FAULT]: "HAL_ILLEGAL_IOMMU_PAGE_FAULT",
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
