/**
 * The HAL dispatcher's and the bounce path's events on the machine bus (declaration merging into
 * MachineEvents). "dma.map" and "dma.unmap" are declared with the remapping path's events
 * (remap-events.ts): both strategies emit them, so a trace reads the same in every mode.
 * Payloads are plain data, built only when `EventBus.hasListeners` says someone reads.
 */

/** IoGetDmaAdapter handed out an adapter, or PutDmaAdapter released one. */
export interface DmaAdapterEvent {
  /** AdapterObject.id. */
  readonly adapter: number;
  /** The device's PCI requester id, -1 when it has none. */
  readonly requesterId: number;
  readonly action: "open" | "close";
  /** DMA_OPERATIONS version of the adapter's table: 1, 2 or 3. */
  readonly tableVersion: number;
  readonly addressBits: number;
  readonly scatterGather: boolean;
  readonly numberOfMapRegisters: number;
  readonly strategy: "direct" | "remap";
  /** On close: things the driver still held (they leak, as on Windows). */
  readonly leaked: number;
}

/**
 * A step of the wait queues: a request for the adapter channel and map registers was made,
 * had to wait for the channel or for registers, was granted (its callback runs), cancelled, or
 * refused (more registers than the adapter's maximum, or a synchronous request that would wait).
 * "release" is the channel being freed.
 */
export interface DmaChannelEvent {
  readonly adapter: number;
  readonly requesterId: number;
  readonly action: "request" | "wait-channel" | "wait-registers" | "grant" | "cancel" | "refuse" | "release";
  readonly mapRegisters: number;
  /** AllocateAdapterChannel(Ex) ("channel") or a scatter/gather list request ("list"). */
  readonly kind: "channel" | "list";
}

/** Bytes copied between a driver's pages and bounce pages (map registers below the device's reach). */
export interface DmaBounceEvent {
  readonly adapter: number;
  readonly requesterId: number;
  /** in: into the bounce pages at MapTransfer (memory to device); out: back at the flush. */
  readonly direction: "in" | "out";
  /** Logical (bounce) address the device used. */
  readonly logicalAddress: number;
  readonly bytes: number;
}

/** A scatter/gather list was handed to a driver, or given back with PutScatterGatherList. */
export interface DmaScatterGatherEvent {
  readonly adapter: number;
  readonly requesterId: number;
  readonly action: "get" | "put";
  readonly elements: number;
  readonly bytes: number;
  readonly mapRegisters: number;
}

declare module "../trace/machine-events.js" {
  interface MachineEvents {
    "dma.adapter": [DmaAdapterEvent];
    "dma.channel": [DmaChannelEvent];
    "dma.bounce": [DmaBounceEvent];
    "dma.sglist": [DmaScatterGatherEvent];
  }
}
