/** Shared set-up for the IOMMU tests: the hardware objects built directly, no container. */
import fc from "fast-check";
import type { IoPermission } from "../../src/iommu/io-page-table.js";
import { Iommu } from "../../src/iommu/iommu.js";
import type { IommuFaultEvent, IommuInvalidateEvent } from "../../src/iommu/iommu-events.js";
import type { IommuOptions } from "../../src/iommu/iommu-options.js";
import { createTranslation, type DmaAccess, type DmaTranslation } from "../../src/platform/dma-remapper.js";
import { FrameAllocator } from "../../src/platform/frame-allocator.js";
import { GiB, LARGE_PAGE_SIZE, PAGE_SIZE } from "../../src/platform/page.js";
import { PhysicalMemory, type RamRange } from "../../src/platform/physical-memory.js";
import { Random } from "../../src/platform/random.js";
import { Counters } from "../../src/trace/counters.js";
import { EventBus } from "../../src/trace/event-bus.js";

export interface Rig {
  readonly memory: PhysicalMemory;
  readonly frames: FrameAllocator;
  readonly events: EventBus;
  readonly counters: Counters;
  readonly iommu: Iommu;
  /** Every "iommu.fault" event, in order. */
  readonly faults: IommuFaultEvent[];
  readonly invalidations: IommuInvalidateEvent[];
  readonly interrupts: string[];
}

/** 3 GiB of low RAM, an MMIO hole up to 4 GiB, then 5 GiB more (like the default machine). */
export const RAM = [
  { start: 0, end: 3 * GiB },
  { start: 4 * GiB, end: 9 * GiB },
] as const;
/** A physical address in the MMIO hole: not RAM. */
export const MMIO_ADDRESS = 3.5 * GiB;

export function createRig(options: Partial<IommuOptions> = {}, ram: readonly RamRange[] = RAM): Rig {
  const memory = new PhysicalMemory(ram);
  const frames = new FrameAllocator(memory, new Random(7));
  const events = new EventBus();
  const counters = new Counters();
  const iommu = new Iommu(
    {
      translation: options.translation ?? true,
      units: options.units ?? [{ name: "dmar0", requesters: "rest" }],
      iotlbEntries: options.iotlbEntries ?? 64,
      faultRecords: options.faultRecords ?? 8,
    },
    memory,
    frames,
    events,
    counters,
  );
  const faults: IommuFaultEvent[] = [];
  const invalidations: IommuInvalidateEvent[] = [];
  const interrupts: string[] = [];
  events.on("iommu.fault", (event) => faults.push(event));
  events.on("iommu.invalidate", (event) => invalidations.push(event));
  events.on("iommu.fault-interrupt", (event) => interrupts.push(event.unit));
  return { memory, frames, events, counters, iommu, faults, invalidations, interrupts };
}

/** One translation into a fresh result record. */
export function translate(rig: Rig, requesterId: number, address: number, access: DmaAccess): DmaTranslation {
  const out = createTranslation();
  rig.iommu.translate(requesterId, address, access, out);
  return out;
}

/** The bytes of the given frames (base64), to compare table contents before and after. */
export function snapshotFrames(rig: Rig, pfns: readonly number[]): string[] {
  return pfns.map((pfn) => {
    const bytes = new Uint8Array(PAGE_SIZE);
    rig.memory.read(pfn * PAGE_SIZE, bytes);
    return Buffer.from(bytes).toString("base64");
  });
}

/** A mapped range in the reference model. */
interface Segment {
  start: number;
  end: number;
  physical: number;
  permissions: number;
}

/**
 * The obviously-correct model the page table is checked against: a list of mapped IOVA ranges,
 * with the same rules (no mapping over a mapping, no unmapping a hole).
 */
export class ReferenceMap {
  #segments: Segment[] = [];

  isFree(start: number, end: number): boolean {
    return this.#segments.every((s) => s.end <= start || s.start >= end);
  }

  isMapped(start: number, end: number): boolean {
    let covered = start;
    for (const s of [...this.#segments].sort((a, b) => a.start - b.start)) {
      if (s.end <= covered) continue;
      if (s.start > covered) break;
      covered = s.end;
      if (covered >= end) return true;
    }
    return covered >= end;
  }

  map(start: number, size: number, physical: number, permissions: number): void {
    this.#segments.push({ start, end: start + size, physical, permissions });
  }

  unmap(start: number, size: number): void {
    const end = start + size;
    const next: Segment[] = [];
    for (const s of this.#segments) {
      if (s.end <= start || s.start >= end) {
        next.push(s);
        continue;
      }
      if (s.start < start) next.push({ ...s, end: start });
      if (s.end > end) next.push({ ...s, start: end, physical: s.physical + (end - s.start) });
    }
    this.#segments = next;
  }

  /** Mapped ranges in address order. */
  ranges(): { start: number; end: number }[] {
    return [...this.#segments].sort((a, b) => a.start - b.start).map((x) => ({ start: x.start, end: x.end }));
  }

  find(address: number): { physical: number; permissions: number } | undefined {
    const s = this.#segments.find((x) => address >= x.start && address < x.end);
    return s === undefined
      ? undefined
      : { physical: s.physical + (address - s.start), permissions: s.permissions };
  }

  /** Interesting addresses: both ends and the middle of every range, and around them. */
  probes(): number[] {
    const out = new Set<number>();
    for (const s of this.#segments) {
      for (const a of [s.start - PAGE_SIZE, s.start, (s.start + s.end) / 2, s.end - 1, s.end]) {
        if (a >= 0) out.add(Math.floor(a / PAGE_SIZE) * PAGE_SIZE + 0x123);
      }
    }
    return [...out];
  }
}

export type Op =
  | {
      readonly kind: "map";
      readonly iova: number;
      readonly size: number;
      readonly physical: number;
      readonly permissions: IoPermission;
    }
  | { readonly kind: "unmap"; readonly iova: number; readonly size: number };

/** An operation as generated: "unmap-existing" picks a part of a live mapping once the model is known. */
export type OpSpec =
  | Op
  | {
      readonly kind: "unmap-existing";
      readonly pick: number;
      readonly offset: number;
      readonly pages: number;
    };

/** IOVA region the random operations play in: 8 MiB of small and 2 MiB pages, then one 1 GiB slot. */
export const OP_BASE = GiB;
export const HUGE_SLOT = 2 * GiB;
const PHYSICAL_BASE = 64 * GiB;

const permissionsArb = fc.constantFrom<IoPermission>(1, 2, 3);

/** Random map/unmap operations that mix 4 KiB runs, 2 MiB-aligned runs and a 1 GiB page. */
export const opArb: fc.Arbitrary<OpSpec> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant("unmap-existing" as const),
      pick: fc.nat(),
      offset: fc.nat(),
      pages: fc.integer({ min: 1, max: 600 }),
    }),
  },
  {
    weight: 5,
    arbitrary: fc
      .record({ page: fc.integer({ min: 0, max: 2047 }), pages: fc.integer({ min: 1, max: 8 }) })
      .chain(({ page, pages }) =>
        fc.record({
          kind: fc.constant("map" as const),
          iova: fc.constant(OP_BASE + page * PAGE_SIZE),
          size: fc.constant(pages * PAGE_SIZE),
          physical: fc.integer({ min: 0, max: 1 << 20 }).map((p) => PHYSICAL_BASE + p * PAGE_SIZE),
          permissions: permissionsArb,
        }),
      ),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant("map" as const),
      iova: fc.integer({ min: 0, max: 3 }).map((slot) => OP_BASE + slot * LARGE_PAGE_SIZE),
      size: fc.integer({ min: 1, max: 2 }).map((n) => n * LARGE_PAGE_SIZE),
      physical: fc.integer({ min: 0, max: 1000 }).map((p) => PHYSICAL_BASE + p * LARGE_PAGE_SIZE),
      permissions: permissionsArb,
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("map" as const),
      iova: fc.constant(HUGE_SLOT),
      size: fc.constant(GiB),
      physical: fc.integer({ min: 0, max: 7 }).map((p) => PHYSICAL_BASE + p * GiB),
      permissions: permissionsArb,
    }),
  },
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant("unmap" as const),
      iova: fc.integer({ min: 0, max: 2047 }).map((page) => OP_BASE + page * PAGE_SIZE),
      size: fc.integer({ min: 1, max: 700 }).map((pages) => pages * PAGE_SIZE),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("unmap" as const),
      iova: fc.integer({ min: 0, max: GiB / PAGE_SIZE - 1 }).map((page) => HUGE_SLOT + page * PAGE_SIZE),
      size: fc.integer({ min: 1, max: 1024 }).map((pages) => pages * PAGE_SIZE),
    }),
  },
);

/** The concrete operation for `spec` given the model's current mappings (undefined: nothing to unmap). */
export function concreteOp(model: ReferenceMap, spec: OpSpec): Op | undefined {
  if (spec.kind !== "unmap-existing") return spec;
  const ranges = model.ranges();
  if (ranges.length === 0) return undefined;
  const range = ranges[spec.pick % ranges.length]!;
  const pages = (range.end - range.start) / PAGE_SIZE;
  const first = spec.offset % pages;
  return {
    kind: "unmap",
    iova: range.start + first * PAGE_SIZE,
    size: Math.min(spec.pages, pages - first) * PAGE_SIZE,
  };
}

/**
 * Applies `op` to the model, and returns the PlatformError code the real table must throw
 * ("already-mapped", "not-mapped") or undefined when the operation must succeed.
 */
export function applyToModel(model: ReferenceMap, op: Op): string | undefined {
  const end = Math.min(op.iova + op.size, 2 ** 48);
  if (op.kind === "map") {
    if (!model.isFree(op.iova, end)) return "already-mapped";
    model.map(op.iova, op.size, op.physical, op.permissions);
    return undefined;
  }
  if (!model.isMapped(op.iova, end)) return "not-mapped";
  model.unmap(op.iova, op.size);
  return undefined;
}
