import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { FrameAllocator, type FrameRequest, type FrameZone } from "../../src/platform/frame-allocator.js";
import { GiB, MiB, PAGE_SIZE } from "../../src/platform/page.js";
import { PhysicalMemory, type RamRange } from "../../src/platform/physical-memory.js";
import { PlatformError } from "../../src/platform/platform-error.js";
import { Random } from "../../src/platform/random.js";

function allocator(
  ranges: readonly RamRange[],
  seed = 1,
): { memory: PhysicalMemory; frames: FrameAllocator } {
  const memory = new PhysicalMemory(ranges);
  return { memory, frames: new FrameAllocator(memory, new Random(seed)) };
}

const EIGHT_GIB = [
  { start: 0, end: 3 * GiB },
  { start: 4 * GiB, end: 9 * GiB },
];

function codeOf(action: () => unknown): string {
  try {
    action();
  } catch (error) {
    if (error instanceof PlatformError) return error.code;
    throw error;
  }
  return "none";
}

describe("FrameAllocator", () => {
  it("registers owners by name, starting at 1", () => {
    const { frames } = allocator(EIGHT_GIB);
    const nic = frames.registerOwner("nic");
    expect(nic).toBe(1);
    expect(frames.registerOwner("disk")).toBe(2);
    expect(frames.registerOwner("nic")).toBe(nic);
    expect(frames.ownerName(2)).toBe("disk");
    expect(codeOf(() => frames.ownerName(3))).toBe("bad-handle");
    expect(codeOf(() => frames.allocate(1, { owner: 7 }))).toBe("bad-handle");
  });

  it("scatters a buffer's frames over all of RAM, many above 4 GiB, never frame 0 or the hole", () => {
    const { frames } = allocator(EIGHT_GIB);
    const owner = frames.registerOwner("pool");
    const pfns = frames.allocate(1000, { owner });
    expect(new Set(pfns).size).toBe(1000);
    const above4G = pfns.filter((pfn) => pfn * PAGE_SIZE >= 4 * GiB).length;
    expect(above4G).toBeGreaterThan(500);
    expect(pfns.every((pfn) => pfn !== 0 && (pfn * PAGE_SIZE < 3 * GiB || pfn * PAGE_SIZE >= 4 * GiB))).toBe(
      true,
    );
    const sorted = [...pfns].sort((a, b) => a - b);
    const adjacent = sorted.filter((pfn, i) => i > 0 && sorted[i - 1] === pfn - 1).length;
    expect(adjacent).toBeLessThan(5);
    expect(frames.framesOwnedBy(owner)).toBe(1000);
    expect(frames.ownerOf(pfns[0]!)).toBe(owner);
  });

  it("places frames the same way for the same seed", () => {
    const a = allocator(EIGHT_GIB, 42).frames;
    const b = allocator(EIGHT_GIB, 42).frames;
    const c = allocator(EIGHT_GIB, 43).frames;
    const run = (f: FrameAllocator): number[] => f.allocate(16, { owner: f.registerOwner("x") });
    const first = run(a);
    expect(run(b)).toEqual(first);
    expect(run(c)).not.toEqual(first);
  });

  it("honours zones for scattered and contiguous requests", () => {
    const { frames } = allocator(EIGHT_GIB);
    const owner = frames.registerOwner("hal");
    expect(frames.allocate(50, { owner, zone: "dma24" }).every((pfn) => pfn * PAGE_SIZE < 16 * MiB)).toBe(
      true,
    );
    expect(frames.allocate(50, { owner, zone: "dma32" }).every((pfn) => pfn * PAGE_SIZE < 4 * GiB)).toBe(
      true,
    );
    const run = frames.allocate(16, { owner, zone: "dma24", contiguous: true, alignment: 16 });
    expect(run[0]! % 16).toBe(0);
    expect(run.every((pfn, i) => pfn === run[0]! + i)).toBe(true);
    expect((run[15]! + 1) * PAGE_SIZE).toBeLessThanOrEqual(16 * MiB);
  });

  it("gives contiguous runs the highest acceptable addresses and respects min/max bounds", () => {
    const { frames } = allocator(EIGHT_GIB);
    const owner = frames.registerOwner("common");
    const top = frames.allocate(512, { owner, contiguous: true, alignment: 512 });
    expect(top[0]! * PAGE_SIZE).toBe(9 * GiB - 2 * MiB);
    const bounded = frames.allocate(4, {
      owner,
      contiguous: true,
      minAddress: 1 * GiB,
      maxAddress: 1 * GiB + 64 * 1024 - 1,
    });
    expect(bounded[0]! * PAGE_SIZE).toBe(1 * GiB + 48 * 1024);
    const low = frames.allocate(8, { owner, minAddress: 100 * MiB, maxAddress: 101 * MiB - 1 });
    expect(low.every((pfn) => pfn * PAGE_SIZE >= 100 * MiB && (pfn + 1) * PAGE_SIZE <= 101 * MiB)).toBe(true);
  });

  it("fails with no-memory and changes nothing", () => {
    const { frames } = allocator([{ start: 0, end: 1 * MiB }]);
    const owner = frames.registerOwner("greedy");
    expect(frames.freeFrameCount()).toBe(255);
    const held = frames.allocate(200, { owner });
    expect(codeOf(() => frames.allocate(56, { owner }))).toBe("no-memory");
    expect(codeOf(() => frames.allocate(1, { owner, contiguous: true, alignment: 512 }))).toBe("no-memory");
    expect(frames.freeFrameCount()).toBe(55);
    expect(frames.framesOwnedBy(owner)).toBe(200);
    frames.free(held, owner);
    expect(frames.freeFrameCount()).toBe(255);
  });

  it("rejects double frees and frees by another owner before freeing anything", () => {
    const { frames } = allocator(EIGHT_GIB);
    const a = frames.registerOwner("a");
    const b = frames.registerOwner("b");
    const mine = frames.allocate(4, { owner: a });
    expect(codeOf(() => frames.free(mine, b))).toBe("not-owner");
    expect(codeOf(() => frames.free([mine[0]!, mine[0]!], a))).toBe("double-free");
    expect(frames.framesOwnedBy(a)).toBe(4);
    frames.free([mine[0]!], a);
    expect(codeOf(() => frames.free(mine, a))).toBe("double-free");
    expect(frames.ownerOf(mine[1]!)).toBe(a);
    expect(codeOf(() => frames.free([(3 * GiB) / PAGE_SIZE], a))).toBe("out-of-range");
    expect(codeOf(() => frames.free([1.5], a))).toBe("out-of-range");
    expect(codeOf(() => frames.allocate(-1, { owner: a }))).toBe("bad-length");
    expect(codeOf(() => frames.allocate(1, { owner: a, alignment: 2 }))).toBe("out-of-range");
    expect(codeOf(() => frames.allocate(1, { owner: a, zone: "dma16" as FrameZone }))).toBe("out-of-range");
  });

  it("poisons freed frames that hold data, and leaves untouched frames untouched", () => {
    const { memory, frames } = allocator(EIGHT_GIB);
    const owner = frames.registerOwner("buffer");
    const [written, untouched] = frames.allocate(2, { owner });
    memory.write(written! * PAGE_SIZE, new Uint8Array([1, 2, 3]));
    frames.free([written!, untouched!], owner);
    const page = new Uint8Array(PAGE_SIZE);
    memory.read(written! * PAGE_SIZE, page);
    expect(page.every((byte) => byte === FrameAllocator.POISON)).toBe(true);
    expect(memory.isTouched(untouched!)).toBe(false);
  });
});

/** A tiny machine with a hole: 255 frames below 1 MiB (frame 0 excluded) and 512 above 4 GiB. */
const TINY = [
  { start: 0, end: 1 * MiB },
  { start: 4 * GiB, end: 4 * GiB + 2 * MiB },
];
const TINY_FRAMES = [
  ...Array.from({ length: 255 }, (_, i) => i + 1),
  ...Array.from({ length: 512 }, (_, i) => (4 * GiB) / PAGE_SIZE + i),
];
const ZONE_END: Record<FrameZone, number> = { dma24: 16 * MiB, dma32: 4 * GiB, any: Number.MAX_SAFE_INTEGER };

type Command =
  | { kind: "allocate"; owner: number; count: number; request: Omit<FrameRequest, "owner"> }
  | { kind: "free"; owner: number; pick: number; take: number }
  | { kind: "bad-free"; owner: number; pick: number };

const commandArb: fc.Arbitrary<Command> = fc.oneof(
  fc.record({
    kind: fc.constant("allocate" as const),
    owner: fc.integer({ min: 1, max: 3 }),
    count: fc.integer({ min: 0, max: 80 }),
    request: fc.record(
      {
        zone: fc.constantFrom<FrameZone>("dma24", "dma32", "any"),
        contiguous: fc.boolean(),
        minAddress: fc.integer({ min: 0, max: 4 * GiB + 2 * MiB }),
        maxAddress: fc.integer({ min: 0, max: 4 * GiB + 2 * MiB }),
      },
      { requiredKeys: ["zone", "contiguous"] },
    ),
  }),
  fc.record({
    kind: fc.constant("free" as const),
    owner: fc.integer({ min: 1, max: 3 }),
    pick: fc.nat(),
    take: fc.integer({ min: 1, max: 40 }),
  }),
  fc.record({
    kind: fc.constant("bad-free" as const),
    owner: fc.integer({ min: 1, max: 3 }),
    pick: fc.nat(),
  }),
);

function withAlignment(command: Command, alignment: number): Command {
  if (command.kind !== "allocate" || command.request.contiguous !== true) return command;
  return { ...command, request: { ...command.request, alignment } };
}

function acceptable(pfn: number, request: Omit<FrameRequest, "owner">): boolean {
  const pa = pfn * PAGE_SIZE;
  return (
    pa + PAGE_SIZE <= ZONE_END[request.zone ?? "any"] &&
    (request.minAddress === undefined || pa >= request.minAddress) &&
    (request.maxAddress === undefined || pa + PAGE_SIZE - 1 <= request.maxAddress)
  );
}

describe("FrameAllocator properties", () => {
  it("never hands a frame out twice, keeps counts consistent, respects bounds, and failed calls change nothing", () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(commandArb, fc.constantFrom(1, 2, 4, 8, 64)), { maxLength: 60 }),
        fc.integer(),
        (steps, seed) => {
          const { frames } = allocator(TINY, seed);
          for (const name of ["a", "b", "c"]) frames.registerOwner(name);
          const model = new Map<number, number>();
          for (const [raw, alignment] of steps) {
            const command = withAlignment(raw, alignment);
            if (command.kind === "allocate") {
              const { request } = command;
              const candidates = TINY_FRAMES.filter((pfn) => !model.has(pfn) && acceptable(pfn, request));
              const align = request.alignment ?? 1;
              const possible = request.contiguous
                ? command.count === 0 ||
                  candidates.some(
                    (pfn) =>
                      pfn % align === 0 &&
                      Array.from({ length: command.count }, (_, i) => pfn + i).every((p) =>
                        candidates.includes(p),
                      ),
                  )
                : candidates.length >= command.count;
              let pfns: number[] | undefined;
              try {
                pfns = frames.allocate(command.count, { owner: command.owner, ...request });
              } catch (error) {
                expect((error as PlatformError).code).toBe("no-memory");
              }
              expect(pfns !== undefined).toBe(possible);
              if (pfns === undefined) continue;
              expect(pfns.length).toBe(command.count);
              expect(new Set(pfns).size).toBe(pfns.length);
              for (const pfn of pfns) {
                expect(candidates.includes(pfn)).toBe(true);
                model.set(pfn, command.owner);
              }
              if (request.contiguous && pfns.length > 0) {
                expect(pfns[0]! % align).toBe(0);
                expect(pfns.every((pfn, i) => pfn === pfns[0]! + i)).toBe(true);
              }
            } else {
              const owned = [...model].filter(([, owner]) => owner === command.owner).map(([pfn]) => pfn);
              if (command.kind === "free") {
                const chosen = owned.slice(
                  command.pick % (owned.length + 1),
                  (command.pick % (owned.length + 1)) + command.take,
                );
                frames.free(chosen, command.owner);
                for (const pfn of chosen) model.delete(pfn);
              } else {
                const victim = TINY_FRAMES[command.pick % TINY_FRAMES.length]!;
                const owner = model.get(victim);
                if (owner === command.owner) continue;
                const victims = owned.length > 0 ? [owned[0]!, victim] : [victim];
                expect(() => frames.free(victims, command.owner)).toThrow(PlatformError);
              }
            }
            for (let owner = 1; owner <= 3; owner++) {
              expect(frames.framesOwnedBy(owner)).toBe([...model.values()].filter((o) => o === owner).length);
            }
            expect(frames.freeFrameCount("any")).toBe(TINY_FRAMES.length - model.size);
            expect(frames.freeFrameCount("dma24")).toBe(
              255 - [...model.keys()].filter((pfn) => pfn < 256).length,
            );
            for (const pfn of TINY_FRAMES) expect(frames.ownerOf(pfn)).toBe(model.get(pfn) ?? 0);
          }
        },
      ),
      { numRuns: 150 },
    );
  });
});
