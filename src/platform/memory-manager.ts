/**
 * The memory manager's MDL routines, below the DDI: IoAllocateMdl, IoFreeMdl,
 * MmBuildMdlForNonPagedPool, MmProbeAndLockPages, MmUnlockPages and
 * MmGetSystemAddressForMdlSafe, plus the physical-run walk the HAL builds scatter/gather lists
 * and map transfers from. Every routine validates first and leaves the MDL unchanged on error.
 */
import { inject, injectable } from "inversify";
import { FrameAllocator } from "./frame-allocator.js";
import { isKernelAddress, KernelMemory } from "./kernel-memory.js";
import { type LockOperation, Mdl } from "./mdl.js";
import { checkAddress, checkLength, formatAddress, GiB, PAGE_SIZE } from "./page.js";
import { PlatformError } from "./platform-error.js";
import { type ProcessAddressSpace, USER_SPACE_END } from "./process-address-space.js";

/** IoAllocateMdl's limit on Length (MAXULONG rounded down to whole pages). */
export const MAX_MDL_LENGTH = 4 * GiB - PAGE_SIZE;

export interface MdlOptions {
  /** IoAllocateMdl(SecondaryBuffer = TRUE): append the new MDL at the end of this chain. */
  readonly chainTo?: Mdl;
  /** The process whose user addresses `va` names; omitted for kernel addresses. */
  readonly process?: ProcessAddressSpace;
}

/** Receives one physically contiguous run; return false to stop the walk. */
export type PhysicalRunVisitor = (physicalAddress: number, length: number, mdl: Mdl) => boolean | undefined;

@injectable()
export class MemoryManager {
  readonly #kernel: KernelMemory;
  readonly #mappingOwner: number;
  #nextMdlId = 1;

  constructor(@inject(KernelMemory) kernel: KernelMemory, @inject(FrameAllocator) frames: FrameAllocator) {
    this.#kernel = kernel;
    this.#mappingOwner = frames.registerOwner("system-ptes");
  }

  /** IoAllocateMdl: an MDL describing [va, va + length); its PFNs are unknown until built or locked. */
  allocateMdl(va: number, length: number, options: MdlOptions = {}): Mdl {
    checkAddress(va, "MDL virtual address", 48);
    checkLength(length, "MDL length", MAX_MDL_LENGTH);
    if (length === 0) throw new PlatformError("bad-length", "an MDL must describe at least one byte");
    const { process, chainTo } = options;
    if (process !== undefined) {
      if (process.destroyed) throw new PlatformError("bad-handle", `process ${process.id} was destroyed`);
      if (va + length > USER_SPACE_END) {
        throw new PlatformError(
          "bad-address",
          `${formatAddress(va)}+${formatAddress(length)} is not a user range`,
        );
      }
    } else if (!isKernelAddress(va) || !isKernelAddress(va + length - 1)) {
      throw new PlatformError(
        "bad-address",
        `${formatAddress(va)}+${formatAddress(length)} is not a kernel range`,
      );
    }
    if (chainTo !== undefined) this.#checkLive(chainTo);
    const mdl = new Mdl(this.#nextMdlId++, va, length, process);
    if (chainTo !== undefined) {
      let last = chainTo;
      while (last.next !== undefined) last = last.next;
      last.next = mdl;
    }
    return mdl;
  }

  /** IoFreeMdl. Freeing a locked MDL (pages still pinned) or freeing twice is an error. */
  freeMdl(mdl: Mdl): void {
    this.#checkLive(mdl);
    if (mdl.locked)
      throw new PlatformError("bad-state", `MDL ${mdl.id} is still locked: call MmUnlockPages first`);
    mdl.freed = true;
  }

  /** MmBuildMdlForNonPagedPool: fills the PFNs of a nonpaged kernel buffer. */
  buildForNonPagedPool(mdl: Mdl): void {
    this.#checkLive(mdl);
    if (mdl.process !== undefined)
      throw new PlatformError("bad-address", `MDL ${mdl.id} describes user memory`);
    if (mdl.resident) throw new PlatformError("bad-state", `MDL ${mdl.id} already has its pages`);
    const va = mdl.virtualAddress;
    if (!this.#kernel.isMapped(va, mdl.byteCount)) {
      throw new PlatformError(
        "not-mapped",
        `MDL ${mdl.id} buffer ${formatAddress(va)} is not nonpaged memory`,
      );
    }
    mdl.pfns = this.#kernelPfns(mdl);
    mdl.systemVa = va;
    mdl.flags.add("sourceIsNonPagedPool");
  }

  /**
   * MmProbeAndLockPages: makes the pages resident and pins user pages (the process's locked
   * memory limit applies). A hole anywhere in the buffer raises "not-mapped" (Windows raises
   * STATUS_ACCESS_VIOLATION) and nothing is locked.
   */
  probeAndLock(mdl: Mdl, operation: LockOperation): void {
    this.#checkLive(mdl);
    if (operation !== "read" && operation !== "write" && operation !== "modify") {
      throw new PlatformError(
        "out-of-range",
        `lock operation ${String(operation)} is not read, write or modify`,
      );
    }
    if (mdl.resident) throw new PlatformError("bad-state", `MDL ${mdl.id} is already locked or built`);
    const va = mdl.virtualAddress;
    const process = mdl.process;
    if (process === undefined) {
      if (!this.#kernel.isMapped(va, mdl.byteCount)) {
        throw new PlatformError("not-mapped", `MDL ${mdl.id} buffer ${formatAddress(va)} is not mapped`);
      }
      mdl.pfns = this.#kernelPfns(mdl);
    } else {
      if (process.destroyed) throw new PlatformError("bad-handle", `process ${process.id} was destroyed`);
      process.pin(va, mdl.byteCount);
      const pfns: number[] = [];
      for (let page = 0; page < mdl.pageCount; page++) {
        pfns.push(Math.floor(process.translate(mdl.startVa + page * PAGE_SIZE) / PAGE_SIZE));
      }
      mdl.pfns = pfns;
    }
    mdl.locked = true;
    mdl.operation = operation;
    mdl.flags.add("pagesLocked");
    if (operation !== "read") mdl.flags.add("writeOperation");
  }

  /** MmUnlockPages: unpins, and removes a system mapping made for the MDL. */
  unlock(mdl: Mdl): void {
    this.#checkLive(mdl);
    if (!mdl.locked) throw new PlatformError("bad-state", `MDL ${mdl.id} is not locked`);
    mdl.process?.unpin(mdl.virtualAddress, mdl.byteCount);
    if (mdl.flags.has("mappedToSystemVa")) {
      this.#kernel.unmapPages(mdl.systemVa! - mdl.byteOffset);
      mdl.flags.delete("mappedToSystemVa");
    }
    mdl.systemVa = undefined;
    mdl.pfns = [];
    mdl.locked = false;
    mdl.operation = undefined;
    mdl.flags.delete("pagesLocked");
    mdl.flags.delete("writeOperation");
  }

  /** MmGetMdlVirtualAddress. */
  virtualAddress(mdl: Mdl): number {
    return mdl.virtualAddress;
  }

  /**
   * MmGetSystemAddressForMdlSafe: the buffer's kernel address. Kernel buffers are their own
   * system address; locked user pages get mapped into system space once (MmMapLockedPages).
   */
  systemAddress(mdl: Mdl): number {
    this.#checkLive(mdl);
    if (mdl.systemVa !== undefined) return mdl.systemVa;
    if (!mdl.resident) throw new PlatformError("bad-state", `MDL ${mdl.id} is neither locked nor built`);
    if (mdl.process === undefined) {
      mdl.systemVa = mdl.virtualAddress;
      return mdl.systemVa;
    }
    const base = this.#kernel.mapPages(mdl.pfns, this.#mappingOwner);
    mdl.systemVa = base + mdl.byteOffset;
    mdl.flags.add("mappedToSystemVa");
    return mdl.systemVa;
  }

  /** Bytes described by the chain starting at `mdl`. */
  chainLength(mdl: Mdl): number {
    let total = 0;
    for (let m: Mdl | undefined = mdl; m !== undefined; m = m.next) total += m.byteCount;
    return total;
  }

  /**
   * Visits [offset, offset + length) of the chain starting at `mdl` (offset 0 = the first MDL's
   * virtual address) as physically contiguous runs. Adjacent frames within one MDL are merged;
   * runs never span two MDLs. Every MDL touched must be locked or built.
   */
  physicalRuns(mdl: Mdl, offset: number, length: number, visit: PhysicalRunVisitor): void {
    checkLength(offset, "offset");
    checkLength(length, "length");
    const total = this.chainLength(mdl);
    if (offset + length > total) {
      throw new PlatformError(
        "out-of-range",
        `range ${offset}+${length} is beyond the MDL chain's ${total} bytes`,
      );
    }
    for (
      let m: Mdl | undefined = mdl, skip = offset, left = length;
      m !== undefined && left > 0;
      m = m.next
    ) {
      if (skip >= m.byteCount) {
        skip -= m.byteCount;
        continue;
      }
      this.#checkLive(m);
      if (!m.resident) throw new PlatformError("bad-state", `MDL ${m.id} is neither locked nor built`);
      const take = Math.min(left, m.byteCount - skip);
      if (!this.#runsOf(m, skip, take, visit)) return;
      left -= take;
      skip = 0;
    }
  }

  /** Returns false when the visitor asked to stop. */
  #runsOf(mdl: Mdl, offset: number, length: number, visit: PhysicalRunVisitor): boolean {
    let position = mdl.byteOffset + offset;
    const end = position + length;
    while (position < end) {
      let page = Math.floor(position / PAGE_SIZE);
      const start = mdl.pfns[page]! * PAGE_SIZE + (position % PAGE_SIZE);
      let runEnd = Math.min(end, (page + 1) * PAGE_SIZE);
      while (runEnd < end && mdl.pfns[page + 1] === mdl.pfns[page]! + 1) {
        page++;
        runEnd = Math.min(end, (page + 1) * PAGE_SIZE);
      }
      if (visit(start, runEnd - position, mdl) === false) return false;
      position = runEnd;
    }
    return true;
  }

  #kernelPfns(mdl: Mdl): number[] {
    const pfns: number[] = [];
    for (let page = 0; page < mdl.pageCount; page++) {
      pfns.push(Math.floor(this.#kernel.physicalAddress(mdl.startVa + page * PAGE_SIZE) / PAGE_SIZE));
    }
    return pfns;
  }

  #checkLive(mdl: Mdl): void {
    if (!(mdl instanceof Mdl)) throw new PlatformError("bad-handle", "not an MDL");
    if (mdl.freed) throw new PlatformError("double-free", `MDL ${mdl.id} was freed`);
  }
}
