/**
 * The remapping path of the HAL (DESIGN "The HAL's two paths"; windows-dma-ddi §3 and §7; Linux
 * dma-iommu, iommu-anchors §5): the strategy for remapping modes "strict" and "lazy".
 *
 * - Every device (PCI requester) translates through a DmaDomain: a private one made at its first
 *   IoGetDmaAdapter, or one it joined (JoinDmaDomain). Adapters of the same physical device share
 *   its domain, as a Windows domain belongs to the device, not to the adapter.
 * - Map registers are IOVA windows: AllocateAdapterChannel / GetScatterGatherList reserve `count`
 *   pages of IOVA below the device's reach, and MapTransfer maps the pages of a piece into the
 *   window's next pages, without copying. A piece is ONE logical run whatever the physical layout,
 *   so a fragmented buffer becomes one scatter/gather element, and a 32-bit device reaches memory
 *   above 4 GiB directly. Permissions follow the direction (Linux dma_info_to_prot): the device
 *   may only read a buffer it is sending and only write one it is filling.
 * - FlushAdapterBuffers unmaps the pieces. Strict: a page-selective invalidation at every unmap,
 *   before the window's pages are used again. Lazy: the window's IOVA goes to the domain's flush
 *   queue (256 ranges or 10 ms, then ONE domain-selective invalidation) and the window takes fresh
 *   IOVA for its next use, so no IOVA is reused before its invalidation, yet a stale IOTLB entry
 *   keeps translating until then.
 * - Untrusted (external) devices: their domain is always strict, and a page a piece covers only
 *   partly is replaced by a sub-page bounce page (SubpageBounce).
 * - Common buffers: scattered frames, mapped logically contiguous; 2 MiB aligned IOVA (and
 *   superpages where the frames are contiguous) for DOMAIN_COMMON_BUFFER_LARGE_PAGE.
 *
 * Class fields are TypeScript `private`, not `#`: tsx lowers #-members of decorated classes to
 * WeakMap lookups, which would sit on the map/unmap path.
 */
import { inject, injectable } from "inversify";
import { IoPermission } from "../iommu/io-page-table.js";
import { Iommu } from "../iommu/iommu.js";
import { CpuMemory } from "../platform/cpu-memory.js";
import { FrameAllocator } from "../platform/frame-allocator.js";
import { KernelMemory } from "../platform/kernel-memory.js";
import { Mdl } from "../platform/mdl.js";
import { formatAddress, LARGE_PAGE_SIZE, PAGE_SIZE } from "../platform/page.js";
import { PlatformError } from "../platform/platform-error.js";
import { Scheduler } from "../platform/scheduler.js";
import { type CounterCell, Counters } from "../trace/counters.js";
import { EventBus, type ListenerFlag } from "../trace/event-bus.js";
import type { AdapterObject } from "./adapter-object.js";
import { DmaDomain } from "./dma-domain.js";
import type {
  CommonBuffer,
  CommonBufferRequest,
  DmaMappingStrategy,
  MappedPiece,
  MappingResources,
  MapRegisterFile,
  MdlCommonBufferRequest,
} from "./dma-mapping-strategy.js";
import { QueuedRangeKind } from "./flush-queue.js";
import type { HalOptions as HalOptionsShape } from "./hal-options.js";
import { IovaAllocator } from "./iova-allocator.js";
import "./hal-events.js";
import type { DmaDirection } from "./remap-events.js";
import { SubpageBounce } from "./subpage-bounce.js";
import { HalOptions } from "./tokens.js";
import type { DMA_DOMAIN } from "./wdm/dma-v3-types.js";
import {
  type NTSTATUS,
  STATUS_INVALID_PARAMETER,
  STATUS_RESOURCE_IN_USE,
  STATUS_SUCCESS,
} from "./wdm/ntstatus.js";

/** Highest IOVA byte a 4-level table translates. */
const IOVA_MAX = 2 ** 48 - 1;
/** Frames of a large-page common buffer run (2 MiB). */
const LARGE_PAGE_FRAMES = LARGE_PAGE_SIZE / PAGE_SIZE;
/** Highest physical byte a contiguous common buffer may use: anywhere (the IOMMU remaps it). */
const ANY_PHYSICAL = 2 ** 52 - 1;
const NO_BOUNCE = -1;

/** One physical device (requester) and the domain it translates through. */
class RemapDevice {
  /** Its adapters' live map register files and common buffers: what blocks a domain change. */
  outstanding = 0;
  readonly adapters = new Set<AdapterObject>();

  constructor(
    readonly requesterId: number | undefined,
    readonly untrusted: boolean,
    public domain: DmaDomain,
  ) {}
}

/** What AdapterObject.mapping holds on this path. */
class RemapAdapter {
  /** Live map register files and common buffers of this adapter. */
  outstanding = 0;
  readonly #brand = true;

  constructor(
    readonly device: RemapDevice,
    /** Highest IOVA PFN the device reaches. */
    readonly limitPfn: number,
  ) {}

  /** `instanceof`, by private name (see AdapterObject.is). */
  static is(value: unknown): value is RemapAdapter {
    return typeof value === "object" && value !== null && #brand in value;
  }
}

/**
 * A map register file: `count` registers backed by a window of IOVA pages. Pieces mapped since
 * the last flush are kept in parallel arrays (reused; no allocation per piece once warm).
 */
export class IovaWindow implements MapRegisterFile {
  adapter!: AdapterObject;
  count = 0;
  bytesMapped = 0;
  domain!: DmaDomain;
  state!: RemapAdapter;
  /** First IOVA PFN of the window; -1 while its last IOVA waits in the flush queue. */
  pfn = -1;
  /** Pages the allocator reserved for it (count rounded up by allocFast). */
  reserved = 0;
  /** Next window page MapTransfer maps into. */
  next = 0;
  /** Pages of the current IOVA were unmapped without an invalidation (lazy): not reusable yet. */
  stale = false;
  live = false;
  pieces = 0;
  readonly mdls: (Mdl | undefined)[] = [];
  readonly vas: number[] = [];
  readonly lengths: number[] = [];
  /** First window page of each piece. */
  readonly pages: number[] = [];
  readonly spans: number[] = [];
  /** Bounce PFN of the first / last page of a piece, or NO_BOUNCE. */
  readonly heads: number[] = [];
  readonly tails: number[] = [];
  readonly #brand = true;

  /** `instanceof`, by private name (see AdapterObject.is). */
  static is(value: unknown): value is IovaWindow {
    return typeof value === "object" && value !== null && #brand in value;
  }
}

/** A common buffer of the remapping path. */
export class RemapCommonBuffer implements CommonBuffer {
  freed = false;

  constructor(
    readonly adapter: AdapterObject,
    readonly virtualAddress: number,
    readonly logicalAddress: number,
    readonly length: number,
    readonly cacheEnabled: boolean,
    readonly domain: DmaDomain,
    readonly state: RemapAdapter,
    /** IOVA pages reserved and mapped. */
    readonly pages: number,
    /** Pool and contiguous buffers own their memory; an MDL's pages stay the driver's. */
    readonly source: "pool" | "contiguous" | "mdl",
  ) {}

  get kind(): "common-buffer" | "mdl-common-buffer" {
    return this.source === "mdl" ? "mdl-common-buffer" : "common-buffer";
  }
}

@injectable()
export class RemapMapping implements DmaMappingStrategy {
  readonly remapping = true;
  private readonly options: HalOptionsShape;
  private readonly iommu: Iommu;
  private readonly kernel: KernelMemory;
  private readonly scheduler: Scheduler;
  private readonly events: EventBus;
  private readonly counters: Counters;
  private readonly bounce: SubpageBounce;
  private readonly bufferOwner: number;
  private readonly maps: CounterCell;
  private readonly mapPages: CounterCell;
  private readonly unmaps: CounterCell;
  private readonly mapListened: ListenerFlag;
  private readonly unmapListened: ListenerFlag;
  private readonly bounceListened: ListenerFlag;
  private readonly devices = new Map<number, RemapDevice>();
  private readonly domains = new Set<DmaDomain>();
  private readonly spareWindows: IovaWindow[] = [];
  private nextDomainId = 1;
  private mapRegisters = 0;
  private commonBuffers = 0;

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
    this.options = options;
    this.iommu = iommu;
    this.kernel = kernel;
    this.scheduler = scheduler;
    this.events = events;
    this.counters = counters;
    this.bounce = new SubpageBounce(frames, cpu, counters);
    // The same owner as the direct path's common buffers: one name for "memory of common buffers".
    this.bufferOwner = frames.registerOwner("hal.common-buffer");
    this.maps = counters.cell("hal.remap.map");
    this.mapPages = counters.cell("hal.remap.map.pages");
    this.unmaps = counters.cell("hal.remap.unmap");
    this.mapListened = events.listenerFlag("dma.map");
    this.unmapListened = events.listenerFlag("dma.unmap");
    this.bounceListened = events.listenerFlag("dma.bounce");
  }

  // ------------------------------------------------------------------ adapters and domains

  /**
   * The first adapter of a device makes its private domain and attaches the requester to it;
   * later adapters of the same device share that domain. An adapter without a requester id (not
   * a PCI function) gets a domain nothing translates through.
   */
  openAdapter(adapter: AdapterObject): void {
    if (adapter.mapping !== undefined) {
      throw new PlatformError("bad-state", `adapter ${adapter.id} is already open`);
    }
    const reach = Math.min(adapter.capabilities.addressLimit, IOVA_MAX);
    const limitPfn = Math.floor((reach + 1) / PAGE_SIZE) - 1;
    if (!(limitPfn >= 1)) {
      throw new PlatformError(
        "out-of-range",
        `adapter ${adapter.id} reaches only ${formatAddress(reach)}: too little for an IOVA page`,
      );
    }
    const rid = adapter.requesterId;
    let device = rid === undefined ? undefined : this.devices.get(rid);
    if (device === undefined) {
      if (rid !== undefined) this.iommu.unitFor(rid);
      const domain = this.createDomain();
      if (rid !== undefined) {
        try {
          this.iommu.attach(rid, domain.hardware);
        } catch (error) {
          this.destroyDomain(domain);
          throw error;
        }
      }
      device = new RemapDevice(rid, adapter.untrusted, domain);
      if (device.untrusted) domain.untrustedDevices++;
      if (rid !== undefined) this.devices.set(rid, device);
    }
    device.adapters.add(adapter);
    device.domain.adapters.add(adapter);
    adapter.mapping = new RemapAdapter(device, limitPfn);
  }

  /** Throws "bad-state" while the adapter still holds map registers or common buffers. */
  closeAdapter(adapter: AdapterObject): void {
    const state = this.state(adapter);
    const device = state.device;
    if (state.outstanding > 0) {
      throw new PlatformError(
        "bad-state",
        `adapter ${adapter.id} still holds ${state.outstanding} map register file(s) or common buffer(s)`,
      );
    }
    device.adapters.delete(adapter);
    device.domain.adapters.delete(adapter);
    adapter.mapping = undefined;
    if (device.adapters.size > 0) return;
    const domain = device.domain;
    if (device.untrusted) domain.untrustedDevices--;
    if (device.requesterId !== undefined) {
      this.iommu.detach(device.requesterId);
      this.devices.delete(device.requesterId);
    }
    if (domain.adapters.size === 0) this.destroyDomain(domain);
  }

  /** GetDmaDomain: the domain the adapter's device translates through. */
  getDomain(adapter: AdapterObject): DMA_DOMAIN {
    return this.state(adapter).device.domain;
  }

  /**
   * JoinDmaDomain: moves the adapter's device (all its adapters) into `domain`. Only while none
   * of them holds map registers or common buffers: STATUS_RESOURCE_IN_USE otherwise (their
   * logical addresses would stop translating). STATUS_INVALID_PARAMETER for a handle that is not
   * a live domain of this machine.
   */
  joinDomain(adapter: AdapterObject, domain: DMA_DOMAIN): NTSTATUS {
    const { device } = this.state(adapter);
    if (!(domain instanceof DmaDomain) || !this.domains.has(domain)) return STATUS_INVALID_PARAMETER;
    if (device.domain === domain) return STATUS_SUCCESS;
    if (device.outstanding > 0) return STATUS_RESOURCE_IN_USE;
    this.moveDevice(device, domain);
    this.counters.add("hal.domain.join");
    return STATUS_SUCCESS;
  }

  /**
   * LeaveDmaDomain: the adapter's device goes back to a private domain of its own (nothing
   * changes when it is already alone in its domain). STATUS_RESOURCE_IN_USE while anything is
   * mapped, as for joinDomain.
   */
  leaveDomain(adapter: AdapterObject): NTSTATUS {
    const { device } = this.state(adapter);
    if (device.outstanding > 0) return STATUS_RESOURCE_IN_USE;
    if (device.domain.adapters.size === device.adapters.size) return STATUS_SUCCESS;
    this.moveDevice(device, this.createDomain());
    this.counters.add("hal.domain.leave");
    return STATUS_SUCCESS;
  }

  /**
   * AllocateDomainCommonBuffer: a common buffer in `domain`, which every device of the domain
   * reaches at the same logical address. The adapter must be in that domain (undefined if not).
   */
  allocateDomainCommonBuffer(
    adapter: AdapterObject,
    domain: DMA_DOMAIN,
    request: CommonBufferRequest,
  ): CommonBuffer | undefined {
    const state = this.state(adapter);
    if (domain !== state.device.domain) return undefined;
    return this.allocateCommonBuffer(adapter, request);
  }

  // ------------------------------------------------------------------ map registers

  needsMapRegisters(_adapter: AdapterObject): boolean {
    return true;
  }

  tryAllocateMapRegisters(adapter: AdapterObject, count: number): MapRegisterFile | undefined {
    const state = this.state(adapter);
    if (!Number.isSafeInteger(count) || count < 1 || count > state.limitPfn) {
      throw new PlatformError(
        "bad-length",
        `map register count ${String(count)} is not in [1, ${state.limitPfn}]`,
      );
    }
    const domain = state.device.domain;
    const pfn = this.allocateWindowIova(domain, count, state.limitPfn);
    if (pfn === undefined) return undefined;
    const window = this.spareWindows.pop() ?? new IovaWindow();
    window.adapter = adapter;
    window.count = count;
    window.bytesMapped = 0;
    window.domain = domain;
    window.state = state;
    window.pfn = pfn;
    window.reserved = IovaAllocator.fastSize(count);
    window.next = 0;
    window.stale = false;
    window.pieces = 0;
    window.live = true;
    state.outstanding++;
    state.device.outstanding++;
    this.mapRegisters += count;
    return window;
  }

  freeMapRegisters(file: MapRegisterFile): void {
    const window = this.window(file);
    if (window.pieces > 0) {
      // Freed while pieces are still mapped (the verifier's "freeing registers while mapped"):
      // take them down as a flush would, without copying anything back.
      this.counters.add("hal.remap.unflushed");
      this.unmapPieces(window, undefined, 0, 0, true);
    }
    if (window.pfn >= 0) {
      if (window.stale) window.domain.retire(window.pfn, window.reserved, QueuedRangeKind.Fast);
      else window.domain.iova.freeFast(window.pfn, window.reserved);
    }
    window.live = false;
    window.pfn = -1;
    window.state.outstanding--;
    window.state.device.outstanding--;
    this.mapRegisters -= window.count;
    for (let i = 0; i < window.mdls.length; i++) window.mdls[i] = undefined;
    this.spareWindows.push(window);
  }

  mapTransfer(
    adapter: AdapterObject,
    file: MapRegisterFile | undefined,
    mdl: Mdl,
    currentVa: number,
    length: number,
    writeToDevice: boolean,
  ): MappedPiece {
    const window = this.window(file);
    if (window.adapter !== adapter) {
      throw new PlatformError(
        "bad-handle",
        `map register file of adapter ${window.adapter.id} used by adapter ${adapter.id}`,
      );
    }
    checkPiece(mdl, currentVa, length);
    const offset = currentVa - mdl.startVa;
    // Not `offset % PAGE_SIZE`: a difference of two doubles stays a double, and V8 computes a
    // double `%` with a slow floating-point call.
    const firstPage = Math.floor(offset / PAGE_SIZE);
    const inPage = offset - firstPage * PAGE_SIZE;
    let span = Math.floor((inPage + length - 1) / PAGE_SIZE) + 1;
    const free = window.count - window.next;
    if (span > free) {
      if (!adapter.capabilities.scatterGather || free === 0) {
        // "no-memory", as DirectMapping says it: the grant is used up, the request itself is fine.
        throw new PlatformError(
          "no-memory",
          `the piece needs ${span} map registers, the file of adapter ${adapter.id} has ${free} left`,
        );
      }
      span = free;
      length = free * PAGE_SIZE - inPage;
    }
    const domain = window.domain;
    if (window.pfn < 0) {
      const pfn = this.allocateWindowIova(domain, window.count, window.state.limitPfn);
      if (pfn === undefined)
        throw new PlatformError("no-memory", `IOVA space of DMA domain ${domain.id} is exhausted`);
      window.pfn = pfn;
      window.stale = false;
    }
    const device = window.state.device;
    const untrusted = device.untrusted;
    const head = untrusted && (inPage !== 0 || inPage + length < PAGE_SIZE);
    const tailBytes = (inPage + length) % PAGE_SIZE;
    const tail = untrusted && span > 1 && tailBytes !== 0;
    const firstPfn = window.pfn + window.next;
    const iova = firstPfn * PAGE_SIZE;
    const permissions = writeToDevice ? IoPermission.Read : IoPermission.Write;
    const table = domain.hardware;
    const pfns = mdl.pfns;
    let headPfn = NO_BOUNCE;
    let tailPfn = NO_BOUNCE;
    let mapped = 0;
    try {
      if (head)
        headPfn = this.bounceIn(pfns[firstPage]! * PAGE_SIZE + inPage, Math.min(length, PAGE_SIZE - inPage));
      if (tail) tailPfn = this.bounceIn(pfns[firstPage + span - 1]! * PAGE_SIZE, tailBytes);
      for (; mapped < span; mapped++) {
        let frame = pfns[firstPage + mapped]!;
        if (mapped === 0 && headPfn !== NO_BOUNCE) frame = headPfn;
        else if (mapped === span - 1 && tailPfn !== NO_BOUNCE) frame = tailPfn;
        table.map(iova + mapped * PAGE_SIZE, frame * PAGE_SIZE, PAGE_SIZE, permissions);
      }
    } catch (error) {
      if (mapped > 0) table.unmap(iova, mapped * PAGE_SIZE);
      if (headPfn !== NO_BOUNCE) this.bounce.release(headPfn);
      if (tailPfn !== NO_BOUNCE) this.bounce.release(tailPfn);
      throw error;
    }
    const i = window.pieces++;
    window.mdls[i] = mdl;
    window.vas[i] = currentVa;
    window.lengths[i] = length;
    window.pages[i] = window.next;
    window.spans[i] = span;
    window.heads[i] = headPfn;
    window.tails[i] = tailPfn;
    window.next += span;
    window.bytesMapped += length;
    this.maps.value++;
    this.mapPages.value += span;
    const logicalAddress = iova + inPage;
    if (headPfn !== NO_BOUNCE || tailPfn !== NO_BOUNCE) this.announceBounce(window, i, "in");
    if (this.mapListened.active) {
      this.events.emit("dma.map", {
        adapter: adapter.id,
        requesterId: device.requesterId ?? -1,
        iova: logicalAddress,
        length,
        pages: span,
        direction: writeToDevice ? "to-device" : "from-device",
        kind: "transfer",
        bounced: (headPfn === NO_BOUNCE ? 0 : 1) + (tailPfn === NO_BOUNCE ? 0 : 1),
      });
    }
    return { logicalAddress, length };
  }

  flushAdapterBuffers(
    adapter: AdapterObject,
    file: MapRegisterFile | undefined,
    mdl: Mdl,
    currentVa: number,
    length: number,
    writeToDevice: boolean,
  ): boolean {
    const window = this.window(file);
    if (window.adapter !== adapter) {
      throw new PlatformError(
        "bad-handle",
        `map register file of adapter ${window.adapter.id} used by adapter ${adapter.id}`,
      );
    }
    if (!(mdl instanceof Mdl)) throw new PlatformError("bad-handle", "FlushAdapterBuffers needs an MDL");
    if (!Number.isSafeInteger(currentVa) || !Number.isSafeInteger(length) || length < 0) {
      throw new PlatformError(
        "out-of-range",
        `flush range ${String(currentVa)}+${String(length)} is not a byte range`,
      );
    }
    const start = currentVa - mdl.virtualAddress;
    this.unmapPieces(window, mdl, start, start + length, writeToDevice);
    return true;
  }

  // ------------------------------------------------------------------ common buffers

  allocateCommonBuffer(adapter: AdapterObject, request: CommonBufferRequest): CommonBuffer | undefined {
    const state = this.state(adapter);
    const { length, largePage } = request;
    if (!Number.isSafeInteger(length) || length < 1) {
      throw new PlatformError(
        "bad-length",
        `common buffer length ${String(length)} is not a positive integer`,
      );
    }
    const bounds = this.logicalBounds(state, request.minimumLogical, request.maximumLogical);
    if (bounds === undefined) return undefined;
    const granule = largePage ? LARGE_PAGE_SIZE : PAGE_SIZE;
    const bytes = Math.ceil(length / granule) * granule;
    const pages = bytes / PAGE_SIZE;
    let va: number;
    let source: "pool" | "contiguous" = "pool";
    try {
      va = largePage
        ? this.allocateLarge(bytes, request.cacheEnabled)
        : this.kernel.allocateNonPaged(bytes, {
            owner: this.bufferOwner,
            tag: "DmaC",
            cached: request.cacheEnabled,
          });
      if (largePage && this.kernel.allocationAt(va)!.kind === "contiguous") source = "contiguous";
    } catch (error) {
      if (error instanceof PlatformError && error.code === "no-memory") return undefined;
      throw error;
    }
    const domain = state.device.domain;
    const pfn = domain.iova.allocRange(pages, bounds[1], bounds[0], largePage ? LARGE_PAGE_FRAMES : 1);
    if (
      pfn === undefined ||
      !this.mapFrames(domain, pfn, this.kernel.allocationAt(va)!.pfns, 0, pages, IoPermission.ReadWrite)
    ) {
      if (pfn !== undefined) domain.iova.freeRange(pfn, pages);
      this.kernel.free(va);
      return undefined;
    }
    const buffer = new RemapCommonBuffer(
      adapter,
      va,
      pfn * PAGE_SIZE,
      length,
      request.cacheEnabled,
      domain,
      state,
      pages,
      source,
    );
    this.commonBufferMapped(buffer, "bidirectional");
    return buffer;
  }

  freeCommonBuffer(buffer: CommonBuffer): void {
    if (!(buffer instanceof RemapCommonBuffer)) {
      throw new PlatformError("bad-handle", "not a common buffer of the remapping path");
    }
    if (buffer.freed) {
      throw new PlatformError(
        "double-free",
        `common buffer at ${formatAddress(buffer.virtualAddress)} was already freed`,
      );
    }
    const domain = buffer.domain;
    const pfn = buffer.logicalAddress / PAGE_SIZE;
    domain.hardware.unmap(buffer.logicalAddress, buffer.pages * PAGE_SIZE);
    domain.retire(pfn, buffer.pages, QueuedRangeKind.Range);
    // Like Linux's dma_free_* under a flush queue, the memory goes back at once: only the IOVA
    // waits for the invalidation, so a stale IOTLB entry can reach it in the lazy window.
    if (buffer.source !== "mdl") this.kernel.free(buffer.virtualAddress);
    buffer.freed = true;
    buffer.state.outstanding--;
    buffer.state.device.outstanding--;
    this.commonBuffers--;
    this.counters.add("hal.commonbuffer.free");
    if (this.events.hasListeners("dma.unmap")) {
      this.events.emit("dma.unmap", {
        adapter: buffer.adapter.id,
        requesterId: buffer.state.device.requesterId ?? -1,
        iova: buffer.logicalAddress,
        length: buffer.length,
        pages: buffer.pages,
        kind: buffer.kind,
        policy: domain.strict ? "strict" : "lazy",
      });
    }
  }

  createCommonBufferFromMdl(
    adapter: AdapterObject,
    mdl: Mdl,
    request: MdlCommonBufferRequest,
  ): CommonBuffer | undefined {
    const state = this.state(adapter);
    if (!(mdl instanceof Mdl) || mdl.freed) throw new PlatformError("bad-handle", "not a live MDL");
    if (!mdl.resident) throw new PlatformError("bad-state", `MDL ${mdl.id} is neither locked nor built`);
    if (mdl.systemVa === undefined)
      throw new PlatformError("bad-state", `MDL ${mdl.id} is not mapped in system space`);
    const { offset, length, access } = request;
    if (
      mdl.byteOffset !== 0 ||
      !Number.isSafeInteger(offset) ||
      !Number.isSafeInteger(length) ||
      offset < 0 ||
      length < 1 ||
      offset % PAGE_SIZE !== 0 ||
      length % PAGE_SIZE !== 0 ||
      offset + length > mdl.byteCount
    ) {
      throw new PlatformError(
        "bad-address",
        `MDL ${mdl.id} section ${String(offset)}+${String(length)} is not whole pages of a page-aligned buffer`,
      );
    }
    const permissions =
      access === "read"
        ? IoPermission.Read
        : access === "write"
          ? IoPermission.Write
          : IoPermission.ReadWrite;
    if (access !== "read" && access !== "write" && access !== "readwrite") {
      throw new PlatformError(
        "out-of-range",
        `device access ${String(access)} is not read, write or readwrite`,
      );
    }
    const bounds = this.logicalBounds(state, request.minimumLogical, request.maximumLogical);
    if (bounds === undefined) return undefined;
    const pages = length / PAGE_SIZE;
    const domain = state.device.domain;
    const pfn = domain.iova.allocRange(pages, bounds[1], bounds[0]);
    if (pfn === undefined) return undefined;
    if (!this.mapFrames(domain, pfn, mdl.pfns, offset / PAGE_SIZE, pages, permissions)) {
      domain.iova.freeRange(pfn, pages);
      return undefined;
    }
    const buffer = new RemapCommonBuffer(
      adapter,
      mdl.systemVa + offset,
      pfn * PAGE_SIZE,
      length,
      true,
      domain,
      state,
      pages,
      "mdl",
    );
    this.commonBufferMapped(
      buffer,
      access === "read" ? "to-device" : access === "write" ? "from-device" : "bidirectional",
    );
    return buffer;
  }

  resources(): MappingResources {
    let iovaPages = 0;
    for (const domain of this.domains) iovaPages += domain.iova.allocatedPages;
    return {
      mapRegisters: this.mapRegisters,
      iovaPages,
      bouncePages: this.bounce.pagesInUse,
      commonBuffers: this.commonBuffers,
    };
  }

  // ------------------------------------------------------------------ internals

  private state(adapter: AdapterObject): RemapAdapter {
    const state = adapter.mapping;
    if (!RemapAdapter.is(state)) {
      throw new PlatformError(
        "bad-handle",
        `adapter ${String(adapter.id)} is not open on the remapping path`,
      );
    }
    return state;
  }

  private window(file: MapRegisterFile | undefined): IovaWindow {
    if (!IovaWindow.is(file) || !file.live) {
      throw new PlatformError("bad-handle", "not a live map register file of the remapping path");
    }
    return file;
  }

  private createDomain(): DmaDomain {
    const domain = new DmaDomain(
      this.nextDomainId++,
      this.iommu,
      this.options,
      this.scheduler,
      this.events,
      this.counters,
    );
    this.domains.add(domain);
    this.counters.add("hal.domain.create");
    return domain;
  }

  private destroyDomain(domain: DmaDomain): void {
    domain.destroy();
    this.domains.delete(domain);
    this.counters.add("hal.domain.destroy");
  }

  /** Moves a device with nothing mapped from its domain to `target`. */
  private moveDevice(device: RemapDevice, target: DmaDomain): void {
    const old = device.domain;
    // Attaching elsewhere invalidates the device's IOTLB entries of the old domain (Iommu.attach).
    if (device.requesterId !== undefined) this.iommu.attach(device.requesterId, target.hardware);
    for (const adapter of device.adapters) {
      old.adapters.delete(adapter);
      target.adapters.add(adapter);
    }
    if (device.untrusted) {
      old.untrustedDevices--;
      target.untrustedDevices++;
      // The domain turns strict: nothing may stay queued behind a lazy invalidation.
      target.flushQueue.flush();
    }
    device.domain = target;
    if (old.adapters.size === 0) this.destroyDomain(old);
  }

  /** allocFast for a window; a full flush queue holds freed IOVA, so it is drained and retried. */
  private allocateWindowIova(domain: DmaDomain, count: number, limitPfn: number): number | undefined {
    let pfn = domain.iova.allocFast(count, limitPfn);
    if (pfn === undefined && domain.flushQueue.length > 0) {
      domain.flushQueue.flush();
      pfn = domain.iova.allocFast(count, limitPfn);
    }
    return pfn;
  }

  private bounceIn(source: number, length: number): number {
    const pfn = this.bounce.bounceIn(source, length);
    if (pfn === undefined)
      throw new PlatformError("no-memory", "no frame is free for a sub-page bounce page");
    return pfn;
  }

  /**
   * Unmaps the pieces of `window` that lie in [start, end) of the chain at `mdl` (every piece
   * when `mdl` is undefined): copy-out of bounced reads, unmap, then the domain's policy.
   */
  private unmapPieces(
    window: IovaWindow,
    mdl: Mdl | undefined,
    start: number,
    end: number,
    writeToDevice: boolean,
  ): void {
    const domain = window.domain;
    const strict = domain.strict;
    const table = domain.hardware;
    const listening = this.unmapListened.active;
    // A strict flush invalidates each run of consecutive window pages once.
    let runFirst = -1;
    let runEnd = -1;
    let kept = 0;
    for (let i = 0; i < window.pieces; i++) {
      const pieceMdl = window.mdls[i]!;
      const at = mdl === undefined ? 0 : chainOffset(mdl, pieceMdl, window.vas[i]!);
      const length = window.lengths[i]!;
      if (mdl !== undefined && (at < 0 || at < start || at + length > end)) {
        this.movePiece(window, i, kept++);
        continue;
      }
      const page = window.pages[i]!;
      const span = window.spans[i]!;
      const iova = (window.pfn + page) * PAGE_SIZE;
      if (!writeToDevice) this.copyOutBounced(window, i, pieceMdl);
      table.unmap(iova, span * PAGE_SIZE);
      window.bytesMapped -= length;
      this.unmaps.value++;
      if (strict) {
        if (page !== runEnd) {
          if (runFirst >= 0) domain.invalidatePages((window.pfn + runFirst) * PAGE_SIZE, runEnd - runFirst);
          runFirst = page;
        }
        runEnd = page + span;
      }
      if (listening) {
        this.events.emit("dma.unmap", {
          adapter: window.adapter.id,
          requesterId: window.state.device.requesterId ?? -1,
          iova: iova + ((window.vas[i]! - pieceMdl.startVa) % PAGE_SIZE),
          length,
          pages: span,
          kind: "transfer",
          policy: strict ? "strict" : "lazy",
        });
      }
    }
    if (runFirst >= 0) domain.invalidatePages((window.pfn + runFirst) * PAGE_SIZE, runEnd - runFirst);
    if (!strict && kept < window.pieces) window.stale = true;
    // Bounce pages go back only after their translations are invalidated.
    for (let i = kept; i < window.pieces; i++) {
      this.releaseBounced(window, i);
      window.mdls[i] = undefined;
    }
    window.pieces = kept;
    if (kept > 0) return;
    window.next = 0;
    if (!window.stale) return;
    window.stale = false;
    if (strict) {
      // The domain turned strict (an untrusted device joined) after a lazy unmap in this window.
      domain.invalidatePages(window.pfn * PAGE_SIZE, window.reserved);
    } else {
      // Lazy: the window's IOVA waits in the flush queue; its next use takes fresh IOVA.
      domain.flushQueue.add(window.pfn, window.reserved, QueuedRangeKind.Fast);
      window.pfn = -1;
    }
  }

  /** Swaps a kept piece down, so the unmapped ones end up after the kept ones. */
  private movePiece(window: IovaWindow, from: number, to: number): void {
    if (from === to) return;
    swap(window.mdls, from, to);
    swap(window.vas, from, to);
    swap(window.lengths, from, to);
    swap(window.pages, from, to);
    swap(window.spans, from, to);
    swap(window.heads, from, to);
    swap(window.tails, from, to);
  }

  private copyOutBounced(window: IovaWindow, i: number, mdl: Mdl): void {
    const head = window.heads[i]!;
    const tail = window.tails[i]!;
    if (head === NO_BOUNCE && tail === NO_BOUNCE) return;
    const offset = window.vas[i]! - mdl.startVa;
    const inPage = offset % PAGE_SIZE;
    const firstPage = (offset - inPage) / PAGE_SIZE;
    const length = window.lengths[i]!;
    const span = window.spans[i]!;
    if (head !== NO_BOUNCE) {
      this.bounce.copyOut(
        head,
        mdl.pfns[firstPage]! * PAGE_SIZE + inPage,
        Math.min(length, PAGE_SIZE - inPage),
      );
    }
    if (tail !== NO_BOUNCE) {
      this.bounce.copyOut(tail, mdl.pfns[firstPage + span - 1]! * PAGE_SIZE, (inPage + length) % PAGE_SIZE);
    }
    this.announceBounce(window, i, "out");
  }

  /** "dma.bounce" for the sub-page bounce pages of piece `i`: copied in at map, out at flush. */
  private announceBounce(window: IovaWindow, i: number, direction: "in" | "out"): void {
    if (!this.bounceListened.active) return;
    const mdl = window.mdls[i]!;
    const inPage = (window.vas[i]! - mdl.startVa) % PAGE_SIZE;
    const length = window.lengths[i]!;
    const span = window.spans[i]!;
    const base = (window.pfn + window.pages[i]!) * PAGE_SIZE;
    const device = window.state.device;
    const emit = (logicalAddress: number, bytes: number): void =>
      this.events.emit("dma.bounce", {
        adapter: window.adapter.id,
        requesterId: device.requesterId ?? -1,
        direction,
        logicalAddress,
        bytes,
      });
    if (window.heads[i] !== NO_BOUNCE) emit(base + inPage, Math.min(length, PAGE_SIZE - inPage));
    if (window.tails[i] !== NO_BOUNCE) emit(base + (span - 1) * PAGE_SIZE, (inPage + length) % PAGE_SIZE);
  }

  private releaseBounced(window: IovaWindow, i: number): void {
    if (window.heads[i] !== NO_BOUNCE) this.bounce.release(window.heads[i]!);
    if (window.tails[i] !== NO_BOUNCE) this.bounce.release(window.tails[i]!);
    window.heads[i] = NO_BOUNCE;
    window.tails[i] = NO_BOUNCE;
  }

  /** [minPfn, limitPfn] of IOVA for a buffer within [minimum, maximum] logical bytes. */
  private logicalBounds(state: RemapAdapter, minimum: number, maximum: number): [number, number] | undefined {
    if (!Number.isSafeInteger(minimum) || !Number.isSafeInteger(maximum) || minimum < 0 || maximum < 0) {
      throw new PlatformError(
        "bad-address",
        `logical bounds ${String(minimum)}..${String(maximum)} are not addresses`,
      );
    }
    const minPfn = Math.max(1, Math.ceil(minimum / PAGE_SIZE));
    const limitPfn = Math.min(state.limitPfn, Math.floor((Math.min(maximum, IOVA_MAX) + 1) / PAGE_SIZE) - 1);
    return minPfn <= limitPfn ? [minPfn, limitPfn] : undefined;
  }

  /** Large-page memory: a 2 MiB aligned contiguous run when one is free, scattered pages otherwise. */
  private allocateLarge(bytes: number, cached: boolean): number {
    try {
      return this.kernel.allocateContiguous(bytes, {
        owner: this.bufferOwner,
        maxAddress: ANY_PHYSICAL,
        alignmentFrames: LARGE_PAGE_FRAMES,
        tag: "DmaC",
        cached,
      });
    } catch (error) {
      if (!(error instanceof PlatformError) || error.code !== "no-memory") throw error;
      return this.kernel.allocateNonPaged(bytes, { owner: this.bufferOwner, tag: "DmaC", cached });
    }
  }

  /**
   * Maps `pages` frames of `pfns` from index `first` at IOVA PFN `iova`, one map per physically
   * contiguous run (so aligned 2 MiB runs become superpages). False, with nothing left mapped,
   * when a table frame could not be allocated.
   */
  private mapFrames(
    domain: DmaDomain,
    iova: number,
    pfns: readonly number[],
    first: number,
    pages: number,
    permissions: IoPermission,
  ): boolean {
    let done = 0;
    try {
      while (done < pages) {
        let run = 1;
        while (done + run < pages && pfns[first + done + run] === pfns[first + done]! + run) run++;
        domain.hardware.map(
          (iova + done) * PAGE_SIZE,
          pfns[first + done]! * PAGE_SIZE,
          run * PAGE_SIZE,
          permissions,
        );
        done += run;
      }
      return true;
    } catch (error) {
      if (done > 0) domain.hardware.unmap(iova * PAGE_SIZE, done * PAGE_SIZE);
      if (error instanceof PlatformError && error.code === "no-memory") return false;
      throw error;
    }
  }

  private commonBufferMapped(buffer: RemapCommonBuffer, direction: DmaDirection): void {
    buffer.state.outstanding++;
    buffer.state.device.outstanding++;
    this.commonBuffers++;
    this.counters.add("hal.commonbuffer.alloc");
    if (this.events.hasListeners("dma.map")) {
      this.events.emit("dma.map", {
        adapter: buffer.adapter.id,
        requesterId: buffer.state.device.requesterId ?? -1,
        iova: buffer.logicalAddress,
        length: buffer.length,
        pages: buffer.pages,
        direction,
        kind: buffer.kind,
        bounced: 0,
      });
    }
  }
}

/** Validates a MapTransfer piece: a live, resident MDL and a non-empty range inside it. */
function checkPiece(mdl: Mdl, currentVa: number, length: number): void {
  if (!(mdl instanceof Mdl) || mdl.freed)
    throw new PlatformError("bad-handle", "MapTransfer needs a live MDL");
  if (!mdl.resident) throw new PlatformError("bad-state", `MDL ${mdl.id} is neither locked nor built`);
  const start = mdl.virtualAddress;
  if (
    !Number.isSafeInteger(currentVa) ||
    !Number.isSafeInteger(length) ||
    length < 1 ||
    currentVa < start ||
    currentVa + length > start + mdl.byteCount
  ) {
    throw new PlatformError(
      "out-of-range",
      `piece ${formatAddress(currentVa)}+${String(length)} is not inside MDL ${mdl.id} (${formatAddress(start)}+${mdl.byteCount})`,
    );
  }
}

/** Byte offset of `va` in `piece` from the start of the chain at `head`, or -1 if not in it. */
function chainOffset(head: Mdl, piece: Mdl, va: number): number {
  let before = 0;
  for (let m: Mdl | undefined = head; m !== undefined; m = m.next) {
    if (m === piece) return before + (va - m.virtualAddress);
    before += m.byteCount;
  }
  return -1;
}

function swap<T>(array: T[], a: number, b: number): void {
  const t = array[a]!;
  array[a] = array[b]!;
  array[b] = t;
}
