/**
 * KAPC_STATE: caller-allocated storage for KeStackAttachProcess, remembering the process context
 * to return to at KeUnstackDetachProcess. PEPROCESS is a process of the simulated machine.
 */
import type { ProcessAddressSpace } from "../platform/process-address-space.js";

export type PEPROCESS = ProcessAddressSpace;

export class KAPC_STATE {
  /** The process attached to by the KeStackAttachProcess that used this state, while attached. */
  Process: PEPROCESS | undefined = undefined;
}
