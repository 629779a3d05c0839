/**
 * One user process's address space: its own 4-level page tables (x86-64 PML4 -> PDPT -> PD ->
 * PT, 512 entries each, Intel SDM vol. 3A section 4.5), 4 KiB pages and 2 MiB large pages (a PD
 * entry with PS set), and the pin counts that MmProbeAndLockPages and VFIO's pinning build on.
 *
 * Tables are sparse JS structures created on demand; the PT level keeps frame numbers in a
 * Float64Array. User addresses are below 0x8000_0000_0000 and start at 64 KiB, as on Windows.
 * Frames of a process carry its own owner tag ("process:<id>:<name>").
 */

import { CpuMemory } from "./cpu-memory.js";
import { FrameAllocator } from "./frame-allocator.js";
import { checkAddress, checkLength, formatAddress, LARGE_PAGE_SIZE, PAGE_SIZE } from "./page.js";
import { forEachPhysicalRun } from "./physical-runs.js";
import { PlatformError } from "./platform-error.js";

export const USER_SPACE_START = 0x1_0000;
export const USER_SPACE_END = 0x8000_0000_0000;
const ENTRIES = 512;
const FRAMES_PER_LARGE_PAGE = LARGE_PAGE_SIZE / PAGE_SIZE;
/** Bytes covered by one entry of a PML4, PDPT, PD and PT. */
const PML4_ENTRY = 2 ** 39;
const PDPT_ENTRY = 2 ** 30;
const PD_ENTRY = LARGE_PAGE_SIZE;
/** Largest single allocation (1 TiB). */
const MAX_ALLOCATION = 2 ** 40;

/** A page table: PFN + 1 per 4 KiB page (0 = not present), and pin counts when pinned. */
interface PageTable {
  readonly kind: "table";
  readonly frames: Float64Array;
  /** Present entries, so an emptied table can be dropped without a scan. */
  present: number;
  pins: Uint32Array | undefined;
}

/** A PD entry with PS set: 512 contiguous frames; pin counts per 4 KiB page. */
interface LargePage {
  readonly kind: "large";
  readonly pfn: number;
  pins: Uint32Array | undefined;
}

type Directory<T> = (T | undefined)[];
type PageDirectoryEntry = PageTable | LargePage;

interface UserAllocation {
  readonly va: number;
  readonly bytes: number;
  readonly largePages: boolean;
  readonly pfns: readonly number[];
}

export interface UserAllocationOptions {
  /** MEM_LARGE_PAGES: 2 MiB aligned VA, each 2 MiB backed by 512 contiguous, aligned frames. */
  readonly largePages?: boolean;
}

export interface ProcessOptions {
  /** Most bytes this process may pin at once (RLIMIT_MEMLOCK); default unlimited. */
  readonly lockedMemoryLimit?: number;
}

export class ProcessAddressSpace {
  readonly id: number;
  readonly name: string;
  /** Frame owner id of this process's pages. */
  readonly owner: number;
  readonly lockedMemoryLimit: number;
  readonly #frames: FrameAllocator;
  readonly #cpu: CpuMemory;
  readonly #onDestroy: (process: ProcessAddressSpace) => void;
  readonly #pml4: Directory<Directory<Directory<PageDirectoryEntry>>> = emptyDirectory();
  readonly #allocations = new Map<number, UserAllocation>();
  #nextVa = USER_SPACE_START;
  #pinnedPages = 0;
  #destroyed = false;

  /** Built by ProcessManager.create. */
  constructor(
    id: number,
    name: string,
    options: ProcessOptions,
    frames: FrameAllocator,
    cpu: CpuMemory,
    onDestroy: (process: ProcessAddressSpace) => void,
  ) {
    this.id = id;
    this.name = name;
    this.lockedMemoryLimit = options.lockedMemoryLimit ?? Number.POSITIVE_INFINITY;
    this.#frames = frames;
    this.#cpu = cpu;
    this.#onDestroy = onDestroy;
    this.owner = frames.registerOwner(`process:${id}:${name}`);
  }

  get destroyed(): boolean {
    return this.#destroyed;
  }

  /** Bytes of distinct pages with a non-zero pin count. */
  get pinnedBytes(): number {
    return this.#pinnedPages * PAGE_SIZE;
  }

  /** Bytes of committed memory. */
  get committedBytes(): number {
    return this.#frames.framesOwnedBy(this.owner) * PAGE_SIZE;
  }

  /**
   * VirtualAlloc(MEM_COMMIT | MEM_RESERVE [| MEM_LARGE_PAGES]): commits `bytes` (rounded up to the
   * page size) at a fresh VA followed by an unmapped guard page. Small pages are scattered over
   * RAM; large pages are 2 MiB aligned runs.
   */
  allocate(bytes: number, options: UserAllocationOptions = {}): number {
    this.#checkAlive();
    checkLength(bytes, "allocation size", MAX_ALLOCATION);
    if (bytes === 0) throw new PlatformError("bad-length", "cannot allocate zero bytes");
    const largePages = options.largePages ?? false;
    const pageSize = largePages ? LARGE_PAGE_SIZE : PAGE_SIZE;
    const size = Math.ceil(bytes / pageSize) * pageSize;
    const va = Math.ceil(this.#nextVa / pageSize) * pageSize;
    if (va + size + PAGE_SIZE > USER_SPACE_END)
      throw new PlatformError("no-memory", "user address space exhausted");
    const pfns = largePages
      ? this.#allocateLargeFrames(size / LARGE_PAGE_SIZE)
      : this.#allocateFrames(size / PAGE_SIZE);
    // VirtualAlloc hands out zeroed pages: nothing of a previous owner (or the poison) shows through.
    for (const pfn of pfns) this.#cpu.zero(pfn * PAGE_SIZE, PAGE_SIZE);
    if (largePages) {
      for (let i = 0; i < pfns.length; i += FRAMES_PER_LARGE_PAGE) {
        this.#setPde(va + (i / FRAMES_PER_LARGE_PAGE) * LARGE_PAGE_SIZE, {
          kind: "large",
          pfn: pfns[i]!,
          pins: undefined,
        });
      }
    } else {
      for (let i = 0; i < pfns.length; i++) this.#setPte(va + i * PAGE_SIZE, pfns[i]!);
    }
    this.#allocations.set(va, { va, bytes: size, largePages, pfns });
    this.#nextVa = va + size + PAGE_SIZE;
    return va;
  }

  /** VirtualFree(MEM_RELEASE): `va` must start an allocation, and none of it may be pinned. */
  free(va: number): void {
    this.#checkAlive();
    checkAddress(va, "user virtual address", 47);
    const allocation = this.#allocations.get(va);
    if (allocation === undefined) {
      throw new PlatformError(
        "bad-handle",
        `${formatAddress(va)} is not the start of an allocation in ${this.name}`,
      );
    }
    if (this.#pinnedIn(va, allocation.bytes) > 0) {
      throw new PlatformError("bad-state", `${formatAddress(va)} in ${this.name} still has pinned pages`);
    }
    this.#release(allocation);
  }

  /** The physical address behind `va`; "not-mapped" if no page is there. */
  translate(va: number): number {
    const entry = this.#lookup(va);
    if (entry === undefined) throw this.#notMapped(va, 1);
    return entry.kind === "large"
      ? entry.pfn * PAGE_SIZE + (va % LARGE_PAGE_SIZE)
      : (entry.frames[pteIndex(va)]! - 1) * PAGE_SIZE + (va % PAGE_SIZE);
  }

  /** 4 KiB or 2 MiB; "not-mapped" if no page is there. */
  pageSizeAt(va: number): number {
    const entry = this.#lookup(va);
    if (entry === undefined) throw this.#notMapped(va, 1);
    return entry.kind === "large" ? LARGE_PAGE_SIZE : PAGE_SIZE;
  }

  /** True when every page of [va, va + length) is present. */
  isMapped(va: number, length: number): boolean {
    if (!Number.isSafeInteger(va) || !Number.isSafeInteger(length) || va < 0 || length < 0) return false;
    if (va + length > USER_SPACE_END) return false;
    let address = va;
    while (address < va + length) {
      const entry = this.#lookup(address);
      if (entry === undefined) return false;
      address =
        entry.kind === "large"
          ? pageFloor(address, LARGE_PAGE_SIZE) + LARGE_PAGE_SIZE
          : pageFloor(address, PAGE_SIZE) + PAGE_SIZE;
    }
    return true;
  }

  /** A CPU load in this process's context. */
  read(va: number, dst: Uint8Array): void {
    this.forEachPhysicalRun(va, dst.length, (pa, done, length) =>
      this.#cpu.read(pa, dst.subarray(done, done + length)),
    );
  }

  /** A CPU store in this process's context. */
  write(va: number, src: Uint8Array): void {
    this.forEachPhysicalRun(va, src.length, (pa, done, length) =>
      this.#cpu.write(pa, src.subarray(done, done + length)),
    );
  }

  /** Visits [va, va + length) as physically contiguous runs (a large page is one run). */
  forEachPhysicalRun(
    va: number,
    length: number,
    visit: (pa: number, done: number, length: number) => void,
  ): void {
    this.#checkRange(va, length);
    forEachPhysicalRun(
      length,
      (done, piece) => {
        const address = va + done;
        const entry = this.#lookup(address)!;
        const size = entry.kind === "large" ? LARGE_PAGE_SIZE : PAGE_SIZE;
        piece.physicalAddress =
          entry.kind === "large"
            ? entry.pfn * PAGE_SIZE + (address % LARGE_PAGE_SIZE)
            : (entry.frames[pteIndex(address)]! - 1) * PAGE_SIZE + (address % PAGE_SIZE);
        piece.length = size - (address % size);
      },
      visit,
    );
  }

  /**
   * Pins the pages of [va, va + length) so they stay resident at the same frames (what
   * MmProbeAndLockPages and vfio_pin_pages_remote do). Pins nest. Fails with "no-memory" (ENOMEM,
   * as VFIO and mlock report an RLIMIT_MEMLOCK overrun) when newly pinned pages would exceed the
   * locked-memory limit, and with "not-mapped" for a hole; either way nothing is pinned.
   */
  pin(va: number, length: number): void {
    this.#checkAlive();
    this.#checkRange(va, length);
    const added = this.#pageCount(va, length) - this.#pinnedIn(va, length);
    if ((this.#pinnedPages + added) * PAGE_SIZE > this.lockedMemoryLimit) {
      throw new PlatformError(
        "no-memory",
        `pinning ${formatAddress(length)} bytes at ${formatAddress(va)} would exceed ${this.name}'s locked-memory limit of ${this.lockedMemoryLimit} bytes`,
      );
    }
    this.#forEachPin(va, length, (pins, index) => {
      pins[index]!++;
    });
    this.#pinnedPages += added;
  }

  /** Drops one pin from each page of [va, va + length); "bad-state" if a page is not pinned. */
  unpin(va: number, length: number): void {
    this.#checkAlive();
    this.#checkRange(va, length);
    if (this.#pinnedIn(va, length) !== this.#pageCount(va, length)) {
      throw new PlatformError(
        "bad-state",
        `${formatAddress(va)}+${formatAddress(length)} in ${this.name} is not pinned`,
      );
    }
    this.#forEachPin(va, length, (pins, index) => {
      if (--pins[index]! === 0) this.#pinnedPages--;
    });
  }

  /** Process exit: frees every allocation, pinned or not, and leaves the process unusable. */
  destroy(): void {
    this.#checkAlive();
    for (const allocation of [...this.#allocations.values()]) this.#release(allocation);
    this.#pinnedPages = 0;
    this.#destroyed = true;
    this.#onDestroy(this);
  }

  #checkAlive(): void {
    if (this.#destroyed)
      throw new PlatformError("bad-handle", `process ${this.id} (${this.name}) was destroyed`);
  }

  #checkRange(va: number, length: number): void {
    checkAddress(va, "user virtual address", 47);
    checkLength(length, "length");
    if (!this.isMapped(va, length)) throw this.#notMapped(va, length);
  }

  #notMapped(va: number, length: number): PlatformError {
    return new PlatformError(
      "not-mapped",
      `${formatAddress(va)}+${formatAddress(length)} is not mapped in ${this.name}`,
    );
  }

  #allocateFrames(count: number): number[] {
    return this.#frames.allocate(count, { owner: this.owner });
  }

  /** `count` aligned 2 MiB runs, all or nothing. */
  #allocateLargeFrames(count: number): number[] {
    const pfns: number[] = [];
    try {
      for (let i = 0; i < count; i++) {
        pfns.push(
          ...this.#frames.allocate(FRAMES_PER_LARGE_PAGE, {
            owner: this.owner,
            contiguous: true,
            alignment: FRAMES_PER_LARGE_PAGE,
          }),
        );
      }
    } catch (error) {
      if (pfns.length > 0) this.#frames.free(pfns, this.owner);
      throw error;
    }
    return pfns;
  }

  #release(allocation: UserAllocation): void {
    const step = allocation.largePages ? LARGE_PAGE_SIZE : PAGE_SIZE;
    for (let offset = 0; offset < allocation.bytes; offset += step) this.#clear(allocation.va + offset);
    for (const pfn of allocation.pfns) this.#cpu.discard(pfn * PAGE_SIZE, PAGE_SIZE);
    this.#frames.free(allocation.pfns, this.owner);
    this.#allocations.delete(allocation.va);
  }

  #pageCount(va: number, length: number): number {
    return length === 0 ? 0 : Math.floor((va + length - 1) / PAGE_SIZE) - Math.floor(va / PAGE_SIZE) + 1;
  }

  /** Pages of [va, va + length) with a non-zero pin count. */
  #pinnedIn(va: number, length: number): number {
    let pinned = 0;
    this.#forEachPage(va, length, (pins, index) => {
      if (pins !== undefined && pins[index]! > 0) pinned++;
    });
    return pinned;
  }

  /** Visits each 4 KiB page's pin counter, creating counter arrays as needed. */
  #forEachPin(va: number, length: number, visit: (pins: Uint32Array, index: number) => void): void {
    this.#forEachPage(va, length, (_pins, index, entry) => {
      entry.pins ??= new Uint32Array(ENTRIES);
      visit(entry.pins, index);
    });
  }

  #forEachPage(
    va: number,
    length: number,
    visit: (pins: Uint32Array | undefined, index: number, entry: PageDirectoryEntry) => void,
  ): void {
    if (length === 0) return;
    const end = pageFloor(va + length - 1, PAGE_SIZE);
    for (let page = pageFloor(va, PAGE_SIZE); page <= end; page += PAGE_SIZE) {
      const entry = this.#lookup(page)!;
      visit(entry.pins, pteIndex(page), entry);
    }
  }

  /** The PD entry (a page table or a large page) that maps `va`, if `va` is present. */
  #lookup(va: number): PageDirectoryEntry | undefined {
    if (!Number.isSafeInteger(va) || va < 0 || va >= USER_SPACE_END) return undefined;
    const pde = this.#pml4[index(va, PML4_ENTRY)]?.[index(va, PDPT_ENTRY)]?.[index(va, PD_ENTRY)];
    if (pde === undefined || pde.kind === "large") return pde;
    return pde.frames[pteIndex(va)] === 0 ? undefined : pde;
  }

  #pd(va: number): Directory<PageDirectoryEntry> {
    this.#pml4[index(va, PML4_ENTRY)] ??= emptyDirectory();
    const pdpt = this.#pml4[index(va, PML4_ENTRY)]!;
    pdpt[index(va, PDPT_ENTRY)] ??= emptyDirectory();
    return pdpt[index(va, PDPT_ENTRY)]!;
  }

  #setPde(va: number, entry: LargePage): void {
    this.#pd(va)[index(va, PD_ENTRY)] = entry;
  }

  #setPte(va: number, pfn: number): void {
    const pd = this.#pd(va);
    let table = pd[index(va, PD_ENTRY)];
    if (table === undefined) {
      table = { kind: "table", frames: new Float64Array(ENTRIES), present: 0, pins: undefined };
      pd[index(va, PD_ENTRY)] = table;
    }
    (table as PageTable).frames[pteIndex(va)] = pfn + 1;
    (table as PageTable).present++;
  }

  /** Clears the PTE (or large PDE) mapping `va`, dropping tables that become empty. */
  #clear(va: number): void {
    const pdpt = this.#pml4[index(va, PML4_ENTRY)]!;
    const pd = pdpt[index(va, PDPT_ENTRY)]!;
    const entry = pd[index(va, PD_ENTRY)]!;
    if (entry.kind === "table") {
      entry.frames[pteIndex(va)] = 0;
      if (entry.pins !== undefined) entry.pins[pteIndex(va)] = 0;
      if (--entry.present > 0) return;
    }
    pd[index(va, PD_ENTRY)] = undefined;
    if (pd.some((e) => e !== undefined)) return;
    pdpt[index(va, PDPT_ENTRY)] = undefined;
    if (pdpt.some((e) => e !== undefined)) return;
    this.#pml4[index(va, PML4_ENTRY)] = undefined;
  }
}

function emptyDirectory<T>(): Directory<T> {
  return new Array<T | undefined>(ENTRIES).fill(undefined);
}

/** The table index `va` selects at the level whose entries cover `entryBytes`. */
function index(va: number, entryBytes: number): number {
  return Math.floor(va / entryBytes) % ENTRIES;
}

/** The 4 KiB page index inside a PT, or inside a large page. */
function pteIndex(va: number): number {
  return Math.floor(va / PAGE_SIZE) % ENTRIES;
}

function pageFloor(va: number, size: number): number {
  return va - (va % size);
}
