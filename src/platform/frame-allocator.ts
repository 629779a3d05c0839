/**
 * The page-frame allocator: which 4 KiB frame of RAM belongs to whom.
 *
 * Frames are tracked in a sparse radix tree of fanout 512: a leaf covers 512 frames (2 MiB) and
 * holds one owner id per frame; an inner node covers 512 children and keeps their free count. A
 * subtree in which nothing is allocated is simply absent, and its free count is computed from the
 * RAM layout, so a 1 TiB machine costs host memory in proportion to the frames in use, never a
 * dense per-frame array over all of RAM. Leaves and nodes drop back to absent when emptied.
 *
 * Scattered requests place each frame at a uniformly random (seeded) usable frame, taking the
 * next free one from there, so a buffer's pages are physically apart as on a running system.
 * Contiguous requests take the highest suitable run, as MmAllocateContiguousMemory prefers high
 * addresses to keep low (DMA-reachable) memory for those who need it.
 *
 * Frame 0 is never handed out (real firmware keeps it, and a zero PFN reads as "none"), nor are
 * frames outside the RAM ranges (the MMIO hole).
 */
import { inject, injectable } from "inversify";
import { formatAddress, GiB, MiB, PAGE_SIZE } from "./page.js";
import { PhysicalMemory } from "./physical-memory.js";
import { PlatformError } from "./platform-error.js";
import { Random } from "./random.js";

/** Below 16 MiB (ISA reach), below 4 GiB (32-bit reach), or anywhere. */
export type FrameZone = "dma24" | "dma32" | "any";

export interface FrameRequest {
  /** Id from registerOwner. */
  readonly owner: number;
  /** Default "any". */
  readonly zone?: FrameZone;
  /** Default false: frames scattered at random (seeded) over the zone. */
  readonly contiguous?: boolean;
  /** In frames, for contiguous runs (512 = 2 MiB). Default 1. */
  readonly alignment?: number;
  /** All frames' physical addresses are >= this. */
  readonly minAddress?: number;
  /** Inclusive highest acceptable physical byte address. */
  readonly maxAddress?: number;
}

const FANOUT = 512;
/** Owner value of frames inside a leaf that are not allocatable (frame 0, outside RAM). */
const RESERVED = 0xffff_ffff;
const ZONE_END_PFN: Record<FrameZone, number> = {
  dma24: (16 * MiB) / PAGE_SIZE,
  dma32: (4 * GiB) / PAGE_SIZE,
  any: Number.MAX_SAFE_INTEGER,
};

interface FrameNode {
  /** 0 = leaf of FANOUT frames; a node of level k covers FANOUT^(k+1) frames. */
  readonly level: number;
  readonly base: number;
  free: number;
  /** Inner nodes: absent children have nothing allocated. */
  readonly children: (FrameNode | undefined)[] | undefined;
  /** Leaves: owner id per frame, 0 = free, RESERVED = never allocatable. */
  readonly owners: Uint32Array | undefined;
}

/** Usable frames as [start, end) PFN ranges, sorted. */
interface PfnRange {
  readonly start: number;
  readonly end: number;
}

/**
 * Fields and helpers are TypeScript `private`, not `#`: tsx lowers #-members of decorated classes
 * to WeakMap helpers, which would sit on every DMA.
 */
@injectable()
export class FrameAllocator {
  /** Written over freed frames that hold host memory, so use-after-free reads stand out. */
  static readonly POISON = 0x6b;

  private readonly memory: PhysicalMemory;
  private readonly random: Random;
  private readonly usable: readonly PfnRange[];
  private readonly root: FrameNode;
  private readonly ownerNames: string[] = [""];
  private readonly ownerIds = new Map<string, number>();
  private readonly ownedCounts: number[] = [0];

  constructor(@inject(PhysicalMemory) memory: PhysicalMemory, @inject(Random) random: Random) {
    this.memory = memory;
    this.random = random;
    this.usable = memory.ranges
      .map((r) => ({ start: Math.max(1, r.start / PAGE_SIZE), end: r.end / PAGE_SIZE }))
      .filter((r) => r.end > r.start);
    const endPfn = memory.limit / PAGE_SIZE;
    let level = 0;
    while (FANOUT ** (level + 1) < endPfn) level++;
    this.root = this.createNode(level, 0);
  }

  /** Ids start at 1 (0 means free); the same name always gets the same id. */
  registerOwner(name: string): number {
    if (typeof name !== "string" || name.length === 0) {
      throw new PlatformError("bad-handle", "a frame owner needs a non-empty name");
    }
    const known = this.ownerIds.get(name);
    if (known !== undefined) return known;
    const id = this.ownerNames.length;
    this.ownerNames.push(name);
    this.ownedCounts.push(0);
    this.ownerIds.set(name, id);
    return id;
  }

  ownerName(owner: number): string {
    this.checkOwner(owner);
    return this.ownerNames[owner]!;
  }

  /**
   * Allocates `count` frames and returns their PFNs (ascending for a contiguous run, in placement
   * order otherwise). Throws PlatformError "no-memory" when the request cannot be met, leaving
   * every frame as it was.
   */
  allocate(count: number, request: FrameRequest): number[] {
    if (!Number.isSafeInteger(count) || count < 0) {
      throw new PlatformError("bad-length", `frame count ${String(count)} is not a non-negative integer`);
    }
    this.checkOwner(request.owner);
    const [start, end] = this.bounds(request);
    const contiguous = request.contiguous ?? false;
    const alignment = request.alignment ?? 1;
    if (!Number.isSafeInteger(alignment) || alignment < 1) {
      throw new PlatformError(
        "out-of-range",
        `alignment ${String(alignment)} must be a positive number of frames`,
      );
    }
    if (!contiguous && alignment !== 1) {
      throw new PlatformError("out-of-range", "alignment applies to contiguous requests only");
    }
    if (count === 0) return [];
    if (contiguous) {
      const first = this.findRun(count, alignment, start, end);
      if (first < 0) throw this.noMemory(count, request, "contiguous run");
      const pfns: number[] = [];
      for (let pfn = first; pfn < first + count; pfn++) {
        this.setOwner(pfn, request.owner);
        pfns.push(pfn);
      }
      this.ownedCounts[request.owner]! += count;
      return pfns;
    }
    if (this.countFree(this.root, start, end) < count) throw this.noMemory(count, request, "frames");
    const pfns: number[] = [];
    for (let i = 0; i < count; i++) {
      const from = this.randomUsable(start, end);
      let pfn = this.findFree(this.root, from, end);
      if (pfn < 0) pfn = this.findFree(this.root, start, from);
      this.setOwner(pfn, request.owner);
      pfns.push(pfn);
    }
    this.ownedCounts[request.owner]! += count;
    return pfns;
  }

  /**
   * Frees frames of `owner`. Validates every PFN first: "double-free" if a frame is free (or
   * listed twice), "not-owner" if another owner holds it. Then frees them and poisons those that
   * hold host memory.
   */
  free(pfns: readonly number[], owner: number): void {
    this.checkOwner(owner);
    const seen = new Set<number>();
    for (const pfn of pfns) {
      const current = this.ownerOf(pfn);
      if (current === 0 || seen.has(pfn)) {
        throw new PlatformError("double-free", `frame ${formatAddress(pfn * PAGE_SIZE)} is already free`);
      }
      if (current !== owner) {
        throw new PlatformError(
          "not-owner",
          `frame ${formatAddress(pfn * PAGE_SIZE)} belongs to ${this.ownerNames[current]}, not ${this.ownerNames[owner]}`,
        );
      }
      seen.add(pfn);
    }
    for (const pfn of pfns) {
      this.clearOwner(pfn);
      if (this.memory.isTouched(pfn)) this.memory.fill(pfn * PAGE_SIZE, PAGE_SIZE, FrameAllocator.POISON);
    }
    this.ownedCounts[owner]! -= pfns.length;
  }

  /** The owner of a RAM frame; 0 when free (or never allocatable, like frame 0). */
  ownerOf(pfn: number): number {
    if (!Number.isSafeInteger(pfn) || pfn < 0 || !this.memory.isRam(pfn * PAGE_SIZE, PAGE_SIZE)) {
      throw new PlatformError("out-of-range", `frame number ${String(pfn)} is not a RAM frame`);
    }
    let node: FrameNode | undefined = this.root;
    while (node !== undefined && node.level > 0) {
      node = node.children![Math.floor((pfn - node.base) / span(node.level - 1))];
    }
    if (node === undefined) return 0;
    const owner = node.owners![pfn - node.base]!;
    return owner === RESERVED ? 0 : owner;
  }

  framesOwnedBy(owner: number): number {
    this.checkOwner(owner);
    return this.ownedCounts[owner]!;
  }

  /** Free frames in a zone (default: all of RAM). */
  freeFrameCount(zone: FrameZone = "any"): number {
    if (!Object.hasOwn(ZONE_END_PFN, zone))
      throw new PlatformError("out-of-range", `unknown frame zone ${String(zone)}`);
    return this.countFree(this.root, 0, ZONE_END_PFN[zone]);
  }

  private checkOwner(owner: number): void {
    if (!Number.isSafeInteger(owner) || owner < 1 || owner >= this.ownerNames.length) {
      throw new PlatformError("bad-handle", `frame owner ${String(owner)} was never registered`);
    }
  }

  /** The request's acceptable PFNs as [start, end). */
  private bounds(request: FrameRequest): [number, number] {
    const zone = request.zone ?? "any";
    if (!Object.hasOwn(ZONE_END_PFN, zone))
      throw new PlatformError("out-of-range", `unknown frame zone ${String(zone)}`);
    let start = 0;
    let end = ZONE_END_PFN[zone];
    if (request.minAddress !== undefined) {
      checkByteAddress(request.minAddress, "minimum address");
      start = Math.ceil(request.minAddress / PAGE_SIZE);
    }
    if (request.maxAddress !== undefined) {
      checkByteAddress(request.maxAddress, "maximum address");
      end = Math.min(end, Math.floor((request.maxAddress + 1) / PAGE_SIZE));
    }
    return [start, Math.max(start, end)];
  }

  private noMemory(count: number, request: FrameRequest, what: string): PlatformError {
    const bounds = [
      `zone ${request.zone ?? "any"}`,
      request.minAddress === undefined ? "" : `from ${formatAddress(request.minAddress)}`,
      request.maxAddress === undefined ? "" : `up to ${formatAddress(request.maxAddress)}`,
      request.alignment === undefined ? "" : `aligned to ${request.alignment} frames`,
    ].filter((s) => s !== "");
    return new PlatformError("no-memory", `no ${count} free ${what} in ${bounds.join(", ")}`);
  }

  /** Usable frames in [start, end), from the RAM layout alone. */
  private usableIn(start: number, end: number): number {
    let total = 0;
    for (const r of this.usable) total += Math.max(0, Math.min(end, r.end) - Math.max(start, r.start));
    return total;
  }

  /** A uniformly random usable frame in [start, end), which holds at least one usable frame. */
  private randomUsable(start: number, end: number): number {
    let index = this.random.below(this.usableIn(start, end));
    for (const r of this.usable) {
      const length = Math.max(0, Math.min(end, r.end) - Math.max(start, r.start));
      if (index < length) return Math.max(start, r.start) + index;
      index -= length;
    }
    throw new Error("unreachable: random index beyond the usable frames");
  }

  private createNode(level: number, base: number): FrameNode {
    const free = this.usableIn(base, base + span(level));
    if (level > 0)
      return { level, base, free, children: new Array(FANOUT).fill(undefined), owners: undefined };
    const owners = new Uint32Array(FANOUT).fill(RESERVED);
    for (const r of this.usable) {
      const from = Math.max(base, r.start);
      const to = Math.min(base + FANOUT, r.end);
      if (from < to) owners.fill(0, from - base, to - base);
    }
    return { level, base, free, children: undefined, owners };
  }

  private setOwner(pfn: number, owner: number): void {
    let node = this.root;
    while (node.level > 0) {
      node.free--;
      const childSpan = span(node.level - 1);
      const index = Math.floor((pfn - node.base) / childSpan);
      let child = node.children![index];
      if (child === undefined) {
        child = this.createNode(node.level - 1, node.base + index * childSpan);
        node.children![index] = child;
      }
      node = child;
    }
    node.free--;
    node.owners![pfn - node.base] = owner;
  }

  /** Frees one frame and drops nodes that no longer hold any allocation. */
  private clearOwner(pfn: number): void {
    let node = this.root;
    while (node.level > 0) {
      node.free++;
      const index = Math.floor((pfn - node.base) / span(node.level - 1));
      const child = node.children![index]!;
      if (child.free + 1 === this.usableIn(child.base, child.base + span(child.level))) {
        node.children![index] = undefined;
        return;
      }
      node = child;
    }
    node.free++;
    node.owners![pfn - node.base] = 0;
  }

  /** Free frames of `node` within [start, end). */
  private countFree(node: FrameNode, start: number, end: number): number {
    const nodeEnd = node.base + span(node.level);
    const from = Math.max(start, node.base);
    const to = Math.min(end, nodeEnd);
    if (from >= to || node.free === 0) return 0;
    if (from === node.base && to === nodeEnd) return node.free;
    if (node.level === 0) {
      let free = 0;
      const owners = node.owners!;
      for (let i = from - node.base; i < to - node.base; i++) if (owners[i] === 0) free++;
      return free;
    }
    const childSpan = span(node.level - 1);
    let free = 0;
    const last = Math.floor((to - 1 - node.base) / childSpan);
    for (let i = Math.floor((from - node.base) / childSpan); i <= last; i++) {
      const child = node.children![i];
      const childBase = node.base + i * childSpan;
      free +=
        child === undefined
          ? this.usableIn(Math.max(from, childBase), Math.min(to, childBase + childSpan))
          : this.countFree(child, from, to);
    }
    return free;
  }

  /** The lowest free frame of `node` in [start, end), or -1. */
  private findFree(node: FrameNode, start: number, end: number): number {
    const from = Math.max(start, node.base);
    const to = Math.min(end, node.base + span(node.level));
    if (from >= to || node.free === 0) return -1;
    if (node.level === 0) {
      const owners = node.owners!;
      for (let i = from - node.base; i < to - node.base; i++) if (owners[i] === 0) return node.base + i;
      return -1;
    }
    const childSpan = span(node.level - 1);
    const last = Math.floor((to - 1 - node.base) / childSpan);
    for (let i = Math.floor((from - node.base) / childSpan); i <= last; i++) {
      const child = node.children![i];
      const childBase = node.base + i * childSpan;
      const found =
        child === undefined
          ? this.firstUsable(Math.max(from, childBase), Math.min(to, childBase + childSpan))
          : this.findFree(child, from, to);
      if (found >= 0) return found;
    }
    return -1;
  }

  private firstUsable(start: number, end: number): number {
    for (const r of this.usable) {
      const from = Math.max(start, r.start);
      if (from < Math.min(end, r.end)) return from;
    }
    return -1;
  }

  /** The highest allocated frame of `node` in [start, end), or -1; [start, end) is all usable. */
  private lastAllocated(node: FrameNode, start: number, end: number): number {
    const from = Math.max(start, node.base);
    const to = Math.min(end, node.base + span(node.level));
    if (from >= to) return -1;
    if (node.level === 0) {
      const owners = node.owners!;
      for (let i = to - 1 - node.base; i >= from - node.base; i--) if (owners[i] !== 0) return node.base + i;
      return -1;
    }
    const childSpan = span(node.level - 1);
    const first = Math.floor((from - node.base) / childSpan);
    for (let i = Math.floor((to - 1 - node.base) / childSpan); i >= first; i--) {
      const child = node.children![i];
      if (child === undefined) continue;
      const found = this.lastAllocated(child, from, to);
      if (found >= 0) return found;
    }
    return -1;
  }

  /** The first PFN of the highest free aligned run of `count` frames in [start, end), or -1. */
  private findRun(count: number, alignment: number, start: number, end: number): number {
    for (let r = this.usable.length - 1; r >= 0; r--) {
      const low = Math.max(start, this.usable[r]!.start);
      let top = Math.min(end, this.usable[r]!.end);
      while (top - low >= count) {
        const first = Math.floor((top - count) / alignment) * alignment;
        if (first < low) break;
        const allocated = this.lastAllocated(this.root, first, first + count);
        if (allocated < 0) return first;
        top = allocated;
      }
    }
    return -1;
  }
}

/** Frames covered by a node of `level`. */
function span(level: number): number {
  return FANOUT ** (level + 1);
}

function checkByteAddress(value: number, what: string): void {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new PlatformError("bad-address", `${what} ${String(value)} is not a non-negative integer`);
  }
}
