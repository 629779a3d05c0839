/**
 * One channel of the DMA engine, as its driver runs it: a descriptor ring in a common buffer, a
 * backlog of copies waiting for ring space, and the completion path. It is the driver's
 * "direct-call interface" (what IRP_MN_QUERY_INTERFACE hands a kernel client on Windows, what
 * dmaengine's prep/submit/issue_pending is on Linux): a kernel component calls `submitCopy`, and
 * the completion routine runs at DISPATCH_LEVEL once the copy is over.
 *
 * A copy, step by step (WDK "Using Scatter/Gather DMA"):
 * 1. an MDL for each buffer (IoAllocateMdl + MmBuildMdlForNonPagedPool: the buffers must be
 *    nonpaged kernel memory, as an async memcpy's are), KeFlushIoBuffers for both;
 * 2. GetScatterGatherList for the source (WriteToDevice = TRUE: the engine reads it) and the
 *    destination (FALSE), one pair per segment of at most the adapter's MaximumLength. The lists
 *    hold device-logical addresses: IOVAs when remapping is on, so the engine's DMA goes through
 *    the IOMMU like any other device's;
 * 3. the two lists are merged into descriptors (a descriptor ends where a source or destination
 *    element ends, or at the chip's MAX_TRANSFER), written into the ring, and TAIL is rung;
 * 4. the interrupt's DPC reclaims descriptors whose STATUS says DONE; when a copy's last one is
 *    done, its lists go back (PutScatterGatherList: the mappings end), its MDLs are freed and
 *    the completion routine runs with STATUS_SUCCESS.
 * Only the last descriptor of a copy asks for an interrupt, and the last one written when the
 * ring fills, so the DPC always runs when the ring drains. A channel that halts fails the copy
 * at its HEAD with STATUS_IO_DEVICE_ERROR; the channel is reset and the copies behind it are
 * written again from their first unfinished descriptor.
 */
import {
  type DEVICE_OBJECT,
  DISPATCH_LEVEL,
  type DMA_ADAPTER,
  type Kernel,
  KSPIN_LOCK,
  type MDL,
  NT_SUCCESS,
  type NTSTATUS,
  PAGE_SIZE,
  type PVOID,
  type SCATTER_GATHER_LIST,
  STATUS_CANCELLED,
  STATUS_DEVICE_NOT_READY,
  STATUS_INVALID_PARAMETER,
  STATUS_IO_DEVICE_ERROR,
  STATUS_PENDING,
  STATUS_SUCCESS,
} from "../../src/ddi/index.js";
import {
  DMAE_CH_CONTROL,
  DMAE_CH_RING_BASE_HIGH,
  DMAE_CH_RING_BASE_LOW,
  DMAE_CH_RING_SIZE,
  DMAE_CH_STATUS,
  DMAE_CH_TAIL,
  DMAE_CHANNEL_BASE,
  DMAE_CHANNEL_STRIDE,
  DMAE_CONTROL_ENABLE,
  DMAE_CONTROL_INTERRUPT_ENABLE,
  DMAE_CONTROL_RESET,
  DMAE_DESC_CONTROL,
  DMAE_DESC_CONTROL_INTERRUPT,
  DMAE_DESC_COOKIE,
  DMAE_DESC_DESTINATION,
  DMAE_DESC_LENGTH,
  DMAE_DESC_SIZE,
  DMAE_DESC_SOURCE,
  DMAE_DESC_STATUS,
  DMAE_DESC_STATUS_DONE,
  DMAE_STATUS_HALTED,
} from "./dma-engine-hw.js";

/** Runs at DISPATCH_LEVEL, exactly once per copy `submitCopy` accepted (STATUS_PENDING). */
export type DmaCopyCompletion = (status: NTSTATUS, context: unknown) => void;

/** Descriptors per channel ring (one 2 KiB common buffer). */
export const RING_DESCRIPTORS = 64;

/** What a channel uses of the device it belongs to. */
export interface ChannelHost {
  readonly kernel: Kernel;
  readonly adapter: DMA_ADAPTER;
  readonly deviceObject: DEVICE_OBJECT;
  /** System address of BAR 0 (MmMapIoSpace). */
  readonly registers: PVOID;
  /** The chip's MAX_TRANSFER: the most bytes one descriptor moves. */
  readonly maxTransfer: number;
  /** The most bytes mapped by one pair of scatter/gather lists. */
  readonly segmentBytes: number;
}

/** The ring's common buffer. */
export interface RingBuffer {
  readonly VirtualAddress: PVOID;
  readonly LogicalAddress: number;
  readonly Length: number;
}

export interface DmaEngineChannelStatistics {
  /** Copies that completed, with any status. */
  copies: number;
  failures: number;
  bytes: number;
  descriptors: number;
  /** DPC passes that found work on this channel. */
  services: number;
}

interface Segment {
  source: SCATTER_GATHER_LIST | undefined;
  destination: SCATTER_GATHER_LIST | undefined;
}

interface Copy {
  readonly id: number;
  readonly length: number;
  readonly sourceMdl: MDL;
  readonly destinationMdl: MDL;
  readonly completion: DmaCopyCompletion;
  readonly context: unknown;
  readonly segments: Segment[];
  /** GetScatterGatherList calls whose list has not arrived yet. */
  listsPending: number;
  /** Still issuing GetScatterGatherList calls (their callbacks may run inside the call). */
  issuing: boolean;
  /** The first failure, STATUS_SUCCESS while none. */
  status: NTSTATUS;
  readonly sources: number[];
  readonly destinations: number[];
  readonly lengths: number[];
  /** Descriptors written to the ring, and those the chip has completed. */
  written: number;
  done: number;
}

const TWO_POW_32 = 2 ** 32;

export class DmaEngineChannel {
  /** "\\Device\\DmaEngine0 ch1". */
  readonly name: string;
  readonly index: number;
  readonly stats: DmaEngineChannelStatistics = {
    copies: 0,
    failures: 0,
    bytes: 0,
    descriptors: 0,
    services: 0,
  };
  readonly #host: ChannelHost;
  readonly #ring: RingBuffer;
  readonly #lock = new KSPIN_LOCK();
  readonly #base: PVOID;
  /** The copy whose descriptor sits in each ring slot. */
  readonly #slots: (Copy | undefined)[] = new Array<Copy | undefined>(RING_DESCRIPTORS).fill(undefined);
  /** Copies with descriptors not yet completed, oldest first. */
  readonly #queue: Copy[] = [];
  readonly #descriptor = new Uint8Array(DMAE_DESC_SIZE);
  readonly #view = new DataView(this.#descriptor.buffer);
  #nextToUse = 0;
  #nextToClean = 0;
  #free = RING_DESCRIPTORS - 1;
  #outstanding = 0;
  #running = false;
  #nextCopyId = 1;
  /** Describes the ring, for KeFlushIoBuffers; while the channel runs. */
  #ringMdl: MDL | undefined;

  constructor(host: ChannelHost, deviceName: string, index: number, ring: RingBuffer) {
    this.#host = host;
    this.index = index;
    this.name = `${deviceName} ch${index}`;
    this.#ring = ring;
    this.#base = host.registers + DMAE_CHANNEL_BASE + index * DMAE_CHANNEL_STRIDE;
    host.kernel.KeInitializeSpinLock(this.#lock);
  }

  /** Copies accepted and not yet completed: 0 means the channel is idle. */
  get outstanding(): number {
    return this.#outstanding;
  }

  get running(): boolean {
    return this.#running;
  }

  get ring(): RingBuffer {
    return this.#ring;
  }

  /** Programs the ring and enables the channel with its interrupt; false if no MDL could be had. */
  start(): boolean {
    const k = this.#host.kernel;
    // The model's CPU caches common buffers too: on a non-coherent machine the ring's lines are
    // written back after the descriptors are written and dropped before the statuses are read.
    const ringMdl = k.IoAllocateMdl(this.#ring.VirtualAddress, this.#ring.Length, false, false, undefined);
    if (ringMdl === undefined) return false;
    k.MmBuildMdlForNonPagedPool(ringMdl);
    this.#ringMdl = ringMdl;
    this.#write(DMAE_CH_CONTROL, DMAE_CONTROL_RESET);
    this.#write(DMAE_CH_RING_BASE_LOW, this.#ring.LogicalAddress % TWO_POW_32);
    this.#write(DMAE_CH_RING_BASE_HIGH, Math.floor(this.#ring.LogicalAddress / TWO_POW_32));
    this.#write(DMAE_CH_RING_SIZE, RING_DESCRIPTORS);
    this.#write(DMAE_CH_CONTROL, DMAE_CONTROL_ENABLE | DMAE_CONTROL_INTERRUPT_ENABLE);
    this.#running = true;
    return true;
  }

  /**
   * Starts copying `Length` bytes from `Source` to `Destination` (nonpaged kernel buffers),
   * IRQL <= DISPATCH_LEVEL. STATUS_PENDING: `Completion(status, Context)` runs once, at
   * DISPATCH_LEVEL, when the copy is over. Any other status: nothing was started and the
   * completion never runs (STATUS_INVALID_PARAMETER for a zero or too long Length,
   * STATUS_DEVICE_NOT_READY when the channel is stopped, a GetScatterGatherList failure).
   */
  submitCopy(
    Destination: PVOID,
    Source: PVOID,
    Length: number,
    Completion: DmaCopyCompletion,
    Context: unknown,
  ): NTSTATUS {
    const k = this.#host.kernel;
    if (!this.#running) return STATUS_DEVICE_NOT_READY;
    if (!Number.isSafeInteger(Length) || Length <= 0 || typeof Completion !== "function") {
      return STATUS_INVALID_PARAMETER;
    }
    const sourceMdl = k.IoAllocateMdl(Source, Length, false, false, undefined);
    const destinationMdl = k.IoAllocateMdl(Destination, Length, false, false, undefined);
    if (sourceMdl === undefined || destinationMdl === undefined) {
      if (sourceMdl !== undefined) k.IoFreeMdl(sourceMdl);
      if (destinationMdl !== undefined) k.IoFreeMdl(destinationMdl);
      return STATUS_INVALID_PARAMETER;
    }
    k.MmBuildMdlForNonPagedPool(sourceMdl);
    k.MmBuildMdlForNonPagedPool(destinationMdl);
    // The engine reads the source (write back dirty lines) and writes the destination (drop them).
    k.KeFlushIoBuffers(sourceMdl, false, true);
    k.KeFlushIoBuffers(destinationMdl, true, true);
    const segmentCount = Math.ceil(Length / this.#host.segmentBytes);
    const copy: Copy = {
      id: this.#nextCopyId++,
      length: Length,
      sourceMdl,
      destinationMdl,
      completion: Completion,
      context: Context,
      segments: Array.from({ length: segmentCount }, () => ({ source: undefined, destination: undefined })),
      listsPending: 0,
      issuing: true,
      status: STATUS_SUCCESS,
      sources: [],
      destinations: [],
      lengths: [],
      written: 0,
      done: 0,
    };
    this.#outstanding++;
    const old = k.KeRaiseIrql(DISPATCH_LEVEL);
    for (let segment = 0; segment < segmentCount && NT_SUCCESS(copy.status); segment++) {
      const offset = segment * this.#host.segmentBytes;
      const length = Math.min(this.#host.segmentBytes, Length - offset);
      this.#requestList(copy, segment, "source", Source + offset, length);
      if (NT_SUCCESS(copy.status))
        this.#requestList(copy, segment, "destination", Destination + offset, length);
    }
    copy.issuing = false;
    const settledNow = copy.listsPending === 0;
    const failedNow = settledNow && !NT_SUCCESS(copy.status);
    if (failedNow) this.#release(copy);
    else if (settledNow) this.#listsSettled(copy);
    k.KeLowerIrql(old);
    return failedNow ? copy.status : STATUS_PENDING;
  }

  /** From the device's DPC: reclaim finished descriptors, recover from a halt, refill the ring. */
  service(): void {
    const k = this.#host.kernel;
    k.KeAcquireSpinLockAtDpcLevel(this.#lock);
    const finished = this.#reclaim();
    if ((this.#read(DMAE_CH_STATUS) & DMAE_STATUS_HALTED) !== 0) this.#recover(finished);
    this.#fill();
    k.KeReleaseSpinLockFromDpcLevel(this.#lock);
    if (finished.length > 0) this.stats.services++;
    for (const { copy, status } of finished) this.#finish(copy, status);
  }

  /** Stops the channel: the chip forgets its ring, and every copy in it completes as cancelled. */
  stop(): void {
    if (!this.#running) return;
    const k = this.#host.kernel;
    this.#running = false;
    this.#write(DMAE_CH_CONTROL, DMAE_CONTROL_RESET);
    const old = k.KeRaiseIrql(DISPATCH_LEVEL);
    k.KeAcquireSpinLockAtDpcLevel(this.#lock);
    const cancelled = this.#queue.splice(0);
    this.#slots.fill(undefined);
    this.#nextToUse = 0;
    this.#nextToClean = 0;
    this.#free = RING_DESCRIPTORS - 1;
    k.KeReleaseSpinLockFromDpcLevel(this.#lock);
    for (const copy of cancelled) this.#finish(copy, STATUS_CANCELLED);
    k.KeLowerIrql(old);
    if (this.#ringMdl !== undefined) k.IoFreeMdl(this.#ringMdl);
    this.#ringMdl = undefined;
  }

  #requestList(copy: Copy, segment: number, which: keyof Segment, va: PVOID, length: number): void {
    const { adapter, deviceObject } = this.#host;
    const mdl = which === "source" ? copy.sourceMdl : copy.destinationMdl;
    copy.listsPending++;
    const status = adapter.DmaOperations.GetScatterGatherList(
      adapter,
      deviceObject,
      mdl,
      va,
      length,
      (_device, _irp, list) => {
        copy.segments[segment]![which] = list;
        copy.listsPending--;
        if (!copy.issuing && copy.listsPending === 0) this.#listsSettled(copy);
      },
      undefined,
      which === "source",
    );
    if (!NT_SUCCESS(status)) {
      copy.listsPending--;
      copy.status = status;
    }
  }

  /** Every list of the copy is in: queue its descriptors, or give up if a list was refused. */
  #listsSettled(copy: Copy): void {
    if (!NT_SUCCESS(copy.status)) {
      this.#finish(copy, copy.status);
      return;
    }
    for (const segment of copy.segments) this.#describe(copy, segment.source!, segment.destination!);
    const k = this.#host.kernel;
    k.KeAcquireSpinLockAtDpcLevel(this.#lock);
    this.#queue.push(copy);
    this.#fill();
    k.KeReleaseSpinLockFromDpcLevel(this.#lock);
  }

  /** Merges a source and a destination list of equal length into descriptors. */
  #describe(copy: Copy, source: SCATTER_GATHER_LIST, destination: SCATTER_GATHER_LIST): void {
    const max = this.#host.maxTransfer;
    let s = 0;
    let d = 0;
    let sOffset = 0;
    let dOffset = 0;
    while (s < source.NumberOfElements && d < destination.NumberOfElements) {
      const se = source.Elements[s]!;
      const de = destination.Elements[d]!;
      const length = Math.min(se.Length - sOffset, de.Length - dOffset, max);
      copy.sources.push(se.Address + sOffset);
      copy.destinations.push(de.Address + dOffset);
      copy.lengths.push(length);
      sOffset += length;
      dOffset += length;
      if (sOffset === se.Length) {
        s++;
        sOffset = 0;
      }
      if (dOffset === de.Length) {
        d++;
        dOffset = 0;
      }
    }
  }

  /** Writes backlogged descriptors into free ring slots, then rings the doorbell. Lock held. */
  #fill(): void {
    if (!this.#running) return;
    const k = this.#host.kernel;
    const view = this.#view;
    let last = -1;
    for (const copy of this.#queue) {
      while (copy.written < copy.lengths.length && this.#free > 0) {
        const i = copy.written;
        const slot = this.#nextToUse;
        this.#descriptor.fill(0);
        view.setUint32(DMAE_DESC_SOURCE, copy.sources[i]! % TWO_POW_32, true);
        view.setUint32(DMAE_DESC_SOURCE + 4, Math.floor(copy.sources[i]! / TWO_POW_32), true);
        view.setUint32(DMAE_DESC_DESTINATION, copy.destinations[i]! % TWO_POW_32, true);
        view.setUint32(DMAE_DESC_DESTINATION + 4, Math.floor(copy.destinations[i]! / TWO_POW_32), true);
        view.setUint32(DMAE_DESC_LENGTH, copy.lengths[i]!, true);
        view.setUint32(
          DMAE_DESC_CONTROL,
          i === copy.lengths.length - 1 ? DMAE_DESC_CONTROL_INTERRUPT : 0,
          true,
        );
        view.setUint32(DMAE_DESC_COOKIE, copy.id % TWO_POW_32, true);
        k.WriteMemory(this.#ring.VirtualAddress + slot * DMAE_DESC_SIZE, this.#descriptor);
        this.#slots[slot] = copy;
        this.#nextToUse = (slot + 1) % RING_DESCRIPTORS;
        this.#free--;
        copy.written++;
        last = slot;
      }
      if (this.#free === 0) break;
    }
    if (last < 0) return;
    // The last descriptor written asks for an interrupt too: if the ring filled in the middle of
    // a copy, nothing else would wake the DPC.
    const control = this.#ring.VirtualAddress + last * DMAE_DESC_SIZE + DMAE_DESC_CONTROL;
    view.setUint32(0, DMAE_DESC_CONTROL_INTERRUPT, true);
    k.WriteMemory(control, this.#descriptor.subarray(0, 4));
    k.KeFlushIoBuffers(this.#ringMdl!, false, true);
    this.#write(DMAE_CH_TAIL, this.#nextToUse);
  }

  /** Descriptors the chip marked DONE, in ring order; returns the copies they finished. Lock held. */
  #reclaim(): { copy: Copy; status: NTSTATUS }[] {
    const k = this.#host.kernel;
    const finished: { copy: Copy; status: NTSTATUS }[] = [];
    if (this.#ringMdl !== undefined) k.KeFlushIoBuffers(this.#ringMdl, true, true);
    for (;;) {
      const copy = this.#slots[this.#nextToClean];
      if (copy === undefined) break;
      const at = this.#ring.VirtualAddress + this.#nextToClean * DMAE_DESC_SIZE;
      const status = new DataView(k.ReadMemory(at + DMAE_DESC_STATUS, 4).buffer).getUint32(0, true);
      if ((status & DMAE_DESC_STATUS_DONE) === 0) break;
      this.#slots[this.#nextToClean] = undefined;
      this.#nextToClean = (this.#nextToClean + 1) % RING_DESCRIPTORS;
      this.#free++;
      copy.done++;
      this.stats.descriptors++;
      if (copy.done === copy.lengths.length) {
        this.#queue.splice(this.#queue.indexOf(copy), 1);
        finished.push({ copy, status: STATUS_SUCCESS });
      }
    }
    return finished;
  }

  /**
   * The chip halted at HEAD (= the next slot to clean): that copy fails; the channel is reset
   * and every other copy goes back to its first unfinished descriptor. Lock held.
   */
  #recover(finished: { copy: Copy; status: NTSTATUS }[]): void {
    const failed = this.#slots[this.#nextToClean];
    if (failed !== undefined) {
      this.#queue.splice(this.#queue.indexOf(failed), 1);
      finished.push({ copy: failed, status: STATUS_IO_DEVICE_ERROR });
    }
    for (const copy of this.#queue) copy.written = copy.done;
    this.#slots.fill(undefined);
    this.#nextToUse = 0;
    this.#nextToClean = 0;
    this.#free = RING_DESCRIPTORS - 1;
    this.#write(DMAE_CH_CONTROL, DMAE_CONTROL_RESET | DMAE_CONTROL_ENABLE | DMAE_CONTROL_INTERRUPT_ENABLE);
  }

  /** Lists back (the mappings end here), MDLs freed, then the client hears of it. DISPATCH_LEVEL. */
  #finish(copy: Copy, status: NTSTATUS): void {
    this.#release(copy);
    this.stats.copies++;
    if (NT_SUCCESS(status)) this.stats.bytes += copy.length;
    else this.stats.failures++;
    copy.completion(status, copy.context);
  }

  #release(copy: Copy): void {
    const k = this.#host.kernel;
    const { adapter } = this.#host;
    for (const segment of copy.segments) {
      if (segment.source !== undefined)
        adapter.DmaOperations.PutScatterGatherList(adapter, segment.source, true);
      if (segment.destination !== undefined) {
        adapter.DmaOperations.PutScatterGatherList(adapter, segment.destination, false);
      }
      segment.source = undefined;
      segment.destination = undefined;
    }
    k.IoFreeMdl(copy.sourceMdl);
    k.IoFreeMdl(copy.destinationMdl);
    this.#outstanding--;
  }

  #read(offset: number): number {
    return this.#host.kernel.READ_REGISTER_ULONG(this.#base + offset);
  }

  #write(offset: number, value: number): void {
    this.#host.kernel.WRITE_REGISTER_ULONG(this.#base + offset, value);
  }
}

/** Bytes a segment may cover so its list fits the adapter's map registers. */
export function segmentBytesFor(maximumLength: number, numberOfMapRegisters: number): number {
  const byRegisters = (numberOfMapRegisters - 1) * PAGE_SIZE;
  return Math.max(PAGE_SIZE, Math.min(maximumLength, byRegisters));
}
