/**
 * Mappings of device registers into system space (MmMapIoSpace): a kernel virtual range that
 * stands for a BAR's physical range, so that READ_REGISTER_ULONG(va) is a CPU access to MMIO as
 * in C. The range lives in the top sixteenth of the system-PTE region, far above anything
 * KernelMemory hands out, with an unmapped guard page after each mapping; addresses are never
 * reused, so a stale register pointer faults instead of reaching another device.
 */
import { injectable } from "inversify";
import { KERNEL_SPACE_END } from "../platform/kernel-memory.js";
import { PAGE_SIZE } from "../platform/page.js";

export const IO_SPACE_START = 0xf000_0000_0000;

interface IoMapping {
  readonly va: number;
  readonly physicalAddress: number;
  readonly length: number;
}

@injectable()
export class IoSpace {
  /** Sorted by VA: addresses only grow. */
  #mappings: IoMapping[] = [];
  #nextVa = IO_SPACE_START;

  /** Maps [physicalAddress, +length); the VA keeps the page offset. Undefined when space is exhausted. */
  map(physicalAddress: number, length: number): number | undefined {
    const offset = physicalAddress % PAGE_SIZE;
    const pages = Math.ceil((offset + length) / PAGE_SIZE);
    if (this.#nextVa + (pages + 1) * PAGE_SIZE > KERNEL_SPACE_END) return undefined;
    const va = this.#nextVa + offset;
    this.#nextVa += (pages + 1) * PAGE_SIZE;
    this.#mappings.push({ va, physicalAddress, length });
    return va;
  }

  /** MmUnmapIoSpace: true when [va, +length) is exactly a mapping made by map(). */
  unmap(va: number, length: number): boolean {
    const index = this.#mappings.findIndex((m) => m.va === va && m.length === length);
    if (index < 0) return false;
    this.#mappings.splice(index, 1);
    return true;
  }

  /** The physical address behind `va`, when a mapping covers [va, va + length). */
  physicalAddress(va: number, length = 1): number | undefined {
    const mapping = this.#find(va);
    if (mapping === undefined || va + length > mapping.va + mapping.length) return undefined;
    return mapping.physicalAddress + (va - mapping.va);
  }

  /** True for an address in the I/O space window (mapped or not). */
  contains(va: number): boolean {
    return Number.isSafeInteger(va) && va >= IO_SPACE_START && va < KERNEL_SPACE_END;
  }

  #find(va: number): IoMapping | undefined {
    let low = 0;
    let high = this.#mappings.length - 1;
    while (low <= high) {
      const middle = (low + high) >>> 1;
      const m = this.#mappings[middle]!;
      if (va < m.va) high = middle - 1;
      else if (va >= m.va + m.length) low = middle + 1;
      else return m;
    }
    return undefined;
  }
}
