/**
 * A memory descriptor list: a virtually contiguous buffer described as the physical frames of
 * the pages it spans (WDK "Using MDLs"). MemoryManager creates, fills, locks and frees them; the
 * fields follow the MDL structure: StartVa (page aligned), ByteOffset, ByteCount, the PFN array
 * that follows the header, Next for chains, Process, MappedSystemVa and MdlFlags.
 */
import { PAGE_SIZE } from "./page.js";
import type { ProcessAddressSpace } from "./process-address-space.js";

/** MDL_* flags, camelCased: MDL_SOURCE_IS_NONPAGED_POOL is "sourceIsNonPagedPool". */
export type MdlFlag =
  /** MDL_PAGES_LOCKED: MmProbeAndLockPages succeeded. */
  | "pagesLocked"
  /** MDL_SOURCE_IS_NONPAGED_POOL: built by MmBuildMdlForNonPagedPool. */
  | "sourceIsNonPagedPool"
  /** MDL_MAPPED_TO_SYSTEM_VA: systemVa is a mapping made for this MDL. */
  | "mappedToSystemVa"
  /** MDL_WRITE_OPERATION: locked for IoWriteAccess or IoModifyAccess. */
  | "writeOperation";

export type LockOperation = "read" | "write" | "modify";

export class Mdl {
  /** A serial number for traces and verifier reports. */
  readonly id: number;
  /** Page-aligned start of the first page (MmGetMdlBaseVa). */
  readonly startVa: number;
  /** Offset of the buffer in its first page (MmGetMdlByteOffset). */
  readonly byteOffset: number;
  /** Buffer length (MmGetMdlByteCount). */
  readonly byteCount: number;
  /** undefined: kernel space; otherwise the process whose addresses these are. */
  readonly process: ProcessAddressSpace | undefined;
  /** One PFN per spanned page once built or locked; empty before. */
  pfns: number[] = [];
  /** The next MDL of a chain (Irp->MdlAddress->Next). */
  next: Mdl | undefined;
  locked = false;
  /** MappedSystemVa: where the buffer is visible in system space, once known. */
  systemVa: number | undefined;
  readonly flags = new Set<MdlFlag>();
  operation: LockOperation | undefined;
  freed = false;

  constructor(id: number, va: number, byteCount: number, process: ProcessAddressSpace | undefined) {
    this.id = id;
    this.byteOffset = va % PAGE_SIZE;
    this.startVa = va - this.byteOffset;
    this.byteCount = byteCount;
    this.process = process;
  }

  /** MmGetMdlVirtualAddress: startVa + byteOffset. */
  get virtualAddress(): number {
    return this.startVa + this.byteOffset;
  }

  /** ADDRESS_AND_SIZE_TO_SPAN_PAGES of the buffer: the length of the PFN array. */
  get pageCount(): number {
    return Math.floor((this.byteOffset + this.byteCount - 1) / PAGE_SIZE) + 1;
  }

  /** True when the PFN array is valid: the pages are locked or come from the nonpaged pool. */
  get resident(): boolean {
    return this.locked || this.flags.has("sourceIsNonPagedPool");
  }
}
