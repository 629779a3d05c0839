/** Shared set-up for the IOMMU tests: the hardware objects built directly, no container. */
import { Iommu } from "../../src/iommu/iommu.js";
import type { IommuFaultEvent, IommuInvalidateEvent } from "../../src/iommu/iommu-events.js";
import type { IommuOptions } from "../../src/iommu/iommu-options.js";
import { createTranslation, type DmaAccess, type DmaTranslation } from "../../src/platform/dma-remapper.js";
import { FrameAllocator } from "../../src/platform/frame-allocator.js";
import { GiB, PAGE_SIZE } from "../../src/platform/page.js";
import { PhysicalMemory } from "../../src/platform/physical-memory.js";
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

export function createRig(options: Partial<IommuOptions> = {}): Rig {
  const memory = new PhysicalMemory(RAM);
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

  find(address: number): { physical: number; permissions: number } | undefined {
    const s = this.#segments.find((x) => address >= x.start && address < x.end);
    return s === undefined ? undefined : { physical: s.physical + (address - s.start), permissions: s.permissions };
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
