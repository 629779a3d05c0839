/**
 * A 4-level VT-d second-level page table (48-bit IOVA -> 52-bit physical address) kept in
 * simulated RAM: 4 KiB tables of 512 64-bit entries (VT-d 9.8, iommu-anchors §1.2). The table in
 * RAM is the only record of a mapping; the host keeps one PFN per table frame, nothing per page.
 *
 * Policies (Linux intel-iommu's, see docs/iommu.md):
 * - map uses 2 MiB and 1 GiB superpages (PS) wherever IOVA, physical address and the remaining
 *   size allow, unless superpages are off (intel_iommu=sp_off). A slot that already holds a
 *   (possibly empty) lower table is filled through that table with smaller pages.
 * - unmap of part of a superpage splits it into a table of the next smaller size with the same
 *   permissions, then unmaps the requested part.
 * - unmap frees a table frame only when the range covers the table's whole span
 *   (dma_pte_clear_level); emptied tables that are only partly covered stay until destroy.
 * - map and unmap never touch an IOTLB: invalidation is the caller's job.
 * Bad input throws PlatformError before any entry changes.
 */
import type { FrameAllocator } from "../platform/frame-allocator.js";
import {
  checkAddress,
  checkLength,
  formatAddress,
  MAX_PHYSICAL_ADDRESS_BITS,
  PAGE_SIZE,
} from "../platform/page.js";
import { PlatformError } from "../platform/platform-error.js";
import {
  entryAddress,
  entryPfn,
  IOVA_BITS,
  IOVA_LIMIT,
  LEVEL_SIZE,
  PTE_PAGE_SIZE,
  PTE_PERMISSIONS,
  TABLE_ENTRIES,
  tableIndex,
  writeLeafEntry,
  writeTableEntry,
} from "./entry-format.js";
import type { TableViews } from "./table-views.js";

/** R and W bits of a second-level entry. */
export const IoPermission = { Read: 1, Write: 2, ReadWrite: 3 } as const;
export type IoPermission = (typeof IoPermission)[keyof typeof IoPermission];

/** One leaf of the table, as a software walk finds it. */
export interface IoMapping {
  /** IOVA of the start of the page or superpage. */
  readonly iova: number;
  readonly physicalAddress: number;
  /** 4 KiB, 2 MiB or 1 GiB. */
  readonly size: number;
  readonly permissions: IoPermission;
}

const TOP_LEVEL = 4;
const PHYSICAL_LIMIT = 2 ** MAX_PHYSICAL_ADDRESS_BITS;
const NO_FRAMES: readonly number[] = [];

export class IoPageTable {
  /** Physical address of the level-4 table: the context entry's SLPTPTR. */
  readonly rootAddress: number;
  readonly superpages: boolean;
  readonly #views: TableViews;
  readonly #frames: FrameAllocator;
  readonly #owner: number;
  readonly #root: Uint32Array;
  /** Every table frame of this page table, root included: what destroy returns. */
  readonly #tables = new Set<number>();
  /** Highest level at which map may write a leaf: 3 with superpages, 1 without. */
  readonly #maxLeafLevel: number;
  #spare: readonly number[] = NO_FRAMES;
  #spareUsed = 0;
  #freed: number[] = [];
  #destroyed = false;

  constructor(views: TableViews, frames: FrameAllocator, owner: number, superpages: boolean) {
    this.#views = views;
    this.#frames = frames;
    this.#owner = owner;
    this.superpages = superpages;
    this.#maxLeafLevel = superpages ? 3 : 1;
    const rootPfn = frames.allocate(1, { owner })[0]!;
    this.#root = this.#newTable(rootPfn);
    this.rootAddress = rootPfn * PAGE_SIZE;
  }

  get destroyed(): boolean {
    return this.#destroyed;
  }

  /** Table frames in use, root included. */
  get tableCount(): number {
    return this.#tables.size;
  }

  /** PFNs of the table frames, ascending (for inspection and tests). */
  tableFrames(): number[] {
    return [...this.#tables].sort((a, b) => a - b);
  }

  /**
   * Maps [iova, iova + size) to [physicalAddress, ...) with R/W `permissions`. Throws
   * "already-mapped" if any page of the range is mapped, "no-memory" if a table frame cannot be
   * allocated (the table is then exactly as before).
   */
  map(iova: number, physicalAddress: number, size: number, permissions: IoPermission): void {
    this.#checkLive();
    checkRange(iova, size, "IOVA", IOVA_BITS);
    checkRange(physicalAddress, size, "physical address", MAX_PHYSICAL_ADDRESS_BITS);
    if (permissions !== 1 && permissions !== 2 && permissions !== 3) {
      throw new PlatformError(
        "out-of-range",
        `permissions ${String(permissions)} must be Read, Write or ReadWrite`,
      );
    }
    if (size === PAGE_SIZE) {
      this.#mapPage(iova, physicalAddress, permissions);
      return;
    }
    this.#checkUnmapped(this.#root, TOP_LEVEL, 0, iova, iova + size);
    const linked: number[] = [];
    const created: number[] = [];
    try {
      for (let offset = 0; offset < size; ) {
        offset += this.#placeLeaf(
          iova + offset,
          physicalAddress + offset,
          size - offset,
          permissions,
          linked,
          created,
        );
      }
    } catch (error) {
      this.#rollBack(linked, created);
      throw error;
    }
  }

  /**
   * Unmaps [iova, iova + size). Every page of the range must be mapped ("not-mapped" otherwise).
   * Superpages cut by the range are split first; table frames whose whole span the range covers
   * go back to the frame allocator.
   */
  unmap(iova: number, size: number): void {
    this.#checkLive();
    checkRange(iova, size, "IOVA", IOVA_BITS);
    if (size === PAGE_SIZE && this.#unmapPage(iova)) return;
    const end = iova + size;
    const splits = this.#countSplits(this.#root, TOP_LEVEL, 0, iova, end);
    this.#spare = splits > 0 ? this.#frames.allocate(splits, { owner: this.#owner }) : NO_FRAMES;
    this.#spareUsed = 0;
    this.#freed = [];
    this.#clear(this.#root, TOP_LEVEL, 0, iova, end);
    this.#spare = NO_FRAMES;
    if (this.#freed.length > 0) this.#frames.free(this.#freed, this.#owner);
    this.#freed = [];
  }

  /** Software walk: the leaf mapping `iova` (any byte address below 2^48), or undefined. */
  lookup(iova: number): IoMapping | undefined {
    this.#checkLive();
    checkAddress(iova, "IOVA", IOVA_BITS);
    let table = this.#root;
    for (let level = TOP_LEVEL; level >= 1; level--) {
      const word = tableIndex(iova, level) * 2;
      const low = table[word]!;
      if ((low & PTE_PERMISSIONS) === 0) return undefined;
      if (level === 1 || (low & PTE_PAGE_SIZE) !== 0) {
        const size = LEVEL_SIZE[level]!;
        return {
          iova: Math.floor(iova / size) * size,
          physicalAddress: entryAddress(low, table[word + 1]!),
          size,
          permissions: (low & PTE_PERMISSIONS) as IoPermission,
        };
      }
      table = this.#views.get(entryPfn(low, table[word + 1]!));
    }
    return undefined;
  }

  /** Returns every table frame to the allocator. The caller makes sure no context points here. */
  destroy(): void {
    this.#checkLive();
    this.#frames.free([...this.#tables], this.#owner);
    this.#tables.clear();
    this.#destroyed = true;
  }

  #checkLive(): void {
    if (this.#destroyed) throw new PlatformError("bad-handle", "the page table was destroyed");
  }

  #newTable(pfn: number): Uint32Array {
    const table = this.#views.get(pfn);
    table.fill(0);
    this.#tables.add(pfn);
    return table;
  }

  /** The hot path: one 4 KiB page, one walk. Frames are allocated before anything is written. */
  #mapPage(iova: number, physicalAddress: number, permissions: number): void {
    let table = this.#root;
    for (let level = TOP_LEVEL; level > 1; level--) {
      const word = tableIndex(iova, level) * 2;
      const low = table[word]!;
      if ((low & PTE_PERMISSIONS) === 0) {
        const pfns = this.#frames.allocate(level - 1, { owner: this.#owner });
        let parent = table;
        let parentWord = word;
        for (let l = level - 1; l >= 1; l--) {
          const pfn = pfns[level - 1 - l]!;
          const child = this.#newTable(pfn);
          writeTableEntry(parent, parentWord, pfn);
          parent = child;
          parentWord = tableIndex(iova, l) * 2;
        }
        writeLeafEntry(parent, parentWord, physicalAddress, permissions, 0);
        return;
      }
      if ((low & PTE_PAGE_SIZE) !== 0) throw alreadyMapped(iova);
      table = this.#views.get(entryPfn(low, table[word + 1]!));
    }
    const word = tableIndex(iova, 1) * 2;
    if ((table[word]! & PTE_PERMISSIONS) !== 0) throw alreadyMapped(iova);
    writeLeafEntry(table, word, physicalAddress, permissions, 0);
  }

  /** Throws "already-mapped" if a leaf of [start, end) under `table` is present. */
  #checkUnmapped(table: Uint32Array, level: number, base: number, start: number, end: number): void {
    const size = LEVEL_SIZE[level]!;
    const last = Math.floor((end - 1 - base) / size);
    for (let i = Math.floor((start - base) / size); i <= last; i++) {
      const low = table[i * 2]!;
      if ((low & PTE_PERMISSIONS) === 0) continue;
      const entryStart = base + i * size;
      if (level === 1 || (low & PTE_PAGE_SIZE) !== 0) throw alreadyMapped(Math.max(start, entryStart));
      const child = this.#views.get(entryPfn(low, table[i * 2 + 1]!));
      this.#checkUnmapped(
        child,
        level - 1,
        entryStart,
        Math.max(start, entryStart),
        Math.min(end, entryStart + size),
      );
    }
  }

  /**
   * Writes the largest leaf that fits at `iova` and returns its size. Records every entry it
   * writes into a table that existed before this map (`linked`: PFN, word pairs) and every table
   * it creates, so that a failed allocation can be rolled back.
   */
  #placeLeaf(
    iova: number,
    physicalAddress: number,
    remaining: number,
    permissions: number,
    linked: number[],
    created: number[],
  ): number {
    let table = this.#root;
    let tablePfn = this.rootAddress / PAGE_SIZE;
    for (let level = TOP_LEVEL; ; level--) {
      const word = tableIndex(iova, level) * 2;
      const size = LEVEL_SIZE[level]!;
      const low = table[word]!;
      const empty = (low & PTE_PERMISSIONS) === 0;
      if (
        level === 1 ||
        (empty &&
          level <= this.#maxLeafLevel &&
          remaining >= size &&
          iova % size === 0 &&
          physicalAddress % size === 0)
      ) {
        writeLeafEntry(table, word, physicalAddress, permissions, level > 1 ? PTE_PAGE_SIZE : 0);
        linked.push(tablePfn, word);
        return size;
      }
      if (empty) {
        const pfn = this.#frames.allocate(1, { owner: this.#owner })[0]!;
        created.push(pfn);
        const child = this.#newTable(pfn);
        writeTableEntry(table, word, pfn);
        linked.push(tablePfn, word);
        table = child;
        tablePfn = pfn;
      } else {
        tablePfn = entryPfn(low, table[word + 1]!);
        table = this.#views.get(tablePfn);
      }
    }
  }

  #rollBack(linked: readonly number[], created: readonly number[]): void {
    for (let i = 0; i < linked.length; i += 2) {
      const table = this.#views.get(linked[i]!);
      table[linked[i + 1]!] = 0;
      table[linked[i + 1]! + 1] = 0;
    }
    for (const pfn of created) this.#tables.delete(pfn);
    if (created.length > 0) this.#frames.free(created, this.#owner);
  }

  /** The hot path of unmap: false when a superpage is in the way (the general path splits it). */
  #unmapPage(iova: number): boolean {
    let table = this.#root;
    for (let level = TOP_LEVEL; level > 1; level--) {
      const word = tableIndex(iova, level) * 2;
      const low = table[word]!;
      if ((low & PTE_PERMISSIONS) === 0) throw notMapped(iova);
      if ((low & PTE_PAGE_SIZE) !== 0) return false;
      table = this.#views.get(entryPfn(low, table[word + 1]!));
    }
    const word = tableIndex(iova, 1) * 2;
    if ((table[word]! & PTE_PERMISSIONS) === 0) throw notMapped(iova);
    table[word] = 0;
    table[word + 1] = 0;
    return true;
  }

  /** Validates that [start, end) is fully mapped; returns the table frames splitting will need. */
  #countSplits(table: Uint32Array, level: number, base: number, start: number, end: number): number {
    const size = LEVEL_SIZE[level]!;
    const last = Math.floor((end - 1 - base) / size);
    let splits = 0;
    for (let i = Math.floor((start - base) / size); i <= last; i++) {
      const low = table[i * 2]!;
      const entryStart = base + i * size;
      const s = Math.max(start, entryStart);
      const e = Math.min(end, entryStart + size);
      if ((low & PTE_PERMISSIONS) === 0) throw notMapped(s);
      if (level === 1) continue;
      if ((low & PTE_PAGE_SIZE) !== 0) {
        if (s !== entryStart || e !== entryStart + size) splits += splitCost(level, entryStart, s, e);
      } else {
        const child = this.#views.get(entryPfn(low, table[i * 2 + 1]!));
        splits += this.#countSplits(child, level - 1, entryStart, s, e);
      }
    }
    return splits;
  }

  /** Clears [start, end) under `table` (validated by #countSplits), splitting and freeing tables. */
  #clear(table: Uint32Array, level: number, base: number, start: number, end: number): void {
    const size = LEVEL_SIZE[level]!;
    const last = Math.floor((end - 1 - base) / size);
    for (let i = Math.floor((start - base) / size); i <= last; i++) {
      const word = i * 2;
      const low = table[word]!;
      const entryStart = base + i * size;
      const s = Math.max(start, entryStart);
      const e = Math.min(end, entryStart + size);
      const whole = s === entryStart && e === entryStart + size;
      if (level === 1 || (low & PTE_PAGE_SIZE) !== 0) {
        if (whole) {
          table[word] = 0;
          table[word + 1] = 0;
          continue;
        }
        const child = this.#split(table, word, level);
        this.#clear(child, level - 1, entryStart, s, e);
        continue;
      }
      const childPfn = entryPfn(low, table[word + 1]!);
      this.#clear(this.#views.get(childPfn), level - 1, entryStart, s, e);
      if (whole) {
        table[word] = 0;
        table[word + 1] = 0;
        this.#tables.delete(childPfn);
        this.#freed.push(childPfn);
      }
    }
  }

  /** Replaces the superpage at `word` by a table of 512 next-smaller leaves with its permissions. */
  #split(table: Uint32Array, word: number, level: number): Uint32Array {
    const low = table[word]!;
    const address = entryAddress(low, table[word + 1]!);
    const permissions = low & PTE_PERMISSIONS;
    const childSize = LEVEL_SIZE[level - 1]!;
    const flags = level - 1 > 1 ? PTE_PAGE_SIZE : 0;
    const pfn = this.#spare[this.#spareUsed++]!;
    const child = this.#newTable(pfn);
    for (let i = 0; i < TABLE_ENTRIES; i++)
      writeLeafEntry(child, i * 2, address + i * childSize, permissions, flags);
    writeTableEntry(table, word, pfn);
    return child;
  }
}

/** Table frames needed to unmap [s, e) out of the superpage of `level` at `base`. */
function splitCost(level: number, base: number, s: number, e: number): number {
  if (level - 1 < 2) return 1;
  const childSize = LEVEL_SIZE[level - 1]!;
  const first = base + Math.floor((s - base) / childSize) * childSize;
  const last = base + Math.floor((e - 1 - base) / childSize) * childSize;
  let cost = 1;
  if (s !== first || e < first + childSize)
    cost += splitCost(level - 1, first, s, Math.min(e, first + childSize));
  if (last !== first && e !== last + childSize) cost += splitCost(level - 1, last, last, e);
  return cost;
}

/**
 * A multiple of PAGE_SIZE, for a safe integer. Division by a power of two is exact, and this
 * avoids `%` on addresses above 2^31, which V8 computes with a slow floating-point call.
 */
function isPageMultiple(value: number): boolean {
  return Math.floor(value / PAGE_SIZE) * PAGE_SIZE === value;
}

/** Throws unless [address, address + size) is page aligned, non-empty and below 2^bits. */
function checkRange(address: number, size: number, what: string, bits: number): void {
  if (
    Number.isSafeInteger(address) &&
    address >= 0 &&
    isPageMultiple(address) &&
    (size === PAGE_SIZE || (Number.isSafeInteger(size) && size > 0 && isPageMultiple(size))) &&
    address + size <= (bits === IOVA_BITS ? IOVA_LIMIT : PHYSICAL_LIMIT)
  ) {
    return;
  }
  checkAddress(address, what, bits);
  if (address % PAGE_SIZE !== 0) {
    throw new PlatformError("bad-address", `${what} ${formatAddress(address)} is not page aligned`);
  }
  checkLength(size, "size");
  if (size === 0 || size % PAGE_SIZE !== 0) {
    throw new PlatformError("bad-length", `size ${size} is not a positive multiple of ${PAGE_SIZE}`);
  }
  throw new PlatformError(
    "bad-address",
    `${what} range ${formatAddress(address)}+${formatAddress(size)} goes beyond 2^${bits}`,
  );
}

function alreadyMapped(iova: number): PlatformError {
  return new PlatformError("already-mapped", `IOVA ${formatAddress(iova)} is already mapped`);
}

function notMapped(iova: number): PlatformError {
  return new PlatformError("not-mapped", `IOVA ${formatAddress(iova)} is not mapped`);
}
