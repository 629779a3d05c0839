/**
 * What every device model shares about DMA: turning the register or descriptor words a driver
 * programmed into a bus address, and keeping a DMA failure as a value the model must look at.
 *
 * A driver can program any 64-bit address. The DmaPort takes JS numbers below 2^53 and throws
 * for anything wider, since a model passing such a number is a model bug. An address a DRIVER
 * wrote is not a model bug: on the bus it is just an address that nothing decodes, so it ends as a
 * PCIe unsupported request ("unassigned"), never as an exception inside the device.
 */
import type { DmaPort } from "../platform/dma-port.js";
import type { DmaResult } from "../platform/dma-result.js";

/** A failed DmaResult: what a device keeps when a transfer did not complete. */
export type DmaFailure = Extract<DmaResult, { ok: false }>;

/** A DMA failure as the device saw it, for host-side diagnostics (demos, tests). */
export interface DeviceDmaError {
  /** What the device was doing ("tx descriptor read", "prp list read", ...). */
  readonly during: string;
  /** Virtual time (ns) of the failure. */
  readonly timeNs: number;
  readonly result: DmaFailure;
}

const TWO_POW_32 = 2 ** 32;

/** The 64-bit address `high:low` (two little-endian dwords). May exceed 2^53; see `dmaRead`. */
export function joinAddress(low: number, high: number): number {
  return (high >>> 0) * TWO_POW_32 + (low >>> 0);
}

/** Reads `dst.length` bytes at a driver-programmed bus address through the device's port. */
export function dmaRead(port: DmaPort, busAddress: number, dst: Uint8Array): DmaResult {
  if (!onTheBus(busAddress, dst.length)) return unreachable(busAddress, dst);
  return port.read(busAddress, dst);
}

/** Writes `src` to a driver-programmed bus address through the device's port. */
export function dmaWrite(port: DmaPort, busAddress: number, src: Uint8Array): DmaResult {
  if (!onTheBus(busAddress, src.length)) return unreachable(busAddress, undefined);
  return port.write(busAddress, src);
}

function onTheBus(busAddress: number, length: number): boolean {
  return Number.isSafeInteger(busAddress) && busAddress >= 0 && Number.isSafeInteger(busAddress + length);
}

/** The port's contract for a failed read (the buffer reads as all ones), without the port. */
function unreachable(busAddress: number, dst: Uint8Array | undefined): DmaFailure {
  dst?.fill(0xff);
  return { ok: false, kind: "unassigned", address: busAddress, faultReason: 0, bytesDone: 0 };
}
