import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  DMA32_LIMIT_PFN,
  IovaAllocator,
  MAX_SIZE_ALIGNMENT,
  roundUpPowerOfTwo,
} from "../../src/hal/iova-allocator.js";
import { IOVA_DEPOT_MAGAZINES, IOVA_MAGAZINE_SIZE, IovaRcache } from "../../src/hal/iova-rcache.js";
import { PlatformError } from "../../src/platform/platform-error.js";
import { Counters } from "../../src/trace/counters.js";

const APERTURE_48 = 2 ** 36 - 1;

interface Held {
  readonly pfn: number;
  /** Pages asked for. */
  readonly pages: number;
  /** Pages reserved. */
  readonly size: number;
  readonly fast: boolean;
}

type Op =
  | { readonly kind: "fast"; readonly pages: number; readonly limit: number }
  | {
      readonly kind: "range";
      readonly pages: number;
      readonly limit: number;
      readonly min: number;
      readonly align: number;
    }
  | { readonly kind: "free"; readonly pick: number };

function opArbitrary(aperture: number): fc.Arbitrary<Op> {
  return fc.oneof(
    fc.record({
      kind: fc.constant("fast" as const),
      pages: fc.integer({ min: 1, max: 40 }),
      limit: fc.integer({ min: 1, max: aperture }),
    }),
    fc.record({
      kind: fc.constant("range" as const),
      pages: fc.integer({ min: 1, max: 64 }),
      limit: fc.integer({ min: 1, max: aperture }),
      min: fc.integer({ min: 1, max: aperture }),
      align: fc.constantFrom(1, 2, 8, 512),
    }),
    fc.record({ kind: fc.constant("free" as const), pick: fc.nat() }),
  );
}

/** Runs `ops`, checking after each step that what is held is disjoint, in bounds and aligned. */
function run(allocator: IovaAllocator, ops: readonly Op[]): Held[] {
  const held: Held[] = [];
  for (const op of ops) {
    if (op.kind === "free") {
      if (held.length === 0) continue;
      const [h] = held.splice(op.pick % held.length, 1);
      if (h!.fast) allocator.freeFast(h!.pfn, h!.pages);
      else allocator.freeRange(h!.pfn, h!.pages);
      continue;
    }
    if (op.kind === "fast") {
      const pfn = allocator.allocFast(op.pages, op.limit);
      if (pfn === undefined) continue;
      const size = IovaAllocator.fastSize(op.pages);
      expect(pfn).toBeGreaterThanOrEqual(1);
      expect(pfn + size - 1).toBeLessThanOrEqual(op.limit);
      expect(pfn % Math.min(roundUpPowerOfTwo(size), MAX_SIZE_ALIGNMENT)).toBe(0);
      held.push({ pfn, pages: op.pages, size, fast: true });
    } else {
      const min = Math.min(op.min, op.limit);
      const pfn = allocator.allocRange(op.pages, op.limit, min, op.align);
      if (pfn === undefined) continue;
      expect(pfn).toBeGreaterThanOrEqual(min);
      expect(pfn + op.pages - 1).toBeLessThanOrEqual(op.limit);
      expect(pfn % op.align).toBe(0);
      held.push({ pfn, pages: op.pages, size: op.pages, fast: false });
    }
    const sorted = [...held].sort((a, b) => a.pfn - b.pfn);
    for (let i = 1; i < sorted.length; i++) {
      expect(sorted[i]!.pfn).toBeGreaterThan(sorted[i - 1]!.pfn + sorted[i - 1]!.size - 1);
    }
    expect(allocator.allocatedPages).toBe(held.reduce((sum, h) => sum + h.size, 0));
  }
  return held;
}

describe("IovaAllocator", () => {
  it("hands out disjoint, in-bounds, aligned ranges and takes every one back (property)", () => {
    fc.assert(
      fc.property(fc.array(opArbitrary(4096), { maxLength: 200 }), (ops) => {
        const allocator = new IovaAllocator(4096);
        const held = run(allocator, ops);
        for (const h of held) {
          if (h.fast) allocator.freeFast(h.pfn, h.pages);
          else allocator.freeRange(h.pfn, h.pages);
        }
        expect(allocator.allocatedPages).toBe(0);
        allocator.drainCache();
        expect(allocator.rangeCount).toBe(0);
        expect(allocator.cachedPages).toBe(0);
        // Nothing leaked: the whole aperture is one free range again.
        expect(allocator.allocRange(4096, 4096)).toBe(1);
      }),
      { numRuns: 300 },
    );
  });

  it("keeps ranges that fit in a boundary region from crossing it (property)", () => {
    fc.assert(
      fc.property(fc.array(opArbitrary(4096), { maxLength: 100 }), (ops) => {
        const allocator = new IovaAllocator(4096, undefined, 64);
        for (const h of run(allocator, ops)) {
          if (h.size <= 64) expect(Math.floor(h.pfn / 64)).toBe(Math.floor((h.pfn + h.size - 1) / 64));
        }
      }),
      { numRuns: 200 },
    );
  });

  it("never hands out IOVA 0 and allocates top-down under the limit", () => {
    const allocator = new IovaAllocator(APERTURE_48);
    expect(allocator.allocFast(1, APERTURE_48)).toBe(APERTURE_48);
    expect(allocator.allocFast(1, APERTURE_48)).toBe(APERTURE_48 - 1);
    expect(allocator.allocFast(1, DMA32_LIMIT_PFN)).toBe(DMA32_LIMIT_PFN);
    const tiny = new IovaAllocator(3);
    expect(tiny.allocRange(1, 3)).toBe(3);
    expect(tiny.allocRange(1, 3)).toBe(2);
    expect(tiny.allocRange(1, 3)).toBe(1);
    expect(tiny.allocRange(1, 3)).toBeUndefined();
  });

  it("size-aligns fast allocations and rounds small sizes up to a power of two", () => {
    const allocator = new IovaAllocator(APERTURE_48);
    const a = allocator.allocFast(3, APERTURE_48)!;
    expect(a % 4).toBe(0);
    expect(allocator.allocatedPages).toBe(4);
    const b = allocator.allocFast(100, APERTURE_48)!;
    expect(b % 128).toBe(0);
    expect(allocator.allocatedPages).toBe(104);
    const c = allocator.allocFast(5000, APERTURE_48)!;
    expect(c % MAX_SIZE_ALIGNMENT).toBe(0);
  });

  it("reuses a freed one-page IOVA from the rcache without a search", () => {
    const counters = new Counters();
    const allocator = new IovaAllocator(APERTURE_48, counters);
    const first = allocator.allocFast(1, APERTURE_48)!;
    allocator.freeFast(first, 1);
    expect(allocator.allocatedPages).toBe(0);
    const searches = counters.get("hal.iova.search");
    for (let i = 0; i < 1000; i++) {
      const pfn = allocator.allocFast(1, APERTURE_48)!;
      expect(pfn).toBe(first);
      allocator.freeFast(pfn, 1);
    }
    expect(counters.get("hal.iova.search")).toBe(searches);
    expect(counters.get("hal.iova.rcache.hit")).toBe(1000);
  });

  it("does not hand a cached IOVA above the limit of a narrower device", () => {
    const allocator = new IovaAllocator(APERTURE_48);
    const high = allocator.allocFast(1, APERTURE_48)!;
    allocator.freeFast(high, 1);
    const low = allocator.allocFast(1, DMA32_LIMIT_PFN)!;
    expect(low).toBeLessThanOrEqual(DMA32_LIMIT_PFN);
    expect(allocator.allocFast(1, APERTURE_48)).toBe(high);
  });

  it("gives magazines back to the free space once the depot is full", () => {
    const allocator = new IovaAllocator(APERTURE_48);
    const count = IOVA_MAGAZINE_SIZE * (IOVA_DEPOT_MAGAZINES + 4);
    const pfns: number[] = [];
    for (let i = 0; i < count; i++) pfns.push(allocator.allocFast(1, APERTURE_48)!);
    for (const pfn of pfns) allocator.freeFast(pfn, 1);
    expect(allocator.cachedPages).toBeLessThan(count);
    expect(allocator.rangeCount).toBe(allocator.cachedPages);
    allocator.drainCache();
    expect(allocator.rangeCount).toBe(0);
  });

  it("drains the rcache and retries before reporting exhaustion", () => {
    const allocator = new IovaAllocator(64);
    const ones: number[] = [];
    for (let i = 0; i < 64; i++) ones.push(allocator.allocFast(1, 64)!);
    expect(allocator.allocFast(1, 64)).toBeUndefined();
    for (const pfn of ones) allocator.freeFast(pfn, 1);
    // Every page sits in the rcache as a one-page range; a 64-page request still succeeds.
    expect(allocator.allocRange(64, 64)).toBe(1);
  });

  it("rejects bad frees and leaves its state unchanged", () => {
    const allocator = new IovaAllocator(1024);
    const pfn = allocator.allocFast(4, 1024)!;
    const snapshot = (): number[] => [allocator.allocatedPages, allocator.rangeCount, allocator.cachedPages];
    const before = snapshot();
    expect(() => allocator.freeFast(pfn + 1, 1)).toThrow(PlatformError);
    expect(() => allocator.freeFast(pfn, 8)).toThrow(/holds 4 pages/);
    expect(() => allocator.freeRange(0, 1)).toThrow(PlatformError);
    expect(() => allocator.allocFast(0, 1024)).toThrow(PlatformError);
    expect(() => allocator.allocFast(1, 2048)).toThrow(PlatformError);
    expect(() => allocator.allocRange(1, 1024, 1, 3)).toThrow(/power of two/);
    expect(snapshot()).toEqual(before);
    allocator.freeFast(pfn, 4);
    expect(() => allocator.freeFast(pfn, 4)).toThrow(/double free/);
  });

  it("never hands out a reserved range, and cannot free it", () => {
    const allocator = new IovaAllocator(64);
    allocator.reserve(60, 63);
    expect(allocator.allocRange(1, 64)).toBe(64);
    expect(allocator.allocRange(2, 64)).toBe(58);
    expect(allocator.allocRange(4, 63, 56)).toBeUndefined();
    expect(() => allocator.freeRange(60, 4)).toThrow(PlatformError);
    expect(() => allocator.reserve(58, 58)).toThrow(/already reserved/);
    expect(allocator.allocatedPages).toBe(3);
  });
});

describe("IovaRcache", () => {
  it("keeps freed ranges in magazines, then the depot, and gives back the overflow", () => {
    const released: number[] = [];
    const rcache = new IovaRcache((pfn) => released.push(pfn));
    const total = IOVA_MAGAZINE_SIZE * (IOVA_DEPOT_MAGAZINES + 3);
    for (let pfn = 1; pfn <= total; pfn++) rcache.insert(pfn, 0);
    // loaded + prev + the depot are full; the rest went back magazine by magazine.
    expect(rcache.cachedPages).toBe(IOVA_MAGAZINE_SIZE * (IOVA_DEPOT_MAGAZINES + 2));
    expect(released.length).toBe(IOVA_MAGAZINE_SIZE);
    const taken = new Set<number>();
    for (;;) {
      const pfn = rcache.remove(0, total);
      if (pfn === undefined) break;
      taken.add(pfn);
    }
    expect(taken.size).toBe(IOVA_MAGAZINE_SIZE * (IOVA_DEPOT_MAGAZINES + 2));
    expect(released.some((pfn) => taken.has(pfn))).toBe(false);
    expect(rcache.cachedPages).toBe(0);
  });

  it("pops only ranges that end within the caller's limit, per size", () => {
    const rcache = new IovaRcache(() => {});
    rcache.insert(100, 2);
    rcache.insert(8, 2);
    expect(rcache.remove(2, 50)).toBe(8);
    expect(rcache.remove(2, 102)).toBeUndefined();
    expect(rcache.remove(1, 1000)).toBeUndefined();
    expect(rcache.remove(2, 103)).toBe(100);
    expect(() => rcache.insert(1, 6)).toThrow(PlatformError);
  });
});
