/**
 * The IOMMU a "trapped" guest sees: the same VT-d model as the host's, with CAP.CM (caching mode)
 * set, as QEMU's intel-iommu exposes it with `caching-mode=on` for assigned devices
 * (iommu-anchors §1.6, §9.2). Its tables live in guest memory and its own emulated devices
 * translate through it unchanged; what caching mode adds is that every invalidation the guest
 * issues (page-selective, domain-selective, global, and the context invalidations of an attach
 * or detach) traps to the hypervisor, which then brings its shadow of the guest's tables in the
 * host IOMMU up to date. The guest's DMA layer flushes after a map as well as after an unmap, so
 * map and unmap both become traps: the seed's "DMA mapping interface ... will have to become a
 * trap into the hypervisor, which can then police the IOMMU settings".
 *
 * `invalidation` models how the guest's DMA layer issues them: "range" sends one page-selective
 * invalidation per mapped or unmapped range (a whole scatter/gather list, dma_map_sg), "page" one
 * per page (the networking path the seed says maps each page individually).
 */
import { inject, injectable } from "inversify";
import { type AttachOptions, Iommu } from "../iommu/iommu.js";
import type { IommuDomain } from "../iommu/iommu-domain.js";
import type { IommuOptions as IommuOptionsShape } from "../iommu/iommu-options.js";
import { IommuOptions } from "../iommu/tokens.js";
import { FrameAllocator } from "../platform/frame-allocator.js";
import { PAGE_SIZE } from "../platform/page.js";
import { PhysicalMemory } from "../platform/physical-memory.js";
import { Counters } from "../trace/counters.js";
import { EventBus } from "../trace/event-bus.js";
import type { Hypercalls as HypercallsShape } from "./hypercalls.js";
import { EmulatedIommuOptions, Hypercalls } from "./tokens.js";
import type {
  EmulatedIommuOptions as EmulatedIommuOptionsShape,
  InvalidationGranularity,
} from "./virt-options.js";

@injectable()
export class CachingModeIommu extends Iommu {
  /** CAP.CM: the guest must invalidate after creating mappings too. */
  readonly cachingMode = true;
  readonly invalidation: InvalidationGranularity;
  private readonly hypercalls: HypercallsShape;

  constructor(
    @inject(IommuOptions) options: IommuOptionsShape,
    @inject(PhysicalMemory) memory: PhysicalMemory,
    @inject(FrameAllocator) frames: FrameAllocator,
    @inject(EventBus) events: EventBus,
    @inject(Counters) counters: Counters,
    @inject(Hypercalls) hypercalls: HypercallsShape,
    @inject(EmulatedIommuOptions) emulated: EmulatedIommuOptionsShape,
  ) {
    super(options, memory, frames, events, counters);
    this.hypercalls = hypercalls;
    this.invalidation = emulated.invalidation;
  }

  override flushRange(domain: IommuDomain, iova: number, pages: number, invalidationHint = false): void {
    super.flushRange(domain, iova, pages, invalidationHint);
    if (this.invalidation === "range") {
      this.hypercalls.invalidatePages(domain, iova, pages);
      return;
    }
    for (let page = 0; page < pages; page++)
      this.hypercalls.invalidatePages(domain, iova + page * PAGE_SIZE, 1);
  }

  override flushDomain(domain: IommuDomain): void {
    super.flushDomain(domain);
    this.hypercalls.invalidateDomain(domain);
  }

  override flushAll(): void {
    super.flushAll();
    this.hypercalls.invalidateAll();
  }

  override attach(requesterId: number, domain: IommuDomain, options: AttachOptions = {}): void {
    super.attach(requesterId, domain, options);
    this.hypercalls.contextChanged(requesterId);
  }

  override attachPassthrough(requesterId: number, options: AttachOptions = {}): void {
    super.attachPassthrough(requesterId, options);
    this.hypercalls.contextChanged(requesterId);
  }

  override detach(requesterId: number): void {
    super.detach(requesterId);
    this.hypercalls.contextChanged(requesterId);
  }
}
