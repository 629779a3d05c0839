/**
 * The guest HAL's paravirtual IOMMU (seed 001, Joerg Roedel 2008; iommu-anchors §4 and §10): the
 * mapping strategy of a guest whose interface is "paravirtual". It takes the seat of the direct
 * (no remapping) strategy, since the guest itself sees no IOMMU.
 *
 * At boot the guest reserves a configurable, guest-physically contiguous region. For each
 * assigned device the HAL asks the hypervisor once (pvAttach) to serve it:
 *
 * - aperture (the host has a hardware IOMMU): the hypervisor maps the whole region, DMA-contiguous,
 *   at an IOVA window below the device's reach, into the device's host domain, and nothing else.
 *   Coherent buffers are carved from the region; every MapTransfer piece bounces into region
 *   slots (map registers), always copied in as swiotlb does so bytes the device does not write
 *   keep their value, and copied out at the flush. No hypercall after the setup, and the region
 *   being contiguous on the IOMMU side, every piece is one bus address run, however scattered the
 *   guest's pages are on the host.
 * - bounce (no hardware IOMMU): the device sees host-physical addresses, which the guest cannot
 *   know or keep below the device's reach. Each piece is a hypercall (pvMap: the host bounces it
 *   below the reach and copies it in) and each flush another (pvSync: copy back, free). A coherent
 *   buffer is one hypercall that re-backs its guest pages with host memory the device reaches.
 * - native (a device emulated in the guest, not assigned): the direct strategy, unchanged.
 *
 * CreateCommonBufferFromMdl is not served for paravirtual devices: it would mean mapping arbitrary
 * guest pages, which is exactly what this interface avoids.
 */
import { inject, injectable } from "inversify";
import type { AdapterObject } from "../hal/adapter-object.js";
import { DirectMapping } from "../hal/direct-mapping.js";
import type {
  CommonBuffer,
  CommonBufferRequest,
  MappedPiece,
  MappingResources,
  MapRegisterFile,
  MdlCommonBufferRequest,
} from "../hal/dma-mapping-strategy.js";
import type { HalOptions as HalOptionsShape } from "../hal/hal-options.js";
import { HalOptions } from "../hal/tokens.js";
import { Iommu } from "../iommu/iommu.js";
import { CpuMemory } from "../platform/cpu-memory.js";
import { FrameAllocator } from "../platform/frame-allocator.js";
import { KernelMemory } from "../platform/kernel-memory.js";
import type { Mdl } from "../platform/mdl.js";
import { formatAddress, LARGE_PAGE_SIZE, PAGE_SIZE, spanPages } from "../platform/page.js";
import { PhysicalMemory } from "../platform/physical-memory.js";
import { PlatformError } from "../platform/platform-error.js";
import { type CounterCell, Counters } from "../trace/counters.js";
import { EventBus } from "../trace/event-bus.js";
import type { GuestFrames, Hypercalls as HypercallsShape, ParavirtualAttachment } from "./hypercalls.js";
import { RegionAllocator } from "./region-allocator.js";
import { Hypercalls, ParavirtualOptions } from "./tokens.js";
import type { ParavirtualOptions as ParavirtualOptionsShape } from "./virt-options.js";
import "../hal/hal-events.js";
import "../hal/remap-events.js";

/** Frame owner of the reserved region in the guest. */
export const REGION_OWNER = "pv-iommu.region";
/** Frame owner of coherent buffers re-backed by the host (bounce mode). */
export const COHERENT_OWNER = "pv-iommu.coherent";
const LARGE_PAGE_FRAMES = LARGE_PAGE_SIZE / PAGE_SIZE;

/** One piece mapped since the last flush. */
interface ParavirtualPiece {
  readonly mdl: Mdl;
  /** Byte offset of the piece in its MDL. */
  readonly offset: number;
  readonly length: number;
  readonly logicalAddress: number;
  readonly pages: number;
}

/** Map registers of an aperture device: `count` region pages from `first`. */
export class RegionMapRegisterFile implements MapRegisterFile {
  bytesMapped = 0;
  /** Region pages taken by pieces since the file was last emptied. */
  used = 0;
  released = false;
  readonly pieces: ParavirtualPiece[] = [];

  constructor(
    readonly adapter: AdapterObject,
    readonly first: number,
    readonly count: number,
  ) {}
}

/** A coherent buffer of a paravirtual device. */
class ParavirtualCommonBuffer implements CommonBuffer {
  constructor(
    readonly adapter: AdapterObject,
    readonly virtualAddress: number,
    readonly logicalAddress: number,
    readonly length: number,
    readonly cacheEnabled: boolean,
    /** region: pages of the region from `first`; host: guest frames re-backed by the host. */
    readonly kind: "region" | "host",
    readonly first: number,
    readonly pfns: readonly number[],
  ) {}
}

/** A paravirtual adapter: how its device is served, and (bounce) the pieces awaiting a sync. */
interface ParavirtualAdapter {
  readonly requesterId: number;
  readonly attachment: Exclude<ParavirtualAttachment, { kind: "native" }>;
  readonly pieces: ParavirtualPiece[];
}

@injectable()
export class ParavirtualMapping extends DirectMapping {
  /** The region: guest frames [regionFirstPfn, +region.pages). */
  readonly region: RegionAllocator;
  readonly regionFirstPfn: number;
  private readonly pvHypercalls: HypercallsShape;
  private readonly pvMemory: PhysicalMemory;
  private readonly pvCpu: CpuMemory;
  private readonly pvFrames: FrameAllocator;
  private readonly pvKernel: KernelMemory;
  private readonly pvEvents: EventBus;
  private readonly regionOwner: number;
  private readonly coherentOwner: number;
  private readonly bouncedBytes: CounterCell;
  private readonly pvAttachments = new Map<number, ParavirtualAttachment>();
  private readonly pvAdapters = new Map<AdapterObject, ParavirtualAdapter>();
  private readonly pvFiles = new Set<RegionMapRegisterFile>();
  private readonly pvBuffers = new Map<number, ParavirtualCommonBuffer>();

  constructor(
    @inject(PhysicalMemory) memory: PhysicalMemory,
    @inject(CpuMemory) cpu: CpuMemory,
    @inject(FrameAllocator) frames: FrameAllocator,
    @inject(KernelMemory) kernel: KernelMemory,
    @inject(Iommu) iommu: Iommu,
    @inject(HalOptions) options: HalOptionsShape,
    @inject(EventBus) events: EventBus,
    @inject(Counters) counters: Counters,
    @inject(Hypercalls) hypercalls: HypercallsShape,
    @inject(ParavirtualOptions) paravirtual: ParavirtualOptionsShape,
  ) {
    super(memory, cpu, frames, kernel, iommu, options, events, counters);
    this.pvHypercalls = hypercalls;
    this.pvMemory = memory;
    this.pvCpu = cpu;
    this.pvFrames = frames;
    this.pvKernel = kernel;
    this.pvEvents = events;
    this.regionOwner = frames.registerOwner(REGION_OWNER);
    this.coherentOwner = frames.registerOwner(COHERENT_OWNER);
    this.bouncedBytes = counters.cell("virt.pv.bounce.bytes");
    const pages = paravirtual.regionBytes / PAGE_SIZE;
    // Reserved at boot, one guest-physical run, 2 MiB aligned when the guest can afford it.
    const alignment = pages >= LARGE_PAGE_FRAMES ? LARGE_PAGE_FRAMES : 1;
    this.regionFirstPfn = frames.allocate(pages, {
      owner: this.regionOwner,
      contiguous: true,
      alignment,
    })[0]!;
    this.region = new RegionAllocator(pages);
  }

  /** How the hypervisor serves guest requester `requesterId` (after its first adapter opened). */
  attachmentOf(requesterId: number): ParavirtualAttachment | undefined {
    return this.pvAttachments.get(requesterId);
  }

  override mapRegisterLimit(scatterGather: boolean, addressLimit: number): number {
    return Math.min(super.mapRegisterLimit(scatterGather, addressLimit), this.region.pages);
  }

  override openAdapter(adapter: AdapterObject): void {
    super.openAdapter(adapter);
    const rid = adapter.requesterId;
    if (rid === undefined) return;
    const limit = adapter.capabilities.addressLimit;
    let attachment = this.pvAttachments.get(rid);
    if (attachment === undefined || (attachment.kind === "aperture" && apertureEnd(attachment) > limit)) {
      attachment = this.pvHypercalls.pvAttach(rid, this.regionFirstPfn, this.region.pages, limit);
      this.pvAttachments.set(rid, attachment);
    }
    if (attachment.kind !== "native")
      this.pvAdapters.set(adapter, { requesterId: rid, attachment, pieces: [] });
  }

  override closeAdapter(adapter: AdapterObject): void {
    this.pvAdapters.delete(adapter);
    super.closeAdapter(adapter);
  }

  override needsMapRegisters(adapter: AdapterObject): boolean {
    const state = this.pvAdapters.get(adapter);
    if (state === undefined) return super.needsMapRegisters(adapter);
    return state.attachment.kind === "aperture";
  }

  override tryAllocateMapRegisters(adapter: AdapterObject, count: number): MapRegisterFile | undefined {
    const state = this.pvAdapters.get(adapter);
    if (state === undefined) return super.tryAllocateMapRegisters(adapter, count);
    if (state.attachment.kind !== "aperture") {
      throw new PlatformError(
        "bad-state",
        `adapter ${adapter.id} is served by host bouncing: no map registers`,
      );
    }
    if (!Number.isInteger(count) || count < 1 || count > this.region.pages) {
      throw new PlatformError(
        "out-of-range",
        `${String(count)} map registers: the region has ${this.region.pages}`,
      );
    }
    const first = this.region.allocate(count);
    if (first === undefined) return undefined;
    const file = new RegionMapRegisterFile(adapter, first, count);
    this.pvFiles.add(file);
    return file;
  }

  override freeMapRegisters(file: MapRegisterFile): void {
    if (!(file instanceof RegionMapRegisterFile)) {
      super.freeMapRegisters(file);
      return;
    }
    this.liveFile(file);
    this.region.free(file.first, file.count);
    file.released = true;
    file.pieces.length = 0;
    this.pvFiles.delete(file);
  }

  override mapTransfer(
    adapter: AdapterObject,
    file: MapRegisterFile | undefined,
    mdl: Mdl,
    currentVa: number,
    length: number,
    writeToDevice: boolean,
  ): MappedPiece {
    const state = this.pvAdapters.get(adapter);
    if (state === undefined) return super.mapTransfer(adapter, file, mdl, currentVa, length, writeToDevice);
    const offset = currentVa - mdl.virtualAddress;
    if (!Number.isSafeInteger(offset) || offset < 0 || length < 1 || offset + length > mdl.byteCount) {
      throw new PlatformError(
        "out-of-range",
        `${formatAddress(currentVa)}+${length} is not inside MDL ${mdl.id} (${formatAddress(mdl.virtualAddress)}+${mdl.byteCount})`,
      );
    }
    const position = mdl.byteOffset + offset;
    if (state.attachment.kind === "bounce") {
      this.cpuRuns(mdl, offset, length, "flush");
      const frames: GuestFrames = { pfns: mdl.pfns, offset: position, length };
      const logicalAddress = this.pvHypercalls.pvMap(
        state.requesterId,
        frames,
        writeToDevice,
        adapter.capabilities.addressLimit,
      );
      const pages = spanPages(position, length);
      state.pieces.push({ mdl, offset, length, logicalAddress, pages });
      this.announce(adapter, "dma.map", logicalAddress, length, pages, writeToDevice);
      return { logicalAddress, length };
    }
    const grant = this.liveFile(file);
    const inPage = position % PAGE_SIZE;
    const free = grant.count - grant.used;
    let mapped = length;
    if (spanPages(inPage, length) > free) {
      if (!adapter.capabilities.scatterGather || free === 0) {
        throw new PlatformError(
          "no-memory",
          `adapter ${adapter.id}: out of map registers, ${spanPages(inPage, length)} needed and ${free} left of ${grant.count}`,
        );
      }
      mapped = free * PAGE_SIZE - inPage;
    }
    const pages = spanPages(inPage, mapped);
    const slot = grant.first + grant.used;
    const slotAddress = (this.regionFirstPfn + slot) * PAGE_SIZE + inPage;
    // swiotlb copies in whatever the direction, so bytes the device does not write stay as they were.
    this.copy(mdl, offset, mapped, slot, inPage, true);
    this.bounced(adapter, slotAddress, mapped, "in");
    const logicalAddress = state.attachment.base + slot * PAGE_SIZE + inPage;
    grant.used += pages;
    grant.bytesMapped += mapped;
    grant.pieces.push({ mdl, offset, length: mapped, logicalAddress, pages });
    this.announce(adapter, "dma.map", logicalAddress, mapped, pages, writeToDevice);
    return { logicalAddress, length: mapped };
  }

  override flushAdapterBuffers(
    adapter: AdapterObject,
    file: MapRegisterFile | undefined,
    mdl: Mdl,
    currentVa: number,
    length: number,
    writeToDevice: boolean,
  ): boolean {
    const state = this.pvAdapters.get(adapter);
    if (state === undefined)
      return super.flushAdapterBuffers(adapter, file, mdl, currentVa, length, writeToDevice);
    const start = currentVa - mdl.virtualAddress;
    const end = start + length;
    const pieces = state.attachment.kind === "aperture" ? this.liveFile(file).pieces : state.pieces;
    let kept = 0;
    for (const piece of pieces) {
      if (piece.mdl !== mdl || piece.offset + piece.length <= start || piece.offset >= end) {
        pieces[kept++] = piece;
        continue;
      }
      if (state.attachment.kind === "bounce") {
        const frames: GuestFrames = {
          pfns: mdl.pfns,
          offset: mdl.byteOffset + piece.offset,
          length: piece.length,
        };
        this.pvHypercalls.pvSync(state.requesterId, piece.logicalAddress, frames, !writeToDevice);
        if (!writeToDevice) this.cpuRuns(mdl, piece.offset, piece.length, "invalidate");
      } else if (!writeToDevice) {
        const base = state.attachment.base;
        const slot = Math.floor((piece.logicalAddress - base) / PAGE_SIZE);
        const inPage = (piece.logicalAddress - base) % PAGE_SIZE;
        this.copy(mdl, piece.offset, piece.length, slot, inPage, false);
        this.bounced(adapter, (this.regionFirstPfn + slot) * PAGE_SIZE + inPage, piece.length, "out");
      }
      this.announce(adapter, "dma.unmap", piece.logicalAddress, piece.length, piece.pages, writeToDevice);
    }
    pieces.length = kept;
    if (state.attachment.kind === "aperture" && kept === 0) {
      const grant = this.liveFile(file);
      grant.used = 0;
      grant.bytesMapped = 0;
    }
    return true;
  }

  override allocateCommonBuffer(
    adapter: AdapterObject,
    request: CommonBufferRequest,
  ): CommonBuffer | undefined {
    const state = this.pvAdapters.get(adapter);
    if (state === undefined) return super.allocateCommonBuffer(adapter, request);
    const alignment = request.largePage ? LARGE_PAGE_FRAMES : 1;
    const pages = Math.ceil(Math.ceil(request.length / PAGE_SIZE) / alignment) * alignment;
    const limit = Math.min(request.maximumLogical, adapter.capabilities.addressLimit);
    let buffer: ParavirtualCommonBuffer;
    if (state.attachment.kind === "aperture") {
      const first = this.region.allocate(pages, alignment);
      if (first === undefined) return undefined;
      const logicalAddress = state.attachment.base + first * PAGE_SIZE;
      if (logicalAddress < request.minimumLogical || logicalAddress + pages * PAGE_SIZE - 1 > limit) {
        this.region.free(first, pages);
        return undefined;
      }
      const pfns = Array.from({ length: pages }, (_, i) => this.regionFirstPfn + first + i);
      const va = this.pvKernel.mapPages(pfns, this.regionOwner, request.cacheEnabled);
      buffer = new ParavirtualCommonBuffer(
        adapter,
        va,
        logicalAddress,
        request.length,
        request.cacheEnabled,
        "region",
        first,
        pfns,
      );
    } else {
      let pfns: number[];
      try {
        pfns = this.pvFrames.allocate(pages, { owner: this.coherentOwner, contiguous: true, alignment });
      } catch (error) {
        if (error instanceof PlatformError && error.code === "no-memory") return undefined;
        throw error;
      }
      let logicalAddress: number;
      try {
        logicalAddress = this.pvHypercalls.pvCoherent(state.requesterId, pfns[0]!, pages, limit);
      } catch (error) {
        this.pvFrames.free(pfns, this.coherentOwner);
        if (error instanceof PlatformError && error.code === "no-memory") return undefined;
        throw error;
      }
      const va = this.pvKernel.mapPages(pfns, this.coherentOwner, request.cacheEnabled);
      buffer = new ParavirtualCommonBuffer(
        adapter,
        va,
        logicalAddress,
        request.length,
        request.cacheEnabled,
        "host",
        pfns[0]!,
        pfns,
      );
    }
    this.pvBuffers.set(buffer.virtualAddress, buffer);
    this.announce(adapter, "dma.map", buffer.logicalAddress, buffer.length, pages, undefined);
    return buffer;
  }

  override freeCommonBuffer(buffer: CommonBuffer): void {
    if (!(buffer instanceof ParavirtualCommonBuffer)) {
      super.freeCommonBuffer(buffer);
      return;
    }
    if (this.pvBuffers.get(buffer.virtualAddress) !== buffer) {
      throw new PlatformError(
        "double-free",
        `paravirtual common buffer ${formatAddress(buffer.virtualAddress)} was already freed`,
      );
    }
    this.pvKernel.unmapPages(buffer.virtualAddress);
    this.pvCpu.discard(buffer.pfns[0]! * PAGE_SIZE, buffer.pfns.length * PAGE_SIZE);
    if (buffer.kind === "region") this.region.free(buffer.first, buffer.pfns.length);
    else this.pvFrames.free(buffer.pfns, this.coherentOwner);
    this.pvBuffers.delete(buffer.virtualAddress);
    this.announce(
      buffer.adapter,
      "dma.unmap",
      buffer.logicalAddress,
      buffer.length,
      buffer.pfns.length,
      undefined,
    );
  }

  override createCommonBufferFromMdl(
    adapter: AdapterObject,
    mdl: Mdl,
    request: MdlCommonBufferRequest,
  ): CommonBuffer | undefined {
    if (!this.pvAdapters.has(adapter)) return super.createCommonBufferFromMdl(adapter, mdl, request);
    return undefined;
  }

  override resources(): MappingResources {
    const direct = super.resources();
    let mapRegisters = 0;
    for (const file of this.pvFiles) mapRegisters += file.count;
    let bouncePages = 0;
    for (const state of this.pvAdapters.values())
      for (const piece of state.pieces) bouncePages += piece.pages;
    return {
      mapRegisters: direct.mapRegisters + mapRegisters,
      iovaPages: direct.iovaPages,
      bouncePages: direct.bouncePages + bouncePages,
      commonBuffers: direct.commonBuffers + this.pvBuffers.size,
    };
  }

  private liveFile(file: MapRegisterFile | undefined): RegionMapRegisterFile {
    if (!(file instanceof RegionMapRegisterFile) || !this.pvFiles.has(file)) {
      throw new PlatformError(
        file instanceof RegionMapRegisterFile && file.released ? "double-free" : "bad-handle",
        "not a live map register grant of the paravirtual region",
      );
    }
    return file;
  }

  /**
   * Copies `length` bytes at `offset` of the MDL to (toRegion) or from region page `slot` at byte
   * `inPage`, one copy per physically contiguous run of the MDL. A non-coherent guest's CPU side
   * goes through its cache (it sees the driver's dirty lines; the device's data lands in its view).
   */
  private copy(
    mdl: Mdl,
    offset: number,
    length: number,
    slot: number,
    inPage: number,
    toRegion: boolean,
  ): void {
    let region = (this.regionFirstPfn + slot) * PAGE_SIZE + inPage;
    const coherent = this.pvCpu.coherent;
    this.forEachRun(mdl, offset, length, (physical, bytes) => {
      if (coherent) {
        if (toRegion) this.pvMemory.copy(region, physical, bytes);
        else this.pvMemory.copy(physical, region, bytes);
      } else {
        this.copyThroughCache(physical, region, bytes, toRegion);
      }
      region += bytes;
    });
    this.bouncedBytes.value += length;
  }

  /** Page by page against the region frames' own bytes (they are uncached, as bounce pages are). */
  private copyThroughCache(physical: number, region: number, bytes: number, toRegion: boolean): void {
    let done = 0;
    while (done < bytes) {
      const at = region + done;
      const inPage = at % PAGE_SIZE;
      const chunk = Math.min(bytes - done, PAGE_SIZE - inPage);
      const view = this.pvMemory.frame(Math.floor(at / PAGE_SIZE)).subarray(inPage, inPage + chunk);
      if (toRegion) this.pvCpu.read(physical + done, view);
      else this.pvCpu.write(physical + done, view);
      done += chunk;
    }
  }

  /** Cache maintenance over the MDL's range before a host copy in, or after one out. */
  private cpuRuns(mdl: Mdl, offset: number, length: number, operation: "flush" | "invalidate"): void {
    this.forEachRun(mdl, offset, length, (physical, bytes) => {
      if (operation === "flush") this.pvCpu.flush(physical, bytes);
      else this.pvCpu.invalidate(physical, bytes);
    });
  }

  /** The physically contiguous runs of [offset, +length) of the MDL, in order. */
  private forEachRun(
    mdl: Mdl,
    offset: number,
    length: number,
    visit: (physical: number, bytes: number) => void,
  ): void {
    const pfns = mdl.pfns;
    let position = mdl.byteOffset + offset;
    const end = position + length;
    while (position < end) {
      let page = Math.floor(position / PAGE_SIZE);
      const physical = pfns[page]! * PAGE_SIZE + (position % PAGE_SIZE);
      let runEnd = Math.min(end, (page + 1) * PAGE_SIZE);
      while (runEnd < end && pfns[page + 1] === pfns[page]! + 1) {
        page++;
        runEnd = Math.min(end, (page + 1) * PAGE_SIZE);
      }
      visit(physical, runEnd - position);
      position = runEnd;
    }
  }

  private bounced(
    adapter: AdapterObject,
    regionAddress: number,
    bytes: number,
    direction: "in" | "out",
  ): void {
    if (!this.pvEvents.hasListeners("dma.bounce")) return;
    this.pvEvents.emit("dma.bounce", {
      adapter: adapter.id,
      requesterId: adapter.requesterId ?? -1,
      direction,
      logicalAddress: regionAddress,
      bytes,
    });
  }

  private announce(
    adapter: AdapterObject,
    event: "dma.map" | "dma.unmap",
    logical: number,
    length: number,
    pages: number,
    writeToDevice: boolean | undefined,
  ): void {
    if (!this.pvEvents.hasListeners(event)) return;
    const kind = writeToDevice === undefined ? "common-buffer" : "transfer";
    const requesterId = adapter.requesterId ?? -1;
    if (event === "dma.map") {
      const direction =
        writeToDevice === undefined ? "bidirectional" : writeToDevice ? "to-device" : "from-device";
      this.pvEvents.emit("dma.map", {
        adapter: adapter.id,
        requesterId,
        iova: logical,
        length,
        pages,
        direction,
        kind,
        bounced: 0,
      });
    } else {
      this.pvEvents.emit("dma.unmap", {
        adapter: adapter.id,
        requesterId,
        iova: logical,
        length,
        pages,
        kind,
        policy: "strict",
      });
    }
  }
}

function apertureEnd(attachment: { readonly base: number; readonly pages: number }): number {
  return attachment.base + attachment.pages * PAGE_SIZE - 1;
}
