/**
 * The no-remapping path (IOMMU off, or a passthrough context entry): logical address = physical
 * address, and map registers are bounce pages below the device's reach (reference sections 3 and
 * 9; DESIGN "The HAL's two paths").
 *
 * - A scatter/gather device that reaches every RAM page needs no map registers at all
 *   (MapRegisterBase NULL): MapTransfer returns the physical run as it is.
 * - Otherwise each mapped page takes one register of the adapter's grant, in order (ReactOS's
 *   per-base counter). A page within reach is used in place; only pages beyond the reach are
 *   copied into the grant's bounce pages. A device without scatter/gather gets the whole transfer
 *   as one run: in place when the buffer is physically contiguous and reachable, else all of it
 *   bounced into consecutive registers (ReactOS's MAP_BASE_SW_SG).
 * - A direct run never crosses a 4 GiB boundary (bus masters count addresses in 32-bit halves).
 * - Copy in at MapTransfer for memory-to-device transfers, copy out at FlushAdapterBuffers for
 *   device-to-memory ones, per mapped piece: each piece records whether and where it bounced, so a
 *   flush copies back exactly what the device may have written there (section 9 lists the
 *   ReactOS quirks this avoids: copy-back from entry 0, copy-back of pieces that never bounced,
 *   a counter reset that breaks multi-piece flushes).
 * - Bounce pages are uncached (MmNonCached, as ReactOS allocates them): the device reads and
 *   writes them directly. A copy moves a page at a time between the driver's page, as the CPU
 *   sees it, and the bounce frame's bytes: one copy per page, nothing staged. (PhysicalMemory.copy
 *   would look both pages up on every call; this path looks up one, and measured about 20 %
 *   faster in bench/hal-bench.ts.)
 *
 * The pools (HalOptions.mapRegisterPoolPages pages each, frames owned by "hal.bounce") are made on
 * first need: one below 16 MiB for devices with 24..31 address bits, one below 4 GiB for wider
 * ones (and for 64-bit devices without scatter/gather, which bounce only to become contiguous),
 * and one just below the reach of a narrower VERSION3 device.
 *
 * In passthrough mode the requester's context entry is set to pass-through at openAdapter and
 * cleared when its last adapter closes: a device without an adapter cannot do DMA at all.
 */
import { inject, injectable } from "inversify";
import { Iommu } from "../iommu/iommu.js";
import { CpuMemory } from "../platform/cpu-memory.js";
import { FrameAllocator } from "../platform/frame-allocator.js";
import { KernelMemory } from "../platform/kernel-memory.js";
import type { Mdl } from "../platform/mdl.js";
import { formatAddress, GiB, LARGE_PAGE_SIZE, MiB, PAGE_SIZE, spanPages } from "../platform/page.js";
import { PhysicalMemory } from "../platform/physical-memory.js";
import { PlatformError } from "../platform/platform-error.js";
import { type CounterCell, Counters } from "../trace/counters.js";
import { EventBus } from "../trace/event-bus.js";
import type { AdapterObject } from "./adapter-object.js";
import { BouncePool } from "./bounce-pool.js";
import type {
  CommonBuffer,
  CommonBufferRequest,
  DmaMappingStrategy,
  MappedPiece,
  MappingResources,
  MapRegisterFile,
  MdlCommonBufferRequest,
} from "./dma-mapping-strategy.js";
import "./hal-events.js";
import type { HalOptions as HalOptionsShape } from "./hal-options.js";
import type { DmaDirection } from "./remap-events.js";
import "./remap-events.js";
import { HalOptions } from "./tokens.js";

export const BOUNCE_OWNER = "hal.bounce";
export const COMMON_BUFFER_OWNER = "hal.common-buffer";
const FOUR_GIB = 4 * GiB;
const REACH_24 = 16 * MiB - 1;
const REACH_32 = FOUR_GIB - 1;

/** One mapped piece of a grant, kept until the flush that ends it. */
interface DirectPiece {
  readonly mdl: Mdl;
  /** Byte offset of the piece in its MDL. */
  readonly offset: number;
  readonly length: number;
  readonly logicalAddress: number;
  /** True when the piece lives in the grant's bounce pages (logicalAddress is a bounce address). */
  readonly bounced: boolean;
  readonly pages: number;
}

/** What MapRegisterBase stands for on this path: a run of bounce pages and what is mapped in it. */
export class DirectMapRegisterFile implements MapRegisterFile {
  bytesMapped = 0;
  /** Registers used by the pieces mapped since the file was last emptied by flushes. */
  used = 0;
  readonly pieces: DirectPiece[] = [];
  released = false;

  constructor(
    readonly adapter: AdapterObject,
    readonly pool: BouncePool,
    /** Index of the first register in the pool. */
    readonly first: number,
    readonly count: number,
  ) {}
}

interface DirectCommonBuffer extends CommonBuffer {
  /** contiguous: memory the HAL allocated; mdl: a driver's MDL pages, which the driver keeps. */
  readonly kind: "contiguous" | "mdl";
  readonly pages: number;
}

/** Per-adapter state of this path, in AdapterObject.mapping. */
interface DirectAdapterState {
  readonly pool: BouncePool | undefined;
}

@injectable()
export class DirectMapping implements DmaMappingStrategy {
  readonly remapping = false;
  private readonly memory: PhysicalMemory;
  private readonly cpu: CpuMemory;
  private readonly frames: FrameAllocator;
  private readonly kernel: KernelMemory;
  private readonly iommu: Iommu;
  private readonly options: HalOptionsShape;
  private readonly events: EventBus;
  private readonly bounceOwner: number;
  private readonly commonBufferOwner: number;
  private readonly bounceBytes: CounterCell;
  private readonly bounceInBytes: CounterCell;
  private readonly bounceOutBytes: CounterCell;
  /** Pools by the highest address they serve. */
  private readonly poolsByReach = new Map<number, BouncePool>();
  private readonly files = new Set<DirectMapRegisterFile>();
  private readonly commonBuffers = new Map<number, DirectCommonBuffer>();
  /** Adapters open per requester in passthrough mode. */
  private readonly passthrough = new Map<number, number>();

  constructor(
    @inject(PhysicalMemory) memory: PhysicalMemory,
    @inject(CpuMemory) cpu: CpuMemory,
    @inject(FrameAllocator) frames: FrameAllocator,
    @inject(KernelMemory) kernel: KernelMemory,
    @inject(Iommu) iommu: Iommu,
    @inject(HalOptions) options: HalOptionsShape,
    @inject(EventBus) events: EventBus,
    @inject(Counters) counters: Counters,
  ) {
    this.memory = memory;
    this.cpu = cpu;
    this.frames = frames;
    this.kernel = kernel;
    this.iommu = iommu;
    this.options = options;
    this.events = events;
    this.bounceOwner = frames.registerOwner(BOUNCE_OWNER);
    this.commonBufferOwner = frames.registerOwner(COMMON_BUFFER_OWNER);
    this.bounceBytes = counters.cell("hal.bounce.bytes");
    this.bounceInBytes = counters.cell("hal.bounce.in.bytes");
    this.bounceOutBytes = counters.cell("hal.bounce.out.bytes");
  }

  /** The bounce pools made so far, for reports: where they are and how much is in use. */
  get pools(): readonly {
    readonly reach: number;
    readonly base: number;
    readonly pages: number;
    readonly inUse: number;
  }[] {
    return [...this.poolsByReach.values()].map((pool) => ({
      reach: pool.reach,
      base: pool.base,
      pages: pool.pages,
      inUse: pool.pagesInUse,
    }));
  }

  /**
   * The most map registers one request of such a device may have: unbounded when it needs none,
   * else its pool's size. Makes the pool if needed; throws "no-memory" when none can be made.
   */
  mapRegisterLimit(scatterGather: boolean, addressLimit: number): number {
    if (!this.needsRegisters(scatterGather, addressLimit)) return Number.POSITIVE_INFINITY;
    return this.pool(addressLimit).pages;
  }

  openAdapter(adapter: AdapterObject): void {
    const { scatterGather, addressLimit } = adapter.capabilities;
    const pool = this.needsRegisters(scatterGather, addressLimit) ? this.pool(addressLimit) : undefined;
    const rid = adapter.requesterId;
    if (this.options.remapping === "passthrough" && rid !== undefined) {
      const open = this.passthrough.get(rid) ?? 0;
      if (open === 0 && this.iommu.attachment(rid) !== "passthrough") this.iommu.attachPassthrough(rid);
      this.passthrough.set(rid, open + 1);
    }
    const state: DirectAdapterState = { pool };
    adapter.mapping = state;
  }

  closeAdapter(adapter: AdapterObject): void {
    const rid = adapter.requesterId;
    if (rid === undefined) return;
    const open = this.passthrough.get(rid);
    if (open === undefined) return;
    if (open > 1) {
      this.passthrough.set(rid, open - 1);
      return;
    }
    this.passthrough.delete(rid);
    if (this.iommu.attachment(rid) === "passthrough") this.iommu.detach(rid);
  }

  needsMapRegisters(adapter: AdapterObject): boolean {
    return this.needsRegisters(adapter.capabilities.scatterGather, adapter.capabilities.addressLimit);
  }

  tryAllocateMapRegisters(adapter: AdapterObject, count: number): MapRegisterFile | undefined {
    const pool = this.stateOf(adapter).pool;
    if (pool === undefined) {
      throw new PlatformError(
        "bad-state",
        `adapter ${adapter.id} reaches all memory and has no map registers`,
      );
    }
    if (!Number.isInteger(count) || count < 1 || count > pool.pages) {
      throw new PlatformError("out-of-range", `${String(count)} map registers: the pool has ${pool.pages}`);
    }
    const first = pool.allocate(count);
    if (first === undefined) return undefined;
    const file = new DirectMapRegisterFile(adapter, pool, first, count);
    this.files.add(file);
    return file;
  }

  freeMapRegisters(file: MapRegisterFile): void {
    const direct = this.file(file);
    direct.pool.free(direct.first, direct.count);
    direct.released = true;
    direct.pieces.length = 0;
    this.files.delete(direct);
  }

  mapTransfer(
    adapter: AdapterObject,
    file: MapRegisterFile | undefined,
    mdl: Mdl,
    currentVa: number,
    length: number,
    writeToDevice: boolean,
  ): MappedPiece {
    const offset = currentVa - mdl.virtualAddress;
    if (!Number.isSafeInteger(offset) || offset < 0 || length < 1 || offset + length > mdl.byteCount) {
      throw new PlatformError(
        "out-of-range",
        `${formatAddress(currentVa)}+${length} is not inside MDL ${mdl.id} (${formatAddress(mdl.virtualAddress)}+${mdl.byteCount})`,
      );
    }
    const { scatterGather, addressLimit } = adapter.capabilities;
    const position = mdl.byteOffset + offset;
    const physical = mdl.pfns[Math.floor(position / PAGE_SIZE)]! * PAGE_SIZE + (position % PAGE_SIZE);
    if (file === undefined) {
      const run = directRun(mdl.pfns, position, length, Number.MAX_SAFE_INTEGER);
      this.announceMap(adapter, physical, run, spanPages(physical, run), writeToDevice, 0);
      return { logicalAddress: physical, length: run };
    }
    const grant = this.file(file);
    const free = grant.count - grant.used;
    const firstBeyondReach = physical - (physical % PAGE_SIZE) + PAGE_SIZE - 1 > addressLimit;
    let mapped = length;
    let bounced: boolean;
    if (scatterGather) {
      // One run: in place while pages are reachable and adjacent, or bounced while they are not.
      bounced = firstBeyondReach;
      mapped = bounced
        ? unreachableRun(mdl.pfns, position, length, addressLimit)
        : directRun(mdl.pfns, position, length, addressLimit);
      if (free > 0) mapped = Math.min(mapped, free * PAGE_SIZE - (position % PAGE_SIZE));
    } else {
      bounced = firstBeyondReach || directRun(mdl.pfns, position, length, addressLimit) < length;
    }
    const pages = spanPages(position, mapped);
    if (pages > free) {
      throw new PlatformError(
        "no-memory",
        `adapter ${adapter.id}: out of map registers, ${spanPages(position, length)} needed and ${free} left of ${grant.count}`,
      );
    }
    let logicalAddress = physical;
    if (bounced) {
      logicalAddress = grant.pool.address(grant.first + grant.used) + (position % PAGE_SIZE);
      if (writeToDevice) this.bounce(adapter, grant.pool, mdl, offset, mapped, logicalAddress, true);
    }
    grant.used += pages;
    grant.bytesMapped += mapped;
    const piece: DirectPiece = { mdl, offset, length: mapped, logicalAddress, bounced, pages };
    grant.pieces.push(piece);
    this.announceMap(adapter, logicalAddress, mapped, pages, writeToDevice, bounced ? pages : 0);
    return piece;
  }

  flushAdapterBuffers(
    adapter: AdapterObject,
    file: MapRegisterFile | undefined,
    mdl: Mdl,
    currentVa: number,
    length: number,
    writeToDevice: boolean,
  ): boolean {
    if (file === undefined) return true;
    const grant = this.file(file);
    const start = currentVa - mdl.virtualAddress;
    const end = start + length;
    const pieces = grant.pieces;
    let kept = 0;
    for (let i = 0; i < pieces.length; i++) {
      const piece = pieces[i]!;
      const pieceEnd = piece.offset + piece.length;
      if (piece.mdl !== mdl || pieceEnd <= start || piece.offset >= end) {
        pieces[kept++] = piece;
        continue;
      }
      if (piece.bounced && !writeToDevice) {
        const from = Math.max(start, piece.offset);
        const to = Math.min(end, pieceEnd);
        this.bounce(
          adapter,
          grant.pool,
          mdl,
          from,
          to - from,
          piece.logicalAddress + (from - piece.offset),
          false,
        );
      }
      grant.bytesMapped -= piece.length;
      this.announceUnmap(adapter, piece);
    }
    pieces.length = kept;
    if (kept === 0) {
      grant.used = 0;
      grant.bytesMapped = 0;
    }
    return true;
  }

  allocateCommonBuffer(adapter: AdapterObject, request: CommonBufferRequest): CommonBuffer | undefined {
    const alignment = request.largePage ? LARGE_PAGE_SIZE / PAGE_SIZE : 1;
    const pages = Math.ceil(Math.ceil(request.length / PAGE_SIZE) / alignment) * alignment;
    const low = request.minimumLogical;
    const high = Math.min(request.maximumLogical, adapter.capabilities.addressLimit, this.memory.limit - 1);
    // Highest 4 GiB window first, so no buffer crosses a 4 GiB boundary and low memory is spared.
    for (let window = Math.floor(high / FOUR_GIB); window >= Math.floor(low / FOUR_GIB); window--) {
      const minAddress = Math.max(low, window * FOUR_GIB);
      const maxAddress = Math.min(high, (window + 1) * FOUR_GIB - 1);
      if (maxAddress - minAddress + 1 < pages * PAGE_SIZE) continue;
      let va: number;
      try {
        va = this.kernel.allocateContiguous(pages * PAGE_SIZE, {
          owner: this.commonBufferOwner,
          minAddress,
          maxAddress,
          alignmentFrames: alignment,
          tag: "HalC",
          cached: request.cacheEnabled,
        });
      } catch (error) {
        if (error instanceof PlatformError && error.code === "no-memory") continue;
        throw error;
      }
      const buffer: DirectCommonBuffer = {
        adapter,
        virtualAddress: va,
        logicalAddress: this.kernel.physicalAddress(va),
        length: request.length,
        cacheEnabled: request.cacheEnabled,
        kind: "contiguous",
        pages,
      };
      this.commonBuffers.set(va, buffer);
      this.announceCommonBuffer(buffer, "map");
      return buffer;
    }
    return undefined;
  }

  freeCommonBuffer(buffer: CommonBuffer): void {
    const known = this.commonBuffers.get(buffer.virtualAddress);
    if (known === undefined || known.adapter !== buffer.adapter) {
      throw new PlatformError(
        "bad-handle",
        `${formatAddress(buffer.virtualAddress)} is not a common buffer of this path`,
      );
    }
    if (known.kind === "contiguous") this.kernel.free(known.virtualAddress);
    this.commonBuffers.delete(known.virtualAddress);
    this.announceCommonBuffer(known, "unmap");
  }

  createCommonBufferFromMdl(
    adapter: AdapterObject,
    mdl: Mdl,
    request: MdlCommonBufferRequest,
  ): CommonBuffer | undefined {
    if (request.access !== "readwrite") {
      throw new PlatformError("out-of-range", "read-only and write-only common buffers need DMA remapping");
    }
    if (mdl.systemVa === undefined)
      throw new PlatformError("bad-state", `MDL ${mdl.id} is not mapped in system space`);
    const firstPage = Math.floor((mdl.byteOffset + request.offset) / PAGE_SIZE);
    const pages = Math.ceil(request.length / PAGE_SIZE);
    const pfn = mdl.pfns[firstPage]!;
    for (let i = 1; i < pages; i++) {
      if (mdl.pfns[firstPage + i] !== pfn + i) {
        throw new PlatformError(
          "out-of-range",
          `MDL ${mdl.id} is not physically contiguous: no remapping to join it`,
        );
      }
    }
    const logicalAddress = pfn * PAGE_SIZE;
    const end = logicalAddress + pages * PAGE_SIZE - 1;
    const high = Math.min(request.maximumLogical, adapter.capabilities.addressLimit);
    if (
      logicalAddress < request.minimumLogical ||
      end > high ||
      Math.floor(logicalAddress / FOUR_GIB) !== Math.floor(end / FOUR_GIB)
    ) {
      throw new PlatformError(
        "out-of-range",
        `MDL ${mdl.id} pages ${formatAddress(logicalAddress)}-${formatAddress(end)} are outside ${formatAddress(request.minimumLogical)}-${formatAddress(high)} or cross 4 GiB`,
      );
    }
    const buffer: DirectCommonBuffer = {
      adapter,
      virtualAddress: mdl.systemVa + request.offset,
      logicalAddress,
      length: request.length,
      cacheEnabled: true,
      kind: "mdl",
      pages,
    };
    if (this.commonBuffers.has(buffer.virtualAddress)) {
      throw new PlatformError(
        "already-mapped",
        `${formatAddress(buffer.virtualAddress)} is already a common buffer`,
      );
    }
    this.commonBuffers.set(buffer.virtualAddress, buffer);
    this.announceCommonBuffer(buffer, "map");
    return buffer;
  }

  resources(): MappingResources {
    let mapRegisters = 0;
    for (const file of this.files) mapRegisters += file.count;
    let bouncePages = 0;
    for (const pool of this.poolsByReach.values()) bouncePages += pool.pagesInUse;
    return { mapRegisters, iovaPages: 0, bouncePages, commonBuffers: this.commonBuffers.size };
  }

  private needsRegisters(scatterGather: boolean, addressLimit: number): boolean {
    return !scatterGather || addressLimit < this.memory.limit - 1;
  }

  private stateOf(adapter: AdapterObject): DirectAdapterState {
    const state = adapter.mapping as DirectAdapterState | undefined;
    if (state === undefined)
      throw new PlatformError("bad-state", `adapter ${adapter.id} was not opened by DirectMapping`);
    return state;
  }

  private file(file: MapRegisterFile): DirectMapRegisterFile {
    if (!(file instanceof DirectMapRegisterFile) || !this.files.has(file)) {
      throw new PlatformError(
        file instanceof DirectMapRegisterFile && file.released ? "double-free" : "bad-handle",
        "not a live map register grant of the bounce path",
      );
    }
    return file;
  }

  /** The pool for devices reaching `addressLimit`, made on first need. */
  private pool(addressLimit: number): BouncePool {
    const reach =
      addressLimit >= REACH_32
        ? REACH_32
        : addressLimit >= REACH_24
          ? REACH_24
          : Math.floor((addressLimit + 1) / PAGE_SIZE) * PAGE_SIZE - 1;
    let pool = this.poolsByReach.get(reach);
    if (pool !== undefined) return pool;
    if (reach < PAGE_SIZE) {
      throw new PlatformError(
        "no-memory",
        `no map registers for a device reaching only ${formatAddress(addressLimit)}`,
      );
    }
    // The whole pool in one run; on a fragmented low zone, the largest power-of-two share of it.
    for (let pages = this.options.mapRegisterPoolPages; pages >= 1; pages = Math.floor(pages / 2)) {
      let pfns: number[];
      try {
        pfns = this.frames.allocate(pages, { owner: this.bounceOwner, contiguous: true, maxAddress: reach });
      } catch (error) {
        if (error instanceof PlatformError && error.code === "no-memory") continue;
        throw error;
      }
      pool = new BouncePool(
        pfns[0]! * PAGE_SIZE,
        pages,
        reach,
        pfns.map((pfn) => this.memory.frame(pfn)),
      );
      this.poolsByReach.set(reach, pool);
      return pool;
    }
    throw new PlatformError("no-memory", `no free page below ${formatAddress(reach)} for map registers`);
  }

  /**
   * Copies one piece between the MDL's pages and its bounce pages, a page at a time (a bounced
   * piece keeps its in-page offset, so the pages line up), straight into or out of the bounce
   * frames' own bytes. The driver's side is read or written by the CPU: through CpuMemory on a
   * non-coherent machine (copy-in sees its dirty lines, copy-out lands in its view), directly in
   * PhysicalMemory on a coherent one.
   */
  private bounce(
    adapter: AdapterObject,
    pool: BouncePool,
    mdl: Mdl,
    offset: number,
    length: number,
    bounceAddress: number,
    toBounce: boolean,
  ): void {
    const cpu: CpuSide = this.cpu.coherent ? this.memory : this.cpu;
    const pfns = mdl.pfns;
    let position = mdl.byteOffset + offset;
    const end = position + length;
    let register = (bounceAddress - pool.base - (bounceAddress % PAGE_SIZE)) / PAGE_SIZE;
    while (position < end) {
      const inPage = position % PAGE_SIZE;
      const bytes = Math.min(end - position, PAGE_SIZE - inPage);
      const physical = pfns[(position - inPage) / PAGE_SIZE]! * PAGE_SIZE + inPage;
      const view = pool.views[register]!;
      const bounce = bytes === PAGE_SIZE ? view : view.subarray(inPage, inPage + bytes);
      if (toBounce) cpu.read(physical, bounce);
      else cpu.write(physical, bounce);
      position += bytes;
      register++;
    }
    this.bounceBytes.value += length;
    (toBounce ? this.bounceInBytes : this.bounceOutBytes).value += length;
    if (this.events.hasListeners("dma.bounce")) {
      this.events.emit("dma.bounce", {
        adapter: adapter.id,
        requesterId: adapter.requesterId ?? -1,
        direction: toBounce ? "in" : "out",
        logicalAddress: bounceAddress,
        bytes: length,
      });
    }
  }

  private announceMap(
    adapter: AdapterObject,
    logical: number,
    length: number,
    pages: number,
    write: boolean,
    bounced: number,
  ): void {
    if (!this.events.hasListeners("dma.map")) return;
    this.events.emit("dma.map", {
      adapter: adapter.id,
      requesterId: adapter.requesterId ?? -1,
      iova: logical,
      length,
      pages,
      direction: direction(write),
      kind: "transfer",
      bounced,
    });
  }

  private announceUnmap(adapter: AdapterObject, piece: DirectPiece): void {
    if (!this.events.hasListeners("dma.unmap")) return;
    this.events.emit("dma.unmap", {
      adapter: adapter.id,
      requesterId: adapter.requesterId ?? -1,
      iova: piece.logicalAddress,
      length: piece.length,
      pages: piece.pages,
      kind: "transfer",
      policy: "strict",
    });
  }

  private announceCommonBuffer(buffer: DirectCommonBuffer, action: "map" | "unmap"): void {
    const kind = buffer.kind === "contiguous" ? "common-buffer" : "mdl-common-buffer";
    const requesterId = buffer.adapter.requesterId ?? -1;
    if (action === "map" && this.events.hasListeners("dma.map")) {
      this.events.emit("dma.map", {
        adapter: buffer.adapter.id,
        requesterId,
        iova: buffer.logicalAddress,
        length: buffer.length,
        pages: buffer.pages,
        direction: "bidirectional",
        kind,
        bounced: 0,
      });
    } else if (action === "unmap" && this.events.hasListeners("dma.unmap")) {
      this.events.emit("dma.unmap", {
        adapter: buffer.adapter.id,
        requesterId,
        iova: buffer.logicalAddress,
        length: buffer.length,
        pages: buffer.pages,
        kind,
        policy: "strict",
      });
    }
  }
}

/** The CPU's access to memory a bounce copy needs: CpuMemory, or PhysicalMemory when coherent. */
interface CpuSide {
  read(physical: number, into: Uint8Array): void;
  write(physical: number, from: Uint8Array): void;
}

function direction(writeToDevice: boolean): DmaDirection {
  return writeToDevice ? "to-device" : "from-device";
}

/**
 * Bytes from page-array `position` (at most `length`) that lie in one physically contiguous,
 * reachable run not crossing a 4 GiB boundary. The first page is taken as it is.
 */
function directRun(pfns: readonly number[], position: number, length: number, reach: number): number {
  const end = position + length;
  let page = Math.floor(position / PAGE_SIZE);
  let runEnd = Math.min(end, (page + 1) * PAGE_SIZE);
  while (runEnd < end) {
    const next = pfns[page + 1]!;
    if (
      next !== pfns[page]! + 1 ||
      (next * PAGE_SIZE) % FOUR_GIB === 0 ||
      next * PAGE_SIZE + PAGE_SIZE - 1 > reach
    )
      break;
    page++;
    runEnd = Math.min(end, (page + 1) * PAGE_SIZE);
  }
  return runEnd - position;
}

/** Bytes from `position` (at most `length`) whose pages all lie beyond `reach`: the run to bounce. */
function unreachableRun(pfns: readonly number[], position: number, length: number, reach: number): number {
  const end = position + length;
  let page = Math.floor(position / PAGE_SIZE);
  let runEnd = Math.min(end, (page + 1) * PAGE_SIZE);
  while (runEnd < end && pfns[page + 1]! * PAGE_SIZE + PAGE_SIZE - 1 > reach) {
    page++;
    runEnd = Math.min(end, (page + 1) * PAGE_SIZE);
  }
  return runEnd - position;
}
