/**
 * The seam between the HAL's generic machinery (IoGetDmaAdapter, wait queues, scatter/gather
 * building, statuses, IRQL checks) and the two ways a logical address can be made:
 *
 * - DirectMapping: no remapping (IOMMU off, or a passthrough domain). Logical = physical; map
 *   registers are bounce pages below the device's reach (ReactOS/NT "map registers").
 * - RemapMapping: strict or lazy remapping. Map registers are IOVA windows in the adapter's
 *   domain; nothing is copied.
 *
 * Like Linux's dma_map_ops behind dma-mapping.c: the dispatcher validates and queues, the strategy
 * only maps. A strategy never calls back into the dispatcher.
 */
import type { Mdl } from "../platform/mdl.js";
import type { AdapterObject } from "./adapter-object.js";

/** A grant of map registers (what MapRegisterBase points at). Strategy-specific subclasses. */
export interface MapRegisterFile {
  readonly adapter: AdapterObject;
  /** Registers granted. */
  readonly count: number;
  /** Bytes mapped since the last flush (the verifier's "bytes mapped since last flush"). */
  readonly bytesMapped: number;
}

export interface MappedPiece {
  readonly logicalAddress: number;
  readonly length: number;
}

export interface CommonBufferRequest {
  readonly length: number;
  /** Lowest acceptable logical address (AllocateCommonBufferWithBounds), inclusive. */
  readonly minimumLogical: number;
  /** Highest acceptable logical address, inclusive (already clipped to the device's reach). */
  readonly maximumLogical: number;
  readonly cacheEnabled: boolean;
  /** DOMAIN_COMMON_BUFFER_LARGE_PAGE: 2 MiB granularity. */
  readonly largePage: boolean;
}

export interface MdlCommonBufferRequest {
  /** Byte offset and length of the page-aligned sub-section of the MDL to use. */
  readonly offset: number;
  readonly length: number;
  readonly minimumLogical: number;
  readonly maximumLogical: number;
  /** Device access: read-only and write-only need remapping. */
  readonly access: "read" | "write" | "readwrite";
}

export interface CommonBuffer {
  readonly adapter: AdapterObject;
  readonly virtualAddress: number;
  readonly logicalAddress: number;
  /** Bytes asked for. */
  readonly length: number;
  readonly cacheEnabled: boolean;
}

export interface MappingResources {
  /** Map registers currently granted (bounce pages or IOVA window pages). */
  readonly mapRegisters: number;
  /** IOVA pages allocated, including those waiting in a lazy flush queue. */
  readonly iovaPages: number;
  /** Bounce pages in use. */
  readonly bouncePages: number;
  readonly commonBuffers: number;
}

export interface DmaMappingStrategy {
  readonly remapping: boolean;
  /** Called by IoGetDmaAdapter: set up per-adapter state (a domain, a bounce pool of its reach). */
  openAdapter(adapter: AdapterObject): void;
  /** Called by PutDmaAdapter once nothing is outstanding. */
  closeAdapter(adapter: AdapterObject): void;
  /** False when the device reaches every page without help: MapRegisterBase is NULL. */
  needsMapRegisters(adapter: AdapterObject): boolean;
  /** Grants `count` registers now, or undefined when they are not free (the caller queues, FIFO). */
  tryAllocateMapRegisters(adapter: AdapterObject, count: number): MapRegisterFile | undefined;
  freeMapRegisters(file: MapRegisterFile): void;
  /**
   * Maps one piece of `mdl` starting at `currentVa` (MapTransfer semantics, section 3 of the
   * reference): copy-in for writes to the device when bouncing. A scatter/gather adapter may get
   * less than `length` (one contiguous logical run); others always get all of it.
   * `file` is undefined when needsMapRegisters is false.
   */
  mapTransfer(
    adapter: AdapterObject,
    file: MapRegisterFile | undefined,
    mdl: Mdl,
    currentVa: number,
    length: number,
    writeToDevice: boolean,
  ): MappedPiece;
  /**
   * Ends the transfer of every piece mapped in [currentVa, currentVa + length) since the last
   * flush: copy-out of bounced pieces for reads, unmap and invalidation by policy when remapping.
   */
  flushAdapterBuffers(
    adapter: AdapterObject,
    file: MapRegisterFile | undefined,
    mdl: Mdl,
    currentVa: number,
    length: number,
    writeToDevice: boolean,
  ): boolean;
  /** Undefined when no memory satisfies the request. */
  allocateCommonBuffer(adapter: AdapterObject, request: CommonBufferRequest): CommonBuffer | undefined;
  freeCommonBuffer(buffer: CommonBuffer): void;
  /**
   * CreateCommonBufferFromMdl: makes a driver-owned, locked, page-aligned MDL range a common
   * buffer. Direct mapping needs it physically contiguous and reachable; remapping maps it with
   * the requested access. Undefined when that is impossible. The driver keeps owning the MDL.
   */
  createCommonBufferFromMdl(
    adapter: AdapterObject,
    mdl: Mdl,
    request: MdlCommonBufferRequest,
  ): CommonBuffer | undefined;
  resources(): MappingResources;
}
