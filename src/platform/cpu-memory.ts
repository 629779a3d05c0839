/**
 * The CPU's view of physical memory, with the coherency switch.
 *
 * Coherent (x86, the default): DMA snoops the caches, so the CPU reads and writes straight
 * through to PhysicalMemory and flushes cost nothing — which is why KeFlushIoBuffers is a no-op
 * on x86/x64 (WDK "Flushing Cached Data during DMA Operations").
 *
 * Non-coherent (ARM without _CCA, many SoCs): the CPU works through a write-back cache of
 * 64-byte lines. A CPU write sits in a dirty line and reaches memory only when flushed or evicted,
 * so a device reading PhysicalMemory sees old data until KeFlushIoBuffers / FlushAdapterBuffers
 * write it back; a line the CPU has cached hides what a device writes underneath until it is
 * invalidated. The cache keeps whole-page entries (a page copy and a state per line), bounded in
 * number, evicted in least-recently-used order (writing dirty lines back), recycled so that the
 * data path does not allocate once the cache is warm.
 *
 * Uncached frames: memory the OS maps non-cacheable (a common buffer with CacheEnabled FALSE,
 * MmNonCached or MmWriteCombined contiguous memory) bypasses the cache, so CPU loads and stores
 * reach PhysicalMemory at once and need no KeFlushIoBuffers (reference section 5: non-coherent
 * platforms honour CacheEnabled). The attribute is a set of frame numbers, as large as the
 * uncached memory in use, checked once per page; a coherent machine never fills it, because x86
 * snoops DMA whatever the attribute.
 */
import { inject, injectable } from "inversify";
import { Counters } from "../trace/counters.js";
import { checkAddress, checkLength, formatAddress, PAGE_SIZE } from "./page.js";
import { PhysicalMemory } from "./physical-memory.js";
import { PlatformError } from "./platform-error.js";
import type { PlatformOptions as PlatformOptionsShape } from "./platform-options.js";
import { PlatformOptions } from "./tokens.js";

export const CACHE_LINE_SIZE = 64;
const LINES_PER_PAGE = PAGE_SIZE / CACHE_LINE_SIZE;
const INVALID = 0;
const CLEAN = 1;
const DIRTY = 2;

interface CacheEntry {
  pfn: number;
  readonly data: Uint8Array;
  /** INVALID, CLEAN or DIRTY per line. */
  readonly lines: Uint8Array;
}

/**
 * Fields and helpers are TypeScript `private`, not `#`: tsx lowers #-members of decorated classes
 * to WeakMap helpers, which would sit on every DMA.
 */
@injectable()
export class CpuMemory {
  /** Pages the non-coherent cache holds at most (4 MiB, a last-level cache slice). */
  static readonly CACHE_PAGES = 1024;

  readonly coherent: boolean;
  private readonly memory: PhysicalMemory;
  private readonly counters: Counters;
  /** Insertion order is recency order: the first entry is the least recently used. */
  private readonly cache = new Map<number, CacheEntry>();
  private readonly spare: CacheEntry[] = [];
  /** Frames mapped non-cacheable (empty on a coherent machine). */
  private readonly uncached = new Set<number>();

  constructor(
    @inject(PhysicalMemory) memory: PhysicalMemory,
    @inject(PlatformOptions) options: PlatformOptionsShape,
    @inject(Counters) counters: Counters,
  ) {
    this.memory = memory;
    this.coherent = options.coherent;
    this.counters = counters;
  }

  /** Pages with at least one cached line (always 0 when coherent). */
  get cachedPages(): number {
    return this.cache.size;
  }

  /** Frames currently mapped non-cacheable. */
  get uncachedPages(): number {
    return this.uncached.size;
  }

  /**
   * Sets the caching attribute of whole frames, as mapping them MmCached or MmNonCached does. A
   * frame turning uncached first has its dirty lines written back and its lines dropped (the
   * cache maintenance Windows does when it changes a page's attribute), so no stale line can
   * later shadow memory. A no-op on a coherent machine.
   */
  setCaching(pfns: readonly number[], cached: boolean): void {
    for (const pfn of pfns) {
      if (!Number.isSafeInteger(pfn) || pfn < 0 || !this.memory.isRam(pfn * PAGE_SIZE, PAGE_SIZE)) {
        throw new PlatformError("out-of-range", `frame ${String(pfn)} is not RAM`);
      }
    }
    if (this.coherent) return;
    for (const pfn of pfns) {
      if (cached) {
        this.uncached.delete(pfn);
        continue;
      }
      const entry = this.cache.get(pfn);
      if (entry !== undefined) this.evict(entry, true);
      this.uncached.add(pfn);
    }
  }

  /** Whether CPU accesses to frame `pfn` go through the cache (always true when coherent). */
  isCached(pfn: number): boolean {
    return !this.uncached.has(pfn);
  }

  /** A CPU load of [pa, pa + dst.length): cached lines win over memory. */
  read(pa: number, dst: Uint8Array): void {
    this.check(pa, dst.length);
    if (this.coherent) {
      this.memory.read(pa, dst);
      return;
    }
    this.forEachPage(pa, dst.length, (entry, offset, length, done) => {
      if (entry === undefined) {
        this.memory.read(pa + done, dst.subarray(done, done + length));
        return;
      }
      this.fillLines(entry, offset, offset + length);
      dst.set(entry.data.subarray(offset, offset + length), done);
    });
  }

  /** A CPU store to [pa, pa + src.length): lands in dirty lines when non-coherent. */
  write(pa: number, src: Uint8Array): void {
    this.check(pa, src.length);
    if (this.coherent) {
      this.memory.write(pa, src);
      return;
    }
    this.forEachPage(pa, src.length, (entry, offset, length, done) => {
      if (entry === undefined) {
        this.memory.write(pa + done, src.subarray(done, done + length));
        return;
      }
      // Read-for-ownership of the partly written lines at the edges only.
      const end = offset + length;
      if (offset % CACHE_LINE_SIZE !== 0 || length < CACHE_LINE_SIZE)
        this.fillLines(entry, offset, offset + 1);
      if (end % CACHE_LINE_SIZE !== 0) this.fillLines(entry, end - 1, end);
      entry.data.set(src.subarray(done, done + length), offset);
      entry.lines.fill(DIRTY, lineIndex(offset), lineIndex(offset + length - 1) + 1);
    });
  }

  /**
   * Writes dirty lines of [pa, pa + length) back to memory and keeps them cached clean: what
   * KeFlushIoBuffers and FlushAdapterBuffers do before a device reads.
   */
  flush(pa: number, length: number): void {
    this.check(pa, length);
    this.counters.add("cpu.cache.flush.calls");
    if (this.coherent) return;
    this.forEachCached(pa, length, (entry, from, to) => {
      this.counters.add("cpu.cache.flush.lines", this.writeBack(entry, from, to));
    });
  }

  /**
   * Drops the lines of [pa, pa + length) so the CPU sees what a device wrote. As arm64's
   * dcache_inval_poc does, lines only partly inside the range are written back first (they hold
   * the CPU's neighbouring data); dirty lines wholly inside are discarded.
   */
  invalidate(pa: number, length: number): void {
    this.check(pa, length);
    this.counters.add("cpu.cache.invalidate.calls");
    if (this.coherent) return;
    this.forEachCached(pa, length, (entry, from, to) => {
      const first = lineIndex(from);
      const last = lineIndex(to - 1);
      if (from % CACHE_LINE_SIZE !== 0) this.writeBack(entry, from, from + 1);
      if (to % CACHE_LINE_SIZE !== 0) this.writeBack(entry, to - 1, to);
      let discarded = 0;
      for (let line = first; line <= last; line++) if (entry.lines[line] === DIRTY) discarded++;
      entry.lines.fill(INVALID, first, last + 1);
      this.counters.add("cpu.cache.invalidate.lines", last - first + 1);
      if (discarded > 0) this.counters.add("cpu.cache.discard.dirty.lines", discarded);
      if (entry.lines.every((state) => state === INVALID)) this.evict(entry, false);
    });
  }

  /**
   * The OS hands frames back to the allocator: their cached lines, dirty or not, hold dead data
   * and are dropped without write-back, so a stale line can never land on the frame's next owner.
   */
  discard(pa: number, length: number): void {
    this.check(pa, length);
    if (this.coherent) return;
    this.forEachCached(pa, length, (entry, from, to) => {
      entry.lines.fill(INVALID, lineIndex(from), lineIndex(to - 1) + 1);
      if (entry.lines.every((state) => state === INVALID)) this.evict(entry, false);
    });
  }

  /**
   * Zero-fills [pa, pa + length) as the OS does for fresh user pages (MmZeroPage): the stores go
   * through the cache coherently, modelled as dropping the lines and zeroing memory. Untouched
   * frames stay untouched.
   */
  zero(pa: number, length: number): void {
    this.discard(pa, length);
    this.memory.fill(pa, length, 0);
  }

  /** Writes back every dirty line and empties the cache (a WBINVD). */
  writeBackAll(): void {
    for (const entry of [...this.cache.values()]) this.evict(entry, true);
  }

  private check(pa: number, length: number): void {
    checkAddress(pa, "physical address");
    checkLength(length, "length");
    if (!this.memory.isRam(pa, length)) {
      throw new PlatformError(
        "out-of-range",
        `CPU access ${formatAddress(pa)}+${formatAddress(length)} is not RAM`,
      );
    }
  }

  /**
   * Visits each page of [pa, pa + length) with its cache entry (created or promoted to most
   * recent), or undefined for an uncached frame.
   */
  private forEachPage(
    pa: number,
    length: number,
    visit: (entry: CacheEntry | undefined, offset: number, length: number, done: number) => void,
  ): void {
    const anyUncached = this.uncached.size > 0;
    let done = 0;
    while (done < length) {
      const address = pa + done;
      const offset = address % PAGE_SIZE;
      const chunk = Math.min(PAGE_SIZE - offset, length - done);
      const pfn = (address - offset) / PAGE_SIZE;
      visit(anyUncached && this.uncached.has(pfn) ? undefined : this.entry(pfn), offset, chunk, done);
      done += chunk;
    }
  }

  /** Visits the cached pages of [pa, pa + length) with the line-aligned byte range inside each. */
  private forEachCached(
    pa: number,
    length: number,
    visit: (entry: CacheEntry, from: number, to: number) => void,
  ): void {
    let done = 0;
    while (done < length) {
      const address = pa + done;
      const offset = address % PAGE_SIZE;
      const chunk = Math.min(PAGE_SIZE - offset, length - done);
      const entry = this.cache.get((address - offset) / PAGE_SIZE);
      if (entry !== undefined) visit(entry, offset, offset + chunk);
      done += chunk;
    }
  }

  private entry(pfn: number): CacheEntry {
    let entry = this.cache.get(pfn);
    if (entry !== undefined) {
      this.cache.delete(pfn);
      this.cache.set(pfn, entry);
      return entry;
    }
    if (this.cache.size >= CpuMemory.CACHE_PAGES) this.evict(this.cache.values().next().value!, true);
    entry = this.spare.pop() ?? {
      pfn,
      data: new Uint8Array(PAGE_SIZE),
      lines: new Uint8Array(LINES_PER_PAGE),
    };
    entry.pfn = pfn;
    this.cache.set(pfn, entry);
    return entry;
  }

  private evict(entry: CacheEntry, writeBack: boolean): void {
    if (writeBack) this.counters.add("cpu.cache.evict.lines", this.writeBack(entry, 0, PAGE_SIZE));
    entry.lines.fill(INVALID);
    this.cache.delete(entry.pfn);
    this.spare.push(entry);
  }

  /** Loads the invalid lines overlapping [from, to) of the page from memory, in runs. */
  private fillLines(entry: CacheEntry, from: number, to: number): void {
    if (from >= to) return;
    const last = lineIndex(to - 1);
    let line = lineIndex(from);
    while (line <= last) {
      if (entry.lines[line] !== INVALID) {
        line++;
        continue;
      }
      let end = line + 1;
      while (end <= last && entry.lines[end] === INVALID) end++;
      const start = line * CACHE_LINE_SIZE;
      this.memory.read(entry.pfn * PAGE_SIZE + start, entry.data.subarray(start, end * CACHE_LINE_SIZE));
      entry.lines.fill(CLEAN, line, end);
      this.counters.add("cpu.cache.miss.lines", end - line);
      line = end;
    }
  }

  /** Writes the dirty lines overlapping byte range [from, to) back in runs; returns lines written. */
  private writeBack(entry: CacheEntry, from: number, to: number): number {
    const last = lineIndex(to - 1);
    let written = 0;
    let line = lineIndex(from);
    while (line <= last) {
      if (entry.lines[line] !== DIRTY) {
        line++;
        continue;
      }
      let end = line + 1;
      while (end <= last && entry.lines[end] === DIRTY) end++;
      const start = line * CACHE_LINE_SIZE;
      this.memory.write(entry.pfn * PAGE_SIZE + start, entry.data.subarray(start, end * CACHE_LINE_SIZE));
      entry.lines.fill(CLEAN, line, end);
      written += end - line;
      line = end;
    }
    return written;
  }
}

function lineIndex(offset: number): number {
  return Math.floor(offset / CACHE_LINE_SIZE);
}
