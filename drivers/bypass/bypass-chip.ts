/**
 * What the bypass driver needs from each chip it supports: how to describe it to IoGetDmaAdapter,
 * how to set it up, how to start a transfer at a PHYSICAL address (the whole point of this
 * driver), and how to tell its interrupt and the transfer's result.
 */
import type { DEVICE_DESCRIPTION, NTSTATUS, PVOID } from "../../src/ddi/index.js";

/** One request, as StartIo hands it to the chip. */
export interface BypassTransfer {
  /** System address of the buffer (MmGetSystemAddressForMdlSafe). */
  readonly va: PVOID;
  readonly length: number;
  /** true: memory to device (IRP_MJ_WRITE). */
  readonly write: boolean;
  /** IRP ByteOffset, for a chip with a medium. */
  readonly byteOffset: number;
}

export interface BypassChip {
  readonly name: string;
  /** The DEVICE_DESCRIPTION a careful driver would give for this chip. */
  description(): DEVICE_DESCRIPTION;
  /** Largest request the chip takes at once. */
  readonly maximumTransfer: number;
  /** After the registers are mapped: set the chip up. */
  initialize(): NTSTATUS;
  /** Programs the chip; false if the request cannot be started. */
  start(transfer: BypassTransfer): boolean;
  /** In the ISR: true when the chip interrupted (and the interrupt was acknowledged). */
  interrupted(): boolean;
  /** In the DPC: the status of the transfer that ended. */
  result(): NTSTATUS;
  /** Quiesces the chip and frees what initialize allocated. */
  shutdown(): void;
}
