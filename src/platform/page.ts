/**
 * Page arithmetic for 4 KiB frames on JS numbers. Addresses are doubles: x86-64's 52-bit physical
 * maximum fits exactly, so page math uses division and multiplication, never 32-bit bit operators.
 */
import { PlatformError } from "./platform-error.js";

export const PAGE_SHIFT = 12;
export const PAGE_SIZE = 4096;
export const LARGE_PAGE_SIZE = 2 * 1024 * 1024;
export const HUGE_PAGE_SIZE = 1024 * 1024 * 1024;
export const KiB = 1024;
export const MiB = 1024 * KiB;
export const GiB = 1024 * MiB;
export const TiB = 1024 * GiB;
/** x86-64 architectural maximum physical address width. */
export const MAX_PHYSICAL_ADDRESS_BITS = 52;

export function pageNumber(address: number): number {
  return Math.floor(address / PAGE_SIZE);
}

export function pageOffset(address: number): number {
  return address % PAGE_SIZE;
}

export function pageBase(address: number): number {
  return address - (address % PAGE_SIZE);
}

export function isPageAligned(address: number): boolean {
  return address % PAGE_SIZE === 0;
}

export function roundUpToPage(bytes: number): number {
  return Math.ceil(bytes / PAGE_SIZE) * PAGE_SIZE;
}

export function bytesToPages(bytes: number): number {
  return Math.ceil(bytes / PAGE_SIZE);
}

/** ADDRESS_AND_SIZE_TO_SPAN_PAGES: pages touched by [address, address + length). */
export function spanPages(address: number, length: number): number {
  if (length === 0) return 0;
  return pageNumber(address + length - 1) - pageNumber(address) + 1;
}

/**
 * Throws a PlatformError unless `value` is an integer address in [0, 2^bits). Catches negative,
 * fractional, NaN and too-wide addresses before they wrap silently.
 */
export function checkAddress(value: number, what: string, bits = MAX_PHYSICAL_ADDRESS_BITS): number {
  if (!Number.isSafeInteger(value) || value < 0 || value >= 2 ** bits) {
    throw new PlatformError(
      "bad-address",
      `${what} ${formatAddress(value)} is not an integer in [0, 2^${bits})`,
    );
  }
  return value;
}

/** Throws a PlatformError unless `value` is a non-negative safe integer (a length or count). */
export function checkLength(value: number, what: string, max = Number.MAX_SAFE_INTEGER): number {
  if (!Number.isSafeInteger(value) || value < 0 || value > max) {
    throw new PlatformError("bad-length", `${what} ${String(value)} is not an integer in [0, ${max}]`);
  }
  return value;
}

export function formatAddress(value: number): string {
  return Number.isSafeInteger(value) && value >= 0 ? `0x${value.toString(16)}` : String(value);
}
