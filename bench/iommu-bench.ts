/**
 * IOMMU benchmarks (a full GC is forced around the memory figure, with --expose-gc or without):
 * - iommu_map_unmap_per_sec: map + unmap + page-selective flush of one 4 KiB page (the strict-mode
 *   unmap cost), on a domain attached to a device, IOVAs cycling through a 16 MiB window.
 * - bytes_per_live_mapping: host memory (JS heap + ArrayBuffers, which include simulated RAM) per
 *   live 4 KiB mapping with 1,000,000 of them, IOVAs packed as an IOVA allocator hands them out.
 * Each figure is the median of several runs.
 */
import v8 from "node:v8";
import vm from "node:vm";
import { IoPermission } from "../src/iommu/io-page-table.js";
import { Iommu } from "../src/iommu/iommu.js";
import type { IommuDomain } from "../src/iommu/iommu-domain.js";
import { FrameAllocator } from "../src/platform/frame-allocator.js";
import { GiB, PAGE_SIZE } from "../src/platform/page.js";
import { PhysicalMemory } from "../src/platform/physical-memory.js";
import { Random } from "../src/platform/random.js";
import { Counters } from "../src/trace/counters.js";
import { EventBus } from "../src/trace/event-bus.js";
import { median, medianOf, throughput } from "./measure.js";

const DEVICE = 0x0010;
const LIVE_MAPPINGS = 1_000_000;

function createIommu(memoryBytes: number): { iommu: Iommu; domain: IommuDomain } {
  const memory = new PhysicalMemory([{ start: 0, end: memoryBytes }]);
  const frames = new FrameAllocator(memory, new Random(1));
  const iommu = new Iommu(
    { translation: true, units: [{ name: "dmar0", requesters: "rest" }], iotlbEntries: 64, faultRecords: 8 },
    memory,
    frames,
    new EventBus(),
    new Counters(),
  );
  const domain = iommu.createDomain();
  iommu.attach(DEVICE, domain);
  return { iommu, domain };
}

function mapUnmapPerSecond(): number {
  const { iommu, domain } = createIommu(16 * GiB);
  const base = 0x1_0000_0000;
  let cursor = 0;
  const batch = 10_000;
  return throughput(() => {
    for (let i = 0; i < batch; i++) {
      const iova = base + ((cursor + i) % 4096) * PAGE_SIZE;
      domain.map(iova, 0x2_0000_0000 + ((cursor + i) % 1024) * PAGE_SIZE, PAGE_SIZE, IoPermission.ReadWrite);
      domain.unmap(iova, PAGE_SIZE);
      iommu.flushRange(domain, iova, 1);
    }
    cursor += batch;
  }, batch);
}

/** A full GC: node's --expose-gc one, or the same function obtained through V8 flags. */
function collector(): () => void {
  if (globalThis.gc !== undefined) return globalThis.gc;
  v8.setFlagsFromString("--expose-gc");
  return vm.runInNewContext("gc") as () => void;
}

/** Host bytes in use after a full collection, once freed ArrayBuffers are released too. */
async function hostBytes(gc: () => void): Promise<number> {
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((resolve) => setImmediate(resolve));
  }
  const usage = process.memoryUsage();
  return usage.heapUsed + usage.arrayBuffers;
}

async function bytesPerLiveMapping(gc: () => void): Promise<number> {
  const { domain } = createIommu(64 * GiB);
  const before = await hostBytes(gc);
  const pfnSpan = (60 * GiB) / PAGE_SIZE;
  for (let i = 0; i < LIVE_MAPPINGS; i++) {
    const pfn = 0x100000 + ((i * 7919) % pfnSpan);
    domain.map(0x1_0000_0000 + i * PAGE_SIZE, pfn * PAGE_SIZE, PAGE_SIZE, IoPermission.Read);
  }
  const used = (await hostBytes(gc)) - before;
  if (domain.lookup(0x1_0000_0000 + (LIVE_MAPPINGS - 1) * PAGE_SIZE) === undefined) {
    throw new Error("benchmark mapping missing");
  }
  return used / LIVE_MAPPINGS;
}

export async function run(): Promise<Record<string, number>> {
  const rate = medianOf(5, mapUnmapPerSecond);
  const gc = collector();
  const bytes: number[] = [];
  for (let i = 0; i < 3; i++) bytes.push(await bytesPerLiveMapping(gc));
  return { iommu_map_unmap_per_sec: rate, bytes_per_live_mapping: median(bytes) };
}
