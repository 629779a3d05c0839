import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { BuddyAllocator } from "../../src/hal/iommu-interface/buddy-allocator.js";
import { LogicalRangeMap } from "../../src/hal/iommu-interface/logical-range-map.js";

type Op = { kind: "alloc"; pages: number; min: number; span: number } | { kind: "free"; index: number };

const ops = fc.array(
  fc.oneof(
    fc.record({
      kind: fc.constant("alloc" as const),
      pages: fc.integer({ min: 1, max: 40 }),
      min: fc.integer({ min: 0, max: 1023 }),
      span: fc.integer({ min: 1, max: 1024 }),
    }),
    fc.record({ kind: fc.constant("free" as const), index: fc.nat() }),
  ),
  { maxLength: 80 },
);

describe("the Buddy logical allocator", () => {
  it("hands out aligned power-of-two blocks inside the window, never page 0, never overlapping", () => {
    fc.assert(
      fc.property(ops, (script: Op[]) => {
        const buddy = new BuddyAllocator(10);
        const live: { pfn: number; pages: number }[] = [];
        for (const op of script) {
          if (op.kind === "alloc") {
            const max = Math.min(1023, op.min + op.span - 1);
            const pfn = buddy.allocate(op.pages, op.min, max);
            if (pfn === undefined) continue;
            const size = BuddyAllocator.blockPages(op.pages);
            expect(pfn % size).toBe(0);
            expect(pfn).toBeGreaterThan(0);
            expect(pfn).toBeGreaterThanOrEqual(op.min);
            expect(pfn + size - 1).toBeLessThanOrEqual(max);
            for (const other of live) {
              expect(
                pfn + size <= other.pfn || other.pfn + BuddyAllocator.blockPages(other.pages) <= pfn,
              ).toBe(true);
            }
            live.push({ pfn, pages: op.pages });
          } else if (live.length > 0) {
            const [block] = live.splice(op.index % live.length, 1);
            buddy.free(block!.pfn, block!.pages);
          }
        }
        const used = live.reduce((n, b) => n + BuddyAllocator.blockPages(b.pages), 0);
        expect(buddy.allocatedPages).toBe(used + 1);
        for (const block of live) buddy.free(block.pfn, block.pages);
        expect(buddy.allocatedPages).toBe(1);
      }),
    );
  });

  it("favours low addresses and refuses a double free", () => {
    const buddy = new BuddyAllocator(12);
    expect(buddy.allocate(1, 0, 4095)).toBe(1);
    expect(buddy.allocate(4, 0, 4095)).toBe(4);
    expect(buddy.allocate(2, 0, 4095)).toBe(2);
    buddy.free(4, 4);
    expect(() => buddy.free(4, 4)).toThrow(/already free/);
    expect(buddy.reserve(8, 3)).toBe(true);
    expect(buddy.reserve(9, 1)).toBe(false);
  });
});

describe("the logical range map", () => {
  it("agrees with a page set under random adds and removals", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            add: fc.boolean(),
            first: fc.integer({ min: 0, max: 200 }),
            pages: fc.integer({ min: 1, max: 30 }),
          }),
          { maxLength: 60 },
        ),
        (script) => {
          const map = new LogicalRangeMap<number>();
          const pages = new Map<number, number>();
          script.forEach((op, tag) => {
            if (op.add) {
              const overlaps = [...Array(op.pages).keys()].some((i) => pages.has(op.first + i));
              expect(map.overlaps(op.first, op.pages)).toBe(overlaps);
              if (!overlaps) {
                map.add(op.first, op.pages, tag);
                for (let i = 0; i < op.pages; i++) pages.set(op.first + i, tag);
              }
            } else {
              const removed = map.remove(op.first, op.pages);
              const count = removed.reduce((n, r) => n + r.pages, 0);
              let expected = 0;
              for (let i = 0; i < op.pages; i++) if (pages.delete(op.first + i)) expected++;
              expect(count).toBe(expected);
            }
          });
          expect(map.pages).toBe(pages.size);
          for (const range of map.entries()) {
            for (let i = 0; i < range.pages; i++) expect(pages.get(range.first + i)).toBe(range.value);
          }
        },
      ),
    );
  });
});
