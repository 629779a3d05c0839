/**
 * THE barrel: everything a driver may import, and nothing else. Drivers (drivers/*, test drivers)
 * import only this file; test/layering.test.ts keeps it so. Host code (samples, tests) reaches
 * the IoManager and the machine through their own modules.
 */
export { ContainerModule, inject, injectable, postConstruct } from "inversify";
export * from "../hal/wdm/bug-check.js";
export * from "../hal/wdm/device-description.js";
export * from "../hal/wdm/device-object.js";
export * from "../hal/wdm/dma-operations.js";
export * from "../hal/wdm/dma-v3-types.js";
export * from "../hal/wdm/io-allocation-action.js";
export * from "../hal/wdm/iommu-interface.js";
export * from "../hal/wdm/irql.js";
export * from "../hal/wdm/ntstatus.js";
export * from "../hal/wdm/scatter-gather-list.js";
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
  SPIN_LOCK_ALREADY_OWNED,
  SPIN_LOCK_NOT_OWNED,
} from "./bug-check-codes.js";
export { DriverContribution } from "./driver.js";
export * from "./io-constants.js";
export { KAPC_STATE, type PEPROCESS } from "./kapc-state.js";
export { type KDEFERRED_ROUTINE, KDPC } from "./kdpc.js";
export { type IO_DPC_ROUTINE, Kernel } from "./kernel.js";
export { KINTERRUPT, type KSERVICE_ROUTINE, type KSYNCHRONIZE_ROUTINE } from "./kinterrupt.js";
export { KSPIN_LOCK } from "./kspin-lock.js";
export * from "./mm-constants.js";
export * from "./page-macros.js";
export * from "./pool-type.js";
