/**
 * The verifier's books on one DMA adapter, kept apart from the HAL's (Driver Verifier keeps its
 * own per-adapter data too, which is what `!dma` prints): what the driver was given and has not
 * given back, the counters of allocations and frees, and what is mapped since the last flush.
 */
import type { AdapterObject } from "../hal/adapter-object.js";
import type { DMA_COMMON_BUFFER_VECTOR, MAP_REGISTER_BASE } from "../hal/wdm/dma-v3-types.js";
import type { SCATTER_GATHER_LIST } from "../hal/wdm/scatter-gather-list.js";
import { formatAddress } from "../platform/page.js";
import type { InFlightRange } from "./in-flight-index.js";
import type { AllocationSite } from "./verifier-events.js";
import type { VerifierMode } from "./verifier-options.js";

/** A logical (device) address range. */
export interface LogicalRange {
  readonly address: number;
  readonly length: number;
}

/** A piece MapTransfer or MapTransferEx mapped, until the flush that ends it. */
export interface MappedPiece extends InFlightRange {
  /** Map registers it takes: ADDRESS_AND_SIZE_TO_SPAN_PAGES of its range. */
  readonly registers: number;
  /** Where the device was told it is. */
  readonly logical: readonly LogicalRange[];
}

export type FileOwner = "channel" | "driver";

/** A MapRegisterBase the driver got (a "map register file" in Driver Verifier's words). */
export class VerifiedFile {
  /** Registers taken by the pieces mapped since the file was last emptied by flushes. */
  used = 0;
  bytesMapped = 0;
  /** Something was mapped with it at least once. */
  everMapped = false;
  readonly pieces: MappedPiece[] = [];

  constructor(
    /** A serial number: stands for MapRegisterBase in bug check parameters. */
    readonly id: number,
    readonly base: MAP_REGISTER_BASE | undefined,
    /** Registers granted; infinite for MapRegisterBase NULL (the adapter needs none). */
    readonly count: number,
    public owner: FileOwner,
    readonly stack: string,
  ) {}
}

/** A scatter/gather list handed to the driver and not yet put back. */
export interface VerifiedList {
  readonly id: number;
  readonly list: SCATTER_GATHER_LIST;
  /** Its MDL parts, as they sit in the in-flight index. */
  readonly ranges: readonly InFlightRange[];
  readonly writeToDevice: boolean;
  /** Map registers its grant holds (0 when the adapter needs none). */
  readonly registers: number;
  readonly stack: string;
}

/** A common buffer the driver got, fenced or not. */
export interface VerifiedCommonBuffer {
  readonly adapter: number;
  /** What the driver got. */
  readonly virtualAddress: number;
  readonly logicalAddress: number;
  readonly length: number;
  /** Guard pages around it (false for MDL-made, large-page and huge buffers). */
  readonly fenced: boolean;
  readonly stack: string;
}

/** A live common buffer vector: its element size, and the elements whose addresses the driver took. */
export interface VectorRecord {
  readonly elementSize: number;
  readonly stack: string;
  readonly elements: Map<number, LogicalRange>;
}

/** Who holds the adapter's channel: nobody, an AdapterControl routine running, or the driver (KeepObject). */
export type ChannelState = "idle" | "running" | "held";

export interface DmaCounters {
  allocated: number;
  freed: number;
}

export class AdapterLedger {
  released = false;
  readonly mapRegisters: DmaCounters = { allocated: 0, freed: 0 };
  readonly scatterGatherLists: DmaCounters = { allocated: 0, freed: 0 };
  readonly commonBuffers: DmaCounters = { allocated: 0, freed: 0 };
  readonly adapterChannels: DmaCounters = { allocated: 0, freed: 0 };
  readonly files = new Map<MAP_REGISTER_BASE, VerifiedFile>();
  readonly freedBases = new WeakSet<MAP_REGISTER_BASE>();
  /** The pieces mapped with MapRegisterBase NULL (a device that reaches all memory). */
  readonly unmappedFile: VerifiedFile;
  readonly lists = new Map<SCATTER_GATHER_LIST, VerifiedList>();
  readonly freedLists = new WeakSet<SCATTER_GATHER_LIST>();
  readonly buffers = new Map<number, VerifiedCommonBuffer>();
  /** VAs of common buffers freed (and not handed out again): a second free is 0x03. */
  readonly freedBuffers = new Set<number>();
  /** Live vectors, and the logical range of each element the driver looked up. */
  readonly vectors = new Map<DMA_COMMON_BUFFER_VECTOR, VectorRecord>();
  channel: ChannelState = "idle";
  /** Registers kept together with the channel (KeepObject). */
  channelFile: VerifiedFile | undefined = undefined;
  channelStack = "";
  /** AllocateAdapterChannel(Ex) requests queued and not yet granted. */
  pendingChannels = 0;

  constructor(
    readonly adapter: AdapterObject,
    readonly mode: VerifierMode,
    readonly driver: string,
    /** Where IoGetDmaAdapter was called. */
    readonly stack: string,
  ) {
    this.unmappedFile = new VerifiedFile(0, undefined, Number.POSITIVE_INFINITY, "driver", stack);
  }

  get id(): number {
    return this.adapter.id;
  }

  get requesterId(): number {
    return this.adapter.requesterId ?? -1;
  }

  /** "Bytes mapped since last flush", over every file of the adapter. */
  get bytesMappedSinceFlush(): number {
    let bytes = this.unmappedFile.bytesMapped;
    for (const file of this.files.values()) bytes += file.bytesMapped;
    return bytes;
  }

  /** Map registers the driver holds outside scatter/gather lists. */
  get mapRegistersHeld(): number {
    let registers = 0;
    for (const file of this.files.values()) registers += file.count;
    return registers;
  }

  /** Channels held or waiting. */
  get channelsOutstanding(): number {
    return (this.channel === "idle" ? 0 : 1) + this.pendingChannels;
  }

  /** Every file with mapped pieces, the NULL-base one included. */
  *mappedFiles(): Iterable<VerifiedFile> {
    if (this.unmappedFile.pieces.length > 0) yield this.unmappedFile;
    for (const file of this.files.values()) if (file.pieces.length > 0) yield file;
  }

  /** What the driver still holds, with where it got each thing. */
  outstanding(): AllocationSite[] {
    const sites: AllocationSite[] = [];
    for (const buffer of this.buffers.values()) {
      sites.push({
        kind: "common buffer",
        detail: `${buffer.length} bytes at ${formatAddress(buffer.virtualAddress)} (logical ${formatAddress(buffer.logicalAddress)})`,
        stack: buffer.stack,
      });
    }
    for (const vector of this.vectors.values()) {
      sites.push({
        kind: "common buffer vector",
        detail: `elements of ${vector.elementSize} bytes, ${vector.elements.size} looked up`,
        stack: vector.stack,
      });
    }
    if (this.channel !== "idle" || this.pendingChannels > 0) {
      sites.push({
        kind: "adapter channel",
        detail: this.channel === "idle" ? `${this.pendingChannels} queued` : this.channel,
        stack: this.channelStack,
      });
    }
    for (const file of this.files.values()) {
      sites.push({
        kind: "map registers",
        detail: `${file.count} registers (MapRegisterBase #${file.id}), ${file.pieces.length} pieces mapped`,
        stack: file.stack,
      });
    }
    for (const list of this.lists.values()) {
      sites.push({
        kind: "scatter/gather list",
        detail: `${list.list.NumberOfElements} elements, ${list.registers} map registers`,
        stack: list.stack,
      });
    }
    return sites;
  }
}
