/**
 * The hypervisor's events on the HOST machine's bus (declaration merging into MachineEvents).
 * Payloads are plain data; emitters build them only when someone listens.
 */

/** What a hypercall was for. */
export type HypercallKind =
  | "invalidate-pages"
  | "invalidate-domain"
  | "invalidate-all"
  | "context"
  | "pv-attach"
  | "pv-map"
  | "pv-sync"
  | "pv-coherent";

/** One trap into the hypervisor. */
export interface VirtHypercallEvent {
  readonly guest: string;
  readonly kind: HypercallKind;
  /** Guest pages the hypervisor handled. */
  readonly pages: number;
  /** Virtual ns charged: the trap plus the per-page work. */
  readonly costNs: number;
}

/** A device was assigned to a guest, or taken back. */
export interface VirtAssignEvent {
  readonly guest: string;
  readonly action: "assign" | "unassign";
  readonly hostRequesterId: number;
  readonly guestRequesterId: number;
  readonly dmaInterface: string;
}

declare module "../trace/machine-events.js" {
  interface MachineEvents {
    "virt.hypercall": [VirtHypercallEvent];
    "virt.assign": [VirtAssignEvent];
  }
}
