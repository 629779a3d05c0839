/**
 * The page macros of wdm.h, on JS numbers (division, not 32-bit shifts: addresses pass 2^32).
 */
import { PAGE_SHIFT, PAGE_SIZE, spanPages } from "../platform/page.js";

export { PAGE_SHIFT, PAGE_SIZE };

export function BYTES_TO_PAGES(Size: number): number {
  return Math.ceil(Size / PAGE_SIZE);
}

export function ROUND_TO_PAGES(Size: number): number {
  return BYTES_TO_PAGES(Size) * PAGE_SIZE;
}

export function BYTE_OFFSET(Va: number): number {
  return Va % PAGE_SIZE;
}

export function PAGE_ALIGN(Va: number): number {
  return Va - (Va % PAGE_SIZE);
}

export function ADDRESS_AND_SIZE_TO_SPAN_PAGES(Va: number, Size: number): number {
  return spanPages(Va, Size);
}
