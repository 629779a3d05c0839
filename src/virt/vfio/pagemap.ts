/**
 * /proc/<pid>/pagemap: one 64-bit entry per virtual page, bit 63 "present" and bits 0-54 the
 * page frame number (Documentation/admin-guide/mm/pagemap.rst). It is how user space finds the
 * physical address of its own memory, as DPDK does in noiommu mode, and what the naive path of
 * the seed's question hands its device. Linux shows the PFNs only to CAP_SYS_ADMIN (since 4.2);
 * the model assumes the process has it.
 *
 * A physical address is only a bus address while nothing remaps the device's DMA: with the
 * IOMMU on, the device's requests go through its domain, where no such address is mapped.
 */
import { formatAddress, PAGE_SIZE } from "../../platform/page.js";
import { PlatformError } from "../../platform/platform-error.js";
import type { ProcessAddressSpace } from "../../platform/process-address-space.js";

export interface PagemapEntry {
  /** Bit 63: the page is present in RAM. */
  readonly present: boolean;
  /** Bits 0-54: the frame of the page (0 when not present). */
  readonly pfn: number;
}

const PFN_BITS = 2 ** 55;
const PRESENT = 2n ** 63n;

export class Pagemap {
  readonly #process: ProcessAddressSpace;

  constructor(process: ProcessAddressSpace) {
    this.#process = process;
  }

  /** The entry of the page holding `va`. */
  entry(va: number): PagemapEntry {
    if (!this.#process.isMapped(va, 1)) return { present: false, pfn: 0 };
    return { present: true, pfn: Math.floor(this.#process.translate(va) / PAGE_SIZE) % PFN_BITS };
  }

  /** The raw 64-bit word, as read(2) from the pagemap file returns it. */
  word(va: number): bigint {
    const { present, pfn } = this.entry(va);
    return present ? PRESENT | BigInt(pfn) : 0n;
  }

  /** pfn * PAGE_SIZE + offset: "virt_to_phys" in user space; "not-mapped" for an absent page. */
  physicalAddress(va: number): number {
    const { present, pfn } = this.entry(va);
    if (!present) throw new PlatformError("not-mapped", `pagemap: ${formatAddress(va)} is not present`);
    return pfn * PAGE_SIZE + (va % PAGE_SIZE);
  }
}
