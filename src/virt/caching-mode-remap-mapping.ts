/**
 * The remapping strategy of a "trapped" guest: the HAL's own RemapMapping, plus what an IOMMU in
 * caching mode asks of it (iommu-anchors §1.6; Linux's iotlb_sync_map): after creating mappings
 * it invalidates them too, so the hypervisor learns of every new translation. One invalidation
 * covers what one call mapped: a MapTransfer piece (a whole scatter/gather list is one piece,
 * one IOVA run, however scattered its pages) or a common buffer.
 */
import { inject, injectable } from "inversify";
import type { AdapterObject } from "../hal/adapter-object.js";
import type {
  CommonBuffer,
  CommonBufferRequest,
  MappedPiece,
  MapRegisterFile,
  MdlCommonBufferRequest,
} from "../hal/dma-mapping-strategy.js";
import type { HalOptions as HalOptionsShape } from "../hal/hal-options.js";
import { RemapCommonBuffer, RemapMapping } from "../hal/remap-mapping.js";
import { HalOptions } from "../hal/tokens.js";
import { Iommu } from "../iommu/iommu.js";
import { CpuMemory } from "../platform/cpu-memory.js";
import { FrameAllocator } from "../platform/frame-allocator.js";
import { KernelMemory } from "../platform/kernel-memory.js";
import type { Mdl } from "../platform/mdl.js";
import { PAGE_SIZE, spanPages } from "../platform/page.js";
import { Scheduler } from "../platform/scheduler.js";
import { Counters } from "../trace/counters.js";
import { EventBus } from "../trace/event-bus.js";

@injectable()
export class CachingModeRemapMapping extends RemapMapping {
  private readonly guestIommu: Iommu;

  constructor(
    @inject(HalOptions) options: HalOptionsShape,
    @inject(Iommu) iommu: Iommu,
    @inject(FrameAllocator) frames: FrameAllocator,
    @inject(KernelMemory) kernel: KernelMemory,
    @inject(CpuMemory) cpu: CpuMemory,
    @inject(Scheduler) scheduler: Scheduler,
    @inject(EventBus) events: EventBus,
    @inject(Counters) counters: Counters,
  ) {
    super(options, iommu, frames, kernel, cpu, scheduler, events, counters);
    this.guestIommu = iommu;
  }

  override mapTransfer(
    adapter: AdapterObject,
    file: MapRegisterFile | undefined,
    mdl: Mdl,
    currentVa: number,
    length: number,
    writeToDevice: boolean,
  ): MappedPiece {
    const piece = super.mapTransfer(adapter, file, mdl, currentVa, length, writeToDevice);
    this.syncMap(adapter, piece.logicalAddress, piece.length);
    return piece;
  }

  override allocateCommonBuffer(
    adapter: AdapterObject,
    request: CommonBufferRequest,
  ): CommonBuffer | undefined {
    const buffer = super.allocateCommonBuffer(adapter, request);
    if (buffer !== undefined) this.syncMap(adapter, buffer.logicalAddress, mappedBytes(buffer));
    return buffer;
  }

  override createCommonBufferFromMdl(
    adapter: AdapterObject,
    mdl: Mdl,
    request: MdlCommonBufferRequest,
  ): CommonBuffer | undefined {
    const buffer = super.createCommonBufferFromMdl(adapter, mdl, request);
    if (buffer !== undefined) this.syncMap(adapter, buffer.logicalAddress, mappedBytes(buffer));
    return buffer;
  }

  /** The page-selective invalidation caching mode requires after a map. */
  private syncMap(adapter: AdapterObject, logicalAddress: number, length: number): void {
    const rid = adapter.requesterId;
    if (rid === undefined) return;
    const domain = this.guestIommu.attachment(rid);
    if (domain === undefined || domain === "passthrough") return;
    const first = logicalAddress - (logicalAddress % PAGE_SIZE);
    this.guestIommu.flushRange(domain, first, spanPages(logicalAddress, length), false);
  }
}

/** What a common buffer mapped: whole (large) pages for the remapping path's own buffers. */
function mappedBytes(buffer: CommonBuffer): number {
  return buffer instanceof RemapCommonBuffer ? buffer.pages * PAGE_SIZE : buffer.length;
}
