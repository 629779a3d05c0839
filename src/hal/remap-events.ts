/**
 * The remapping path's events on the machine bus (declaration merging into MachineEvents).
 * Payloads are plain data; they are built only when `EventBus.hasListeners` says someone reads.
 */

/** Which way the data moves: to the device (it reads memory), from it, or both (common buffers). */
export type DmaDirection = "to-device" | "from-device" | "bidirectional";

/** A logical range was made reachable for a device. */
export interface DmaMapEvent {
  /** AdapterObject.id. */
  readonly adapter: number;
  /** The device's PCI requester id, -1 when it has none. */
  readonly requesterId: number;
  /** The logical address the device is given (an IOVA under remapping), byte exact. */
  readonly iova: number;
  readonly length: number;
  /** IOVA pages mapped. */
  readonly pages: number;
  readonly direction: DmaDirection;
  /** A MapTransfer piece, a common buffer, or a common buffer made from a driver's MDL. */
  readonly kind: "transfer" | "common-buffer" | "mdl-common-buffer";
  /** Sub-page bounce pages used for it (untrusted devices). */
  readonly bounced: number;
}

/** A logical range was taken away. `policy` says how its IOTLB entries go. */
export interface DmaUnmapEvent {
  readonly adapter: number;
  readonly requesterId: number;
  readonly iova: number;
  readonly length: number;
  readonly pages: number;
  readonly kind: "transfer" | "common-buffer" | "mdl-common-buffer";
  /** strict: invalidated before this event; lazy: queued until the flush queue's invalidation. */
  readonly policy: "strict" | "lazy";
}

/** The HAL invalidated IOTLB entries of a domain, on every unit it is attached to. */
export interface DmaInvalidateEvent {
  /** DmaDomain.id. */
  readonly domain: number;
  /** page: page-selective at an unmap (strict); domain: the flush queue's single invalidation. */
  readonly kind: "page" | "domain";
  /** First IOVA (0 for a domain-selective invalidation). */
  readonly iova: number;
  /** Pages invalidated; for a domain-selective flush, the IOVA pages whose ranges it releases. */
  readonly pages: number;
  /** Unmapped ranges the invalidation retires (1 for a page-selective one). */
  readonly ranges: number;
}

declare module "../trace/machine-events.js" {
  interface MachineEvents {
    "dma.map": [DmaMapEvent];
    "dma.unmap": [DmaUnmapEvent];
    "dma.invalidate": [DmaInvalidateEvent];
  }
}
