/**
 * A memory-to-memory DMA engine with independent channels (the I/OAT / dmaengine shape, see
 * dma-engine-registers.ts and iommu-anchors §11): each channel executes copy descriptors from a
 * ring in host memory, in order, and writes each one's status back when it is done.
 *
 * A channel, once its doorbell (TAIL) moves past HEAD and it is enabled:
 * 1. after the device latency, fetches the descriptor at HEAD through the port;
 * 2. copies LENGTH bytes from SOURCE to DESTINATION through the port, in 64 KiB pieces through
 *    its own staging buffer (the engine's FIFO), so every byte goes through the IOMMU;
 * 3. after the bytes' transfer time, writes DONE into the descriptor's STATUS, advances HEAD,
 *    counts COMPLETED and, if the descriptor asked for it, sets the channel's bit in
 *    INTERRUPT_STATUS and raises the interrupt; then goes on with the next descriptor.
 * Channels run in parallel; each moves `bandwidth` bytes per second on its own.
 *
 * Errors halt the channel (I/OAT does the same): a failed fetch, read, write or write-back sets
 * DMA_ERROR, a bad LENGTH or ring setup sets DESCRIPTOR_ERROR; the failing descriptor gets
 * ERROR and a code in its STATUS when it can be written; ERROR_ADDRESS and ERROR_DESCRIPTOR say
 * where; the channel's interrupt bit is set. Only RESET restarts a halted channel. Bytes copied
 * before the failing piece stay copied.
 */
import type { DmaResult } from "../platform/dma-result.js";
import { checkLength, MiB } from "../platform/page.js";
import { PciDevice, type PciDeviceOptions } from "../platform/pci-device.js";
import { PlatformError } from "../platform/platform-error.js";
import { type DeviceDmaError, type DmaFailure, dmaRead, dmaWrite, joinAddress } from "./device-dma.js";
import {
  CHANNEL_BASE,
  CHANNEL_STRIDE,
  ChannelControl,
  ChannelRegister,
  ChannelStatus,
  DEFAULT_MAX_TRANSFER,
  DESCRIPTOR_ERROR_SHIFT,
  DESCRIPTOR_SIZE,
  Descriptor,
  DescriptorControl,
  DescriptorError,
  DescriptorStatus,
  DMA_ENGINE_VERSION,
  DmaEngineRegister,
  MAX_CHANNELS,
  MAX_RING_DESCRIPTORS,
  RING_ALIGNMENT,
} from "./dma-engine-registers.js";

export interface DmaEngineDeviceOptions extends Partial<PciDeviceOptions> {
  /** Channels, 1..8 (default 4). */
  readonly channels?: number;
  /** Most bytes one descriptor may move (default 1 MiB, at most 64 MiB). */
  readonly maxTransfer?: number;
  readonly name?: string;
}

/** Host-side counts of one channel, for tests and reports. */
export interface DmaEngineChannelStats {
  descriptors: number;
  bytes: number;
  errors: number;
  interrupts: number;
}

/** 0x1234: the unofficial vendor id emulators give made-up devices. */
export const DMA_ENGINE_VENDOR_ID = 0x1234;
export const DMA_ENGINE_DEVICE_ID = 0x0de0;
/** PCI class 08h/80h/00h: other system peripheral (what I/OAT reports). */
export const DMA_ENGINE_CLASS_CODE = 0x088000;
export const DMA_ENGINE_BAR_SIZE = 4096;
/** Default per-channel rate: 4 GB/s (a few I/OAT channels' worth). */
const DEFAULT_BANDWIDTH = 4_000_000_000;
/** Default descriptor fetch latency: an on-chip engine starts faster than a PCIe card (500 ns). */
const DEFAULT_LATENCY_NS = 500;
const DEFAULT_CHANNELS = 4;
const MAX_MAX_TRANSFER = 64 * MiB;
/** The engine's internal FIFO: data moves through it in pieces of this size. */
const STAGING_BYTES = 64 * 1024;
const TWO_POW_32 = 2 ** 32;

interface Channel {
  readonly index: number;
  ringBase: number;
  ringSize: number;
  head: number;
  tail: number;
  control: number;
  status: number;
  completed: number;
  errorAddress: number;
  errorDescriptor: number;
  /** Bumped by reset and unplug: scheduled work of an older generation does nothing. */
  generation: number;
  readonly staging: Uint8Array;
  readonly descriptor: Uint8Array;
  readonly view: DataView;
  readonly stats: DmaEngineChannelStats;
}

export class DmaEngineDevice extends PciDevice {
  readonly channelCount: number;
  readonly maxTransfer: number;
  readonly #channels: Channel[];
  readonly #dmaErrors: DeviceDmaError[] = [];
  /** The STATUS word of a write-back, reused. */
  readonly #statusWord = new Uint8Array(4);
  readonly #statusView = new DataView(this.#statusWord.buffer);
  #interruptStatus = 0;

  constructor(options: DmaEngineDeviceOptions = {}) {
    super(
      {
        name: options.name ?? "DMA engine",
        vendorId: DMA_ENGINE_VENDOR_ID,
        deviceId: DMA_ENGINE_DEVICE_ID,
        classCode: DMA_ENGINE_CLASS_CODE,
      },
      {
        barSize: DMA_ENGINE_BAR_SIZE,
        latencyNs: options.latencyNs ?? DEFAULT_LATENCY_NS,
        bandwidth: options.bandwidth ?? DEFAULT_BANDWIDTH,
      },
    );
    const count = options.channels ?? DEFAULT_CHANNELS;
    if (!Number.isInteger(count) || count < 1 || count > MAX_CHANNELS) {
      throw new PlatformError(
        "out-of-range",
        `channel count ${String(count)} is not an integer in [1, ${MAX_CHANNELS}]`,
      );
    }
    this.maxTransfer = checkLength(
      options.maxTransfer ?? DEFAULT_MAX_TRANSFER,
      "max transfer",
      MAX_MAX_TRANSFER,
    );
    if (this.maxTransfer === 0)
      throw new PlatformError("bad-length", "max transfer must be at least one byte");
    this.channelCount = count;
    this.#channels = Array.from({ length: count }, (_, index) => {
      const descriptor = new Uint8Array(DESCRIPTOR_SIZE);
      return {
        index,
        ringBase: 0,
        ringSize: 0,
        head: 0,
        tail: 0,
        control: 0,
        status: 0,
        completed: 0,
        errorAddress: 0,
        errorDescriptor: 0,
        generation: 0,
        staging: new Uint8Array(STAGING_BYTES),
        descriptor,
        view: new DataView(descriptor.buffer),
        stats: { descriptors: 0, bytes: 0, errors: 0, interrupts: 0 },
      };
    });
  }

  /** Every DMA failure this device met, oldest first. */
  get dmaErrors(): readonly DeviceDmaError[] {
    return this.#dmaErrors;
  }

  /** Host-side counts of channel `index`. */
  channelStats(index: number): Readonly<DmaEngineChannelStats> {
    return this.#channel(index).stats;
  }

  /** Host-side counts summed over the channels. */
  get stats(): Readonly<DmaEngineChannelStats> {
    const total: DmaEngineChannelStats = { descriptors: 0, bytes: 0, errors: 0, interrupts: 0 };
    for (const { stats } of this.#channels) {
      total.descriptors += stats.descriptors;
      total.bytes += stats.bytes;
      total.errors += stats.errors;
      total.interrupts += stats.interrupts;
    }
    return total;
  }

  protected override registerValue(offset: number): number {
    if (offset < CHANNEL_BASE) {
      switch (offset) {
        case DmaEngineRegister.version:
          return DMA_ENGINE_VERSION;
        case DmaEngineRegister.channelCount:
          return this.channelCount;
        case DmaEngineRegister.maxTransfer:
          return this.maxTransfer;
        case DmaEngineRegister.interruptStatus:
          return this.#interruptStatus;
        default:
          return 0;
      }
    }
    const channel = this.#channelAt(offset);
    if (channel === undefined) return 0;
    switch ((offset - CHANNEL_BASE) % CHANNEL_STRIDE) {
      case ChannelRegister.ringBaseLow:
        return channel.ringBase % TWO_POW_32;
      case ChannelRegister.ringBaseHigh:
        return Math.floor(channel.ringBase / TWO_POW_32);
      case ChannelRegister.ringSize:
        return channel.ringSize;
      case ChannelRegister.head:
        return channel.head;
      case ChannelRegister.tail:
        return channel.tail;
      case ChannelRegister.control:
        return channel.control;
      case ChannelRegister.status:
        return channel.status;
      case ChannelRegister.completed:
        return channel.completed;
      case ChannelRegister.errorAddressLow:
        return channel.errorAddress % TWO_POW_32;
      case ChannelRegister.errorAddressHigh:
        return Math.floor(channel.errorAddress / TWO_POW_32);
      case ChannelRegister.errorDescriptor:
        return channel.errorDescriptor;
      default:
        return 0;
    }
  }

  protected override onRegisterWrite(offset: number, value: number): void {
    if (offset === DmaEngineRegister.interruptStatus) {
      this.#interruptStatus &= ~value;
      return;
    }
    const channel = this.#channelAt(offset);
    if (channel === undefined) return;
    switch ((offset - CHANNEL_BASE) % CHANNEL_STRIDE) {
      case ChannelRegister.ringBaseLow:
        channel.ringBase = joinAddress(value, Math.floor(channel.ringBase / TWO_POW_32));
        return;
      case ChannelRegister.ringBaseHigh:
        channel.ringBase = joinAddress(channel.ringBase % TWO_POW_32, value);
        return;
      case ChannelRegister.ringSize:
        channel.ringSize = value;
        return;
      case ChannelRegister.tail:
        channel.tail = value;
        this.#kick(channel);
        return;
      case ChannelRegister.control:
        this.#writeControl(channel, value);
        return;
      default:
        return;
    }
  }

  protected override onDetach(): void {
    for (const channel of this.#channels) {
      channel.generation++;
      channel.status &= ~ChannelStatus.active;
    }
  }

  #channel(index: number): Channel {
    const channel = Number.isInteger(index) ? this.#channels[index] : undefined;
    if (channel === undefined) {
      throw new PlatformError("out-of-range", `${this.name} has no channel ${String(index)}`);
    }
    return channel;
  }

  #channelAt(offset: number): Channel | undefined {
    return this.#channels[Math.floor((offset - CHANNEL_BASE) / CHANNEL_STRIDE)];
  }

  #writeControl(channel: Channel, value: number): void {
    if ((value & ChannelControl.reset) !== 0) {
      channel.generation++;
      channel.head = 0;
      channel.tail = 0;
      channel.status = 0;
      channel.completed = 0;
      channel.errorAddress = 0;
      channel.errorDescriptor = 0;
      this.#interruptStatus &= ~(1 << channel.index);
    }
    channel.control = value & (ChannelControl.enable | ChannelControl.interruptEnable);
    this.#kick(channel);
  }

  /** Starts the next descriptor if the channel may and has one. */
  #kick(channel: Channel): void {
    const idle = (channel.status & (ChannelStatus.active | ChannelStatus.halted)) === 0;
    if (!idle || (channel.control & ChannelControl.enable) === 0 || channel.head === channel.tail) return;
    if (!this.#ringValid(channel)) {
      this.#halt(channel, ChannelStatus.descriptorError, channel.ringBase);
      return;
    }
    channel.status |= ChannelStatus.active;
    const generation = channel.generation;
    this.after(this.latencyNs, () => this.#execute(channel, generation), `${this.name} ch${channel.index}`);
  }

  #ringValid(channel: Channel): boolean {
    const size = channel.ringSize;
    return (
      size >= 2 &&
      size <= MAX_RING_DESCRIPTORS &&
      (size & (size - 1)) === 0 &&
      channel.tail < size &&
      channel.ringBase % RING_ALIGNMENT === 0
    );
  }

  /** Fetches and executes the descriptor at HEAD; completion follows after the bytes' time. */
  #execute(channel: Channel, generation: number): void {
    if (generation !== channel.generation) return;
    const at = channel.ringBase + channel.head * DESCRIPTOR_SIZE;
    const fetched = dmaRead(this.port, at, channel.descriptor);
    if (!fetched.ok) {
      this.#dmaFailed(channel, "descriptor fetch", fetched);
      return;
    }
    const view = channel.view;
    const source = joinAddress(
      view.getUint32(Descriptor.source, true),
      view.getUint32(Descriptor.source + 4, true),
    );
    const destination = joinAddress(
      view.getUint32(Descriptor.destination, true),
      view.getUint32(Descriptor.destination + 4, true),
    );
    const length = view.getUint32(Descriptor.length, true);
    const control = view.getUint32(Descriptor.control, true);
    if (length === 0 || length > this.maxTransfer) {
      const written = this.#writeBack(
        at,
        DescriptorStatus.error | (DescriptorError.badLength << DESCRIPTOR_ERROR_SHIFT),
      );
      this.#record(channel, "status write-back", written);
      this.#halt(channel, ChannelStatus.descriptorError, at);
      return;
    }
    for (let done = 0; done < length; ) {
      const piece = channel.staging.subarray(0, Math.min(STAGING_BYTES, length - done));
      const read = dmaRead(this.port, source + done, piece);
      if (!read.ok) {
        this.#copyFailed(channel, at, DescriptorError.sourceRead, "source read", read, done);
        return;
      }
      const written = dmaWrite(this.port, destination + done, piece);
      if (!written.ok) {
        this.#copyFailed(channel, at, DescriptorError.destinationWrite, "destination write", written, done);
        return;
      }
      done += piece.length;
    }
    this.after(
      this.transferTime(length) - this.latencyNs,
      () => this.#complete(channel, generation, at, length, control),
      `${this.name} ch${channel.index} done`,
    );
  }

  #complete(channel: Channel, generation: number, at: number, length: number, control: number): void {
    if (generation !== channel.generation) return;
    const written = this.#writeBack(at, DescriptorStatus.done);
    if (!written.ok) {
      this.#dmaFailed(channel, "status write-back", written);
      return;
    }
    channel.head = (channel.head + 1) % channel.ringSize;
    channel.completed = (channel.completed + 1) % TWO_POW_32;
    channel.status &= ~ChannelStatus.active;
    channel.stats.descriptors++;
    channel.stats.bytes += length;
    if ((control & DescriptorControl.interrupt) !== 0) this.#signal(channel);
    this.#kick(channel);
  }

  /** Writes the STATUS word of the descriptor at `at`. */
  #writeBack(at: number, status: number): DmaResult {
    this.#statusView.setUint32(0, status, true);
    return dmaWrite(this.port, at + Descriptor.status, this.#statusWord);
  }

  #copyFailed(
    channel: Channel,
    at: number,
    code: number,
    during: string,
    result: DmaFailure,
    done: number,
  ): void {
    channel.stats.bytes += done;
    this.#record(channel, during, result);
    this.#record(
      channel,
      "status write-back",
      this.#writeBack(at, DescriptorStatus.error | (code << DESCRIPTOR_ERROR_SHIFT)),
    );
    this.#halt(channel, ChannelStatus.dmaError, result.address);
  }

  #dmaFailed(channel: Channel, during: string, result: DmaFailure): void {
    this.#record(channel, during, result);
    this.#halt(channel, ChannelStatus.dmaError, result.address);
  }

  #record(channel: Channel, during: string, result: DmaResult): void {
    if (result.ok) return;
    this.#dmaErrors.push({ during: `ch${channel.index} ${during}`, timeNs: this.scheduler.now, result });
  }

  #halt(channel: Channel, cause: number, address: number): void {
    channel.status = (channel.status & ~ChannelStatus.active) | ChannelStatus.halted | cause;
    channel.errorAddress = Number.isSafeInteger(address) && address >= 0 ? address : 0;
    channel.errorDescriptor = channel.head;
    channel.stats.errors++;
    this.#signal(channel);
  }

  #signal(channel: Channel): void {
    if ((channel.control & ChannelControl.interruptEnable) === 0) return;
    this.#interruptStatus |= 1 << channel.index;
    channel.stats.interrupts++;
    this.raiseInterrupt();
  }
}
