/**
 * The IOMMU's events on the machine bus (declaration merging into MachineEvents). Payloads are
 * plain data. Emitters build a payload only when `EventBus.hasListeners` says someone reads it.
 */
import type { DmaAccess } from "../platform/dma-remapper.js";

/**
 * A translation fault the unit processed (not one a context's FPD suppressed). `recorded` is
 * false when the fault recording logic dropped it (same-source collapse or overflow).
 */
export interface IommuFaultEvent {
  readonly unit: string;
  readonly requesterId: number;
  /** The faulting bus address (the fault record keeps its page address). */
  readonly address: number;
  readonly access: DmaAccess;
  readonly reason: number;
  readonly recorded: boolean;
}

/** The unit sent its fault event interrupt (FECTL.IM clear): software should read the records. */
export interface IommuFaultInterruptEvent {
  readonly unit: string;
  /** FSTS when the interrupt was sent. */
  readonly faultStatus: number;
}

export type IommuInvalidationKind =
  | "context-global"
  | "context-domain"
  | "context-device"
  | "iotlb-global"
  | "iotlb-domain"
  | "iotlb-page";

/** An invalidation command a unit executed. Unused fields are 0. */
export interface IommuInvalidateEvent {
  readonly unit: string;
  readonly kind: IommuInvalidationKind;
  readonly domainId: number;
  readonly requesterId: number;
  readonly address: number;
  readonly pages: number;
  /** IOTLB entries the command dropped. */
  readonly dropped: number;
}

/** A context entry was written: a device was attached, set to pass-through, or detached. */
export interface IommuContextEvent {
  readonly unit: string;
  readonly requesterId: number;
  readonly kind: "attach" | "passthrough" | "detach";
  /** The unit's domain id in the entry (for detach: the one it had). */
  readonly domainId: number;
}

declare module "../trace/machine-events.js" {
  interface MachineEvents {
    "iommu.fault": [IommuFaultEvent];
    "iommu.fault-interrupt": [IommuFaultInterruptEvent];
    "iommu.invalidate": [IommuInvalidateEvent];
    "iommu.context": [IommuContextEvent];
  }
}
