/**
 * Kernel virtual memory: the nonpaged pool, contiguous memory and system mappings of locked
 * pages, each a run of 4 KiB pages mapped to (usually scattered) frames.
 *
 * Layout. Kernel addresses live in the canonical upper half of the 48-bit x86-64 address space,
 * [0xFFFF_8000_0000_0000, 2^64). They are kept here WITHOUT the sign extension, as
 * [0x8000_0000_0000, 0x1_0000_0000_0000), so they stay exact doubles; user addresses are below
 * 0x8000_0000_0000, as on Windows.
 *
 *   0x8000_0000_0000  nonpaged pool and contiguous memory (ExAllocatePool, MmAllocateContiguousMemory)
 *   0xC000_0000_0000  system PTEs: mappings of MDL pages (MmMapLockedPagesSpecifyCache)
 *
 * Virtual addresses are handed out upwards and never reused, with an unmapped guard page after
 * every mapping, so a stale pointer or an overrun faults ("not-mapped") instead of silently
 * reaching someone else's memory. Small allocations (up to 2 KiB) are carved first-fit, in
 * 16-byte granules, from shared pool pages, as the Windows small pool does, so allocations of
 * different drivers and sizes share physical pages: the frames of those pages belong to the
 * "nonpaged-pool" owner, and each allocation records its own owner.
 *
 * Caching. An allocation or mapping is cached unless asked otherwise (MmNonCached: common buffers
 * with CacheEnabled FALSE, MmAllocateContiguousMemorySpecifyCache): the attribute goes to
 * CpuMemory for its frames, and freeing or unmapping gives them back cached. Uncached memory
 * never comes from the shared small pool, whose pages other allocations use cached.
 */

import { inject, injectable } from "inversify";
import { CpuMemory } from "./cpu-memory.js";
import { FrameAllocator } from "./frame-allocator.js";
import { checkAddress, checkLength, formatAddress, PAGE_SIZE } from "./page.js";
import { forEachPhysicalRun, type RunVisitor } from "./physical-runs.js";
import { PlatformError } from "./platform-error.js";

export const KERNEL_SPACE_START = 0x8000_0000_0000;
export const KERNEL_SPACE_END = 0x1_0000_0000_0000;
export const NONPAGED_POOL_START = KERNEL_SPACE_START;
export const SYSTEM_PTE_START = 0xc000_0000_0000;
/** Largest small-pool allocation; larger ones get pages of their own. */
export const SMALL_POOL_MAX = 2048;
/** Small-pool block granularity and alignment (x64 pool blocks are 16-byte aligned). */
const GRANULE = 16;
const GRANULES = PAGE_SIZE / GRANULE;
/** Largest single allocation (1 TiB): keeps page counts far from overflow. */
const MAX_ALLOCATION = 2 ** 40;

export type KernelAllocationKind = "pool" | "small-pool" | "contiguous" | "system-mapping";

/** What lives at a kernel address (WinDbg's !pool, in short). */
export interface KernelAllocation {
  readonly va: number;
  /** Bytes asked for. */
  readonly size: number;
  readonly owner: number;
  readonly tag: string;
  readonly kind: KernelAllocationKind;
  /** Frames of the pages the allocation spans, in VA order. */
  readonly pfns: readonly number[];
  /** False when mapped non-cacheable (MmNonCached). */
  readonly cached: boolean;
}

export interface PoolRequest {
  readonly owner: number;
  /** Four-character pool tag, as ExAllocatePoolWithTag takes. */
  readonly tag?: string;
  /** Default true; false maps the pages non-cacheable, on pages of their own. */
  readonly cached?: boolean;
}

export interface ContiguousRequest {
  readonly owner: number;
  /** Inclusive highest acceptable physical address (MmAllocateContiguousMemory's HighestAcceptableAddress). */
  readonly maxAddress: number;
  readonly minAddress?: number;
  /** Run alignment in frames (BoundaryAddressMultiple-style), default 1. */
  readonly alignmentFrames?: number;
  readonly tag?: string;
  /** Default true: MmAllocateContiguousMemorySpecifyCache's CacheType is MmCached. */
  readonly cached?: boolean;
}

/** A run of mapped pages. */
interface Mapping {
  readonly va: number;
  readonly pfns: readonly number[];
  /** The allocation that owns the pages; a shared small-pool page has none. */
  readonly allocation: KernelAllocation | undefined;
}

/** A small-pool page: which allocation holds each 16-byte granule. */
interface SmallPoolPage {
  readonly va: number;
  readonly pfn: number;
  readonly granules: (KernelAllocation | undefined)[];
}

/**
 * Fields and helpers are TypeScript `private`, not `#`: tsx lowers #-members of decorated classes
 * to WeakMap helpers, which would sit on every DMA.
 */
@injectable()
export class KernelMemory {
  private readonly frames: FrameAllocator;
  private readonly cpu: CpuMemory;
  private readonly smallPoolOwner: number;
  /** Sorted by VA (VAs only grow, so appends keep the order). */
  private readonly mappings: Mapping[] = [];
  private readonly allocations = new Map<number, KernelAllocation>();
  private readonly smallPages: SmallPoolPage[] = [];
  /** Small-pool pages by the VA of their page. */
  private readonly smallPageAt = new Map<number, SmallPoolPage>();
  private readonly released = new Set<number>();
  private nextPoolVa = NONPAGED_POOL_START;
  private nextSystemVa = SYSTEM_PTE_START;

  constructor(@inject(FrameAllocator) frames: FrameAllocator, @inject(CpuMemory) cpu: CpuMemory) {
    this.frames = frames;
    this.cpu = cpu;
    this.smallPoolOwner = frames.registerOwner("nonpaged-pool");
  }

  /** The frame owner of shared small-pool pages. */
  get poolOwner(): number {
    return this.smallPoolOwner;
  }

  /**
   * ExAllocatePoolWithTag(NonPagedPool): frames scattered anywhere in RAM. Allocations of a page
   * or more are page aligned; smaller ones share pool pages. Contents are not zeroed (freed frames
   * hold the poison pattern, reused small slots their previous data), as on Windows.
   */
  allocateNonPaged(bytes: number, request: PoolRequest): number {
    checkSize(bytes);
    const tag = request.tag ?? "";
    const cached = request.cached ?? true;
    if (bytes <= SMALL_POOL_MAX && cached) {
      this.frames.ownerName(request.owner);
      return this.allocateSmall(bytes, request.owner, tag);
    }
    const pfns = this.frames.allocate(Math.ceil(bytes / PAGE_SIZE), { owner: request.owner });
    return this.map(pfns, bytes, request.owner, tag, "pool", cached);
  }

  /** MmAllocateContiguousMemorySpecifyCache: one physically contiguous run below maxAddress. */
  allocateContiguous(bytes: number, request: ContiguousRequest): number {
    checkSize(bytes);
    const pfns = this.frames.allocate(Math.ceil(bytes / PAGE_SIZE), {
      owner: request.owner,
      contiguous: true,
      alignment: request.alignmentFrames ?? 1,
      maxAddress: request.maxAddress,
      ...(request.minAddress === undefined ? {} : { minAddress: request.minAddress }),
    });
    return this.map(pfns, bytes, request.owner, request.tag ?? "", "contiguous", request.cached ?? true);
  }

  /**
   * ExFreePool / MmFreeContiguousMemory: `va` must be what an allocation returned. The frames go
   * back to the allocator (and are poisoned); small slots go back to their page.
   */
  free(va: number): void {
    const allocation = this.allocationStartingAt(va);
    if (allocation.kind === "system-mapping") {
      throw new PlatformError("bad-handle", `${formatAddress(va)} is a system mapping: use unmapPages`);
    }
    if (allocation.kind === "small-pool") {
      const page = this.smallPageAt.get(va - (va % PAGE_SIZE))!;
      const first = (va % PAGE_SIZE) / GRANULE;
      page.granules.fill(undefined, first, first + Math.ceil(allocation.size / GRANULE));
    } else {
      this.forEachRun(va, allocation.pfns.length * PAGE_SIZE, (pa, _done, length) =>
        this.cpu.discard(pa, length),
      );
      if (!allocation.cached) this.cpu.setCaching(allocation.pfns, true);
      this.frames.free(allocation.pfns, allocation.owner);
      this.unmap(va);
    }
    this.allocations.delete(va);
    this.released.add(va);
  }

  /**
   * MmMapLockedPagesSpecifyCache(KernelMode): maps existing frames (locked user pages) into
   * system space. The frames stay with their owner; `owner` says who asked for the mapping;
   * `cached` false is CacheType MmNonCached, until unmapPages.
   */
  mapPages(pfns: readonly number[], owner: number, cached = true): number {
    this.frames.ownerName(owner);
    if (pfns.length === 0) throw new PlatformError("bad-length", "cannot map zero pages");
    for (const pfn of pfns) {
      if (this.frames.ownerOf(pfn) === 0) {
        throw new PlatformError(
          "not-owner",
          `frame ${formatAddress(pfn * PAGE_SIZE)} is free: nothing to map`,
        );
      }
    }
    return this.map([...pfns], pfns.length * PAGE_SIZE, owner, "", "system-mapping", cached);
  }

  /** MmUnmapLockedPages: removes a mapping made by mapPages; the frames are not freed. */
  unmapPages(va: number): void {
    const allocation = this.allocationStartingAt(va);
    if (allocation.kind !== "system-mapping") {
      throw new PlatformError(
        "bad-handle",
        `${formatAddress(va)} is an allocation, not a system mapping: use free`,
      );
    }
    if (!allocation.cached) this.cpu.setCaching(allocation.pfns, true);
    this.unmap(va);
    this.allocations.delete(va);
    this.released.add(va);
  }

  /** MmGetPhysicalAddress: throws "not-mapped" for an address with no page behind it. */
  physicalAddress(va: number): number {
    checkAddress(va, "kernel virtual address", 48);
    const mapping = this.mappingAt(va);
    if (mapping === undefined)
      throw new PlatformError("not-mapped", `kernel address ${formatAddress(va)} is not mapped`);
    const offset = va - mapping.va;
    return mapping.pfns[Math.floor(offset / PAGE_SIZE)]! * PAGE_SIZE + (offset % PAGE_SIZE);
  }

  /** MmIsAddressValid over a range: every page of [va, va + length) is mapped. */
  isMapped(va: number, length: number): boolean {
    if (!Number.isSafeInteger(va) || !Number.isSafeInteger(length) || va < 0 || length < 0) return false;
    let address = va;
    const end = va + length;
    while (address < end) {
      const mapping = this.mappingAt(address);
      if (mapping === undefined) return false;
      address = mapping.va + mapping.pfns.length * PAGE_SIZE;
    }
    return true;
  }

  /** The allocation or system mapping containing `va` (for a small-pool page: the slot's). */
  allocationAt(va: number): KernelAllocation | undefined {
    const mapping = this.mappingAt(va);
    if (mapping === undefined) return undefined;
    if (mapping.allocation !== undefined) return mapping.allocation;
    const page = this.smallPageAt.get(mapping.va)!;
    return page.granules[Math.floor((va - page.va) / GRANULE)];
  }

  /** A CPU load from kernel space (RtlCopyMemory out of a buffer). */
  read(va: number, dst: Uint8Array): void {
    this.checkMapped(va, dst.length);
    this.forEachRun(va, dst.length, (pa, done, length) =>
      this.cpu.read(pa, dst.subarray(done, done + length)),
    );
  }

  /** A CPU store to kernel space. */
  write(va: number, src: Uint8Array): void {
    this.checkMapped(va, src.length);
    this.forEachRun(va, src.length, (pa, done, length) =>
      this.cpu.write(pa, src.subarray(done, done + length)),
    );
  }

  /**
   * Visits [va, va + length) as physically contiguous runs (adjacent frames coalesced), with
   * each run's offset into the range. The range must be mapped.
   */
  forEachPhysicalRun(
    va: number,
    length: number,
    visit: (pa: number, done: number, length: number) => void,
  ): void {
    this.checkMapped(va, length);
    this.forEachRun(va, length, visit);
  }

  private allocateSmall(bytes: number, owner: number, tag: string): number {
    const count = Math.ceil(bytes / GRANULE);
    let page: SmallPoolPage | undefined;
    let first = -1;
    for (const candidate of this.smallPages) {
      first = freeGranules(candidate, count);
      if (first >= 0) {
        page = candidate;
        break;
      }
    }
    if (page === undefined) {
      const [pfn] = this.frames.allocate(1, { owner: this.smallPoolOwner });
      const pageVa = this.reserve(1, false);
      this.insertMapping({ va: pageVa, pfns: [pfn!], allocation: undefined });
      page = { va: pageVa, pfn: pfn!, granules: new Array(GRANULES).fill(undefined) };
      this.smallPages.push(page);
      this.smallPageAt.set(pageVa, page);
      first = 0;
    }
    const va = page.va + first * GRANULE;
    const allocation: KernelAllocation = {
      va,
      size: bytes,
      owner,
      tag,
      kind: "small-pool",
      pfns: [page.pfn],
      cached: true,
    };
    page.granules.fill(allocation, first, first + count);
    this.allocations.set(va, allocation);
    this.released.delete(va);
    return va;
  }

  private map(
    pfns: number[],
    size: number,
    owner: number,
    tag: string,
    kind: KernelAllocationKind,
    cached: boolean,
  ): number {
    const va = this.reserve(pfns.length, kind === "system-mapping");
    if (!cached) this.cpu.setCaching(pfns, false);
    const allocation: KernelAllocation = { va, size, owner, tag, kind, pfns, cached };
    this.insertMapping({ va, pfns, allocation });
    this.allocations.set(va, allocation);
    return va;
  }

  /** Reserves `pages` pages plus a guard page of VA space. */
  private reserve(pages: number, system: boolean): number {
    const bytes = (pages + 1) * PAGE_SIZE;
    const limit = system ? KERNEL_SPACE_END : SYSTEM_PTE_START;
    const va = system ? this.nextSystemVa : this.nextPoolVa;
    if (va + bytes > limit) throw new PlatformError("no-memory", "kernel virtual address space exhausted");
    if (system) this.nextSystemVa += bytes;
    else this.nextPoolVa += bytes;
    return va;
  }

  /**
   * Keeps mappings sorted by VA: pool and system-mapping addresses grow in two separate ranges,
   * so appending would interleave them and break the binary search.
   */
  private insertMapping(mapping: Mapping): void {
    this.mappings.splice(this.mappingIndex(mapping.va) + 1, 0, mapping);
  }

  private unmap(va: number): void {
    const index = this.mappingIndex(va);
    this.mappings.splice(index, 1);
  }

  private allocationStartingAt(va: number): KernelAllocation {
    checkAddress(va, "kernel virtual address", 48);
    const allocation = this.allocations.get(va);
    if (allocation !== undefined) return allocation;
    if (this.released.has(va))
      throw new PlatformError("double-free", `kernel address ${formatAddress(va)} was already freed`);
    throw new PlatformError(
      "bad-handle",
      `kernel address ${formatAddress(va)} is not the start of an allocation`,
    );
  }

  /** Index of the last mapping starting at or below `va`, or -1. */
  private mappingIndex(va: number): number {
    let low = 0;
    let high = this.mappings.length - 1;
    let found = -1;
    while (low <= high) {
      const middle = (low + high) >>> 1;
      if (this.mappings[middle]!.va <= va) {
        found = middle;
        low = middle + 1;
      } else {
        high = middle - 1;
      }
    }
    return found;
  }

  private mappingAt(va: number): Mapping | undefined {
    const mapping = this.mappings[this.mappingIndex(va)];
    return mapping !== undefined && va < mapping.va + mapping.pfns.length * PAGE_SIZE ? mapping : undefined;
  }

  private checkMapped(va: number, length: number): void {
    checkAddress(va, "kernel virtual address", 48);
    checkLength(length, "length");
    if (!this.isMapped(va, length)) {
      throw new PlatformError(
        "not-mapped",
        `kernel range ${formatAddress(va)}+${formatAddress(length)} is not mapped`,
      );
    }
  }

  private forEachRun(va: number, length: number, visit: RunVisitor): void {
    let mapping: Mapping | undefined;
    forEachPhysicalRun(
      length,
      (done, piece) => {
        const address = va + done;
        if (mapping === undefined || address >= mapping.va + mapping.pfns.length * PAGE_SIZE) {
          mapping = this.mappingAt(address)!;
        }
        const offset = address - mapping.va;
        piece.physicalAddress =
          mapping.pfns[Math.floor(offset / PAGE_SIZE)]! * PAGE_SIZE + (offset % PAGE_SIZE);
        piece.length = PAGE_SIZE - (offset % PAGE_SIZE);
      },
      visit,
    );
  }
}

/** The first of `count` free granules in a row, or -1. */
function freeGranules(page: SmallPoolPage, count: number): number {
  let run = 0;
  for (let i = 0; i < GRANULES; i++) {
    run = page.granules[i] === undefined ? run + 1 : 0;
    if (run === count) return i - count + 1;
  }
  return -1;
}

/** True for addresses in the (sign-extension-free) kernel half. */
export function isKernelAddress(va: number): boolean {
  return Number.isSafeInteger(va) && va >= KERNEL_SPACE_START && va < KERNEL_SPACE_END;
}

function checkSize(bytes: number): void {
  checkLength(bytes, "allocation size", MAX_ALLOCATION);
  if (bytes === 0) throw new PlatformError("bad-length", "cannot allocate zero bytes");
}
