/**
 * PCI requester ids: the 16-bit source id (bus << 8 | device << 3 | function) that tags every
 * DMA request and picks the device's context entry in the IOMMU (VT-d 3.4.1). Text form is
 * lspci's "BB:DD.F" in hex, as VT-d fault logs print it ("Request device [00:02.0]").
 */
import { PlatformError } from "./platform-error.js";

export interface PciAddress {
  readonly bus: number;
  readonly device: number;
  readonly function: number;
}

export const MAX_PCI_BUS = 255;
export const MAX_PCI_DEVICE = 31;
export const MAX_PCI_FUNCTION = 7;

/** The requester id of bus:device.function; throws a PlatformError for an out-of-range part. */
export function requesterId(bus: number, device: number, fn: number): number {
  checkPart(bus, "bus", MAX_PCI_BUS);
  checkPart(device, "device", MAX_PCI_DEVICE);
  checkPart(fn, "function", MAX_PCI_FUNCTION);
  return (bus << 8) | (device << 3) | fn;
}

/** Throws a PlatformError unless `rid` is a 16-bit requester id. */
export function checkRequesterId(rid: number): number {
  if (!Number.isInteger(rid) || rid < 0 || rid > 0xffff) {
    throw new PlatformError("out-of-range", `requester id ${String(rid)} is not an integer in [0, 0xffff]`);
  }
  return rid;
}

export function decodeRequesterId(rid: number): PciAddress {
  checkRequesterId(rid);
  return { bus: rid >> 8, device: (rid >> 3) & 0x1f, function: rid & 7 };
}

/** "00:02.0" for requester id 0x10. */
export function formatRequesterId(rid: number): string {
  const { bus, device, function: fn } = decodeRequesterId(rid);
  return `${hex(bus, 2)}:${hex(device, 2)}.${fn}`;
}

/** Parses "BB:DD.F" (hex, as lspci prints it) into a requester id. */
export function parseRequesterId(text: string): number {
  const match = /^([0-9a-fA-F]{1,2}):([0-9a-fA-F]{1,2})\.([0-7])$/.exec(text);
  if (match === null) {
    throw new PlatformError("out-of-range", `PCI address "${text}" is not of the form BB:DD.F (hex)`);
  }
  return requesterId(Number.parseInt(match[1]!, 16), Number.parseInt(match[2]!, 16), Number(match[3]));
}

function checkPart(value: number, what: string, max: number): void {
  if (!Number.isInteger(value) || value < 0 || value > max) {
    throw new PlatformError("out-of-range", `PCI ${what} ${String(value)} is not an integer in [0, ${max}]`);
  }
}

function hex(value: number, digits: number): string {
  return value.toString(16).padStart(digits, "0");
}
