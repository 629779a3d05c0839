/**
 * An NVMe-like disk controller (NVM Express Base Specification 1.4) with one queue pair in host
 * memory: the driver writes 64-byte commands into the submission queue and rings the tail
 * doorbell; the controller fetches each command through its port, moves the data through its
 * port (PRP1/PRP2 and PRP lists, see prp-list.ts), and posts a 16-byte completion whose phase tag
 * flips on every pass round the completion queue (section 4.6), then interrupts.
 *
 * One command at a time: the fetch and the data DMA happen after the device latency, the
 * completion after the bytes' transfer time. The controller waits while the completion queue is
 * full (its head doorbell says what the driver consumed).
 *
 * Errors, all visible to the driver:
 * - a failed data DMA, or a failed PRP list read, completes the command with status 04h (Data
 *   Transfer Error); a Write whose data could not all be fetched writes nothing to the medium;
 * - a failed command fetch or completion post is fatal (CSTS.CFS, section 10.5): the controller
 *   stops, raises its interrupt whatever INTMS says, and needs a reset (CC.EN = 0, then 1);
 * - every failed DmaResult is also kept in `dmaErrors` for the host.
 */
import { PciDevice, type PciDeviceOptions } from "../platform/pci-device.js";
import { PlatformError } from "../platform/platform-error.js";
import { type DeviceDmaError, type DmaFailure, dmaRead, dmaWrite, joinAddress } from "./device-dma.js";
import type { DiskImage } from "./disk-image.js";
import {
  COMPLETION_DNR,
  CompletionEntry,
  NVME_NAMESPACE_ID,
  NVME_SECTOR_SIZE,
  NVME_VERSION_1_4,
  NvmeCap,
  NvmeCc,
  NvmeCsts,
  NvmeOpcode,
  NvmeRegister,
  NvmeStatus,
  SubmissionEntry,
} from "./nvme-registers.js";
import { PrpList } from "./prp-list.js";

export interface DiskControllerOptions extends Partial<PciDeviceOptions> {
  readonly name?: string;
}

export interface DiskControllerStats {
  commands: number;
  /** Commands completed with a non-zero status. */
  failedCommands: number;
  bytesRead: number;
  bytesWritten: number;
  interrupts: number;
  /** Doorbell writes beyond the queue size, ignored. */
  invalidDoorbells: number;
}

/** QEMU's emulated NVMe controller identity (1b36:0010). */
export const DISK_VENDOR_ID = 0x1b36;
export const DISK_DEVICE_ID = 0x0010;
/** PCI class 01h/08h/02h: mass storage, non-volatile memory, NVM Express. */
export const DISK_CLASS_CODE = 0x010802;
/** NVMe BAR 0 is at least 16 KiB. */
export const DISK_BAR_SIZE = 16 * 1024;
const DEFAULT_LATENCY_NS = 10_000;
const QUEUE_BASE_MASK = ~0xfff >>> 0;
const QUEUE_SIZE_MASK = 0x0fff;
/** Maximum Data Transfer Size: 2^8 pages = 1 MiB per command. */
export const MAX_TRANSFER_BYTES = 1024 * 1024;

export class DiskController extends PciDevice {
  readonly image: DiskImage;
  readonly stats: DiskControllerStats = {
    commands: 0,
    failedCommands: 0,
    bytesRead: 0,
    bytesWritten: 0,
    interrupts: 0,
    invalidDoorbells: 0,
  };
  readonly #dmaErrors: DeviceDmaError[] = [];

  #cc = 0;
  #csts = 0;
  #intms = 0;
  #aqa = 0;
  #asqLow = 0;
  #asqHigh = 0;
  #acqLow = 0;
  #acqHigh = 0;

  /** Queue state, latched from AQA/ASQ/ACQ when the controller is enabled. */
  #sqBase = 0;
  #cqBase = 0;
  #sqSize = 0;
  #cqSize = 0;
  #sqHead = 0;
  #sqTail = 0;
  #cqHead = 0;
  #cqTail = 0;
  #phase = 1;
  #busy = false;
  #generation = 0;
  /** Bytes the current command moved, for its transfer time. */
  #moved = 0;

  readonly #sqe = new Uint8Array(SubmissionEntry.size);
  readonly #sqeView = new DataView(this.#sqe.buffer);
  readonly #cqe = new Uint8Array(CompletionEntry.size);
  readonly #cqeView = new DataView(this.#cqe.buffer);
  readonly #prps = new PrpList();
  #staging = new Uint8Array(0);

  constructor(image: DiskImage, options: DiskControllerOptions = {}) {
    super(
      {
        name: options.name ?? "NVMe-like disk",
        vendorId: DISK_VENDOR_ID,
        deviceId: DISK_DEVICE_ID,
        classCode: DISK_CLASS_CODE,
      },
      {
        barSize: DISK_BAR_SIZE,
        latencyNs: options.latencyNs ?? DEFAULT_LATENCY_NS,
        bandwidth: options.bandwidth,
      },
    );
    if (image === undefined || !Number.isSafeInteger(image.sectorCount) || image.sectorCount <= 0) {
      throw new PlatformError("out-of-range", "a disk controller needs a DiskImage with at least one sector");
    }
    this.image = image;
  }

  /** Every DMA failure this controller met, oldest first. */
  get dmaErrors(): readonly DeviceDmaError[] {
    return this.#dmaErrors;
  }

  protected override registerValue(offset: number): number {
    switch (offset) {
      case NvmeRegister.capLow:
        return NvmeCap.mqes | NvmeCap.cqr | (1 << NvmeCap.timeoutShift);
      case NvmeRegister.capHigh:
        return NvmeCap.cssNvmHigh;
      case NvmeRegister.vs:
        return NVME_VERSION_1_4;
      case NvmeRegister.intms:
      case NvmeRegister.intmc:
        return this.#intms;
      case NvmeRegister.cc:
        return this.#cc;
      case NvmeRegister.csts:
        return this.#csts;
      case NvmeRegister.aqa:
        return this.#aqa;
      case NvmeRegister.asqLow:
        return this.#asqLow;
      case NvmeRegister.asqHigh:
        return this.#asqHigh;
      case NvmeRegister.acqLow:
        return this.#acqLow;
      case NvmeRegister.acqHigh:
        return this.#acqHigh;
      default:
        return 0;
    }
  }

  protected override onRegisterWrite(offset: number, value: number): void {
    switch (offset) {
      case NvmeRegister.intms:
        this.#intms |= value & 1;
        return;
      case NvmeRegister.intmc:
        this.#intms &= ~value & 1;
        this.#interruptIfPending();
        return;
      case NvmeRegister.cc:
        this.#writeCc(value);
        return;
      case NvmeRegister.aqa:
        this.#aqa = (value & 0x0fff_0fff) >>> 0;
        return;
      case NvmeRegister.asqLow:
        this.#asqLow = (value & QUEUE_BASE_MASK) >>> 0;
        return;
      case NvmeRegister.asqHigh:
        this.#asqHigh = value;
        return;
      case NvmeRegister.acqLow:
        this.#acqLow = (value & QUEUE_BASE_MASK) >>> 0;
        return;
      case NvmeRegister.acqHigh:
        this.#acqHigh = value;
        return;
      case NvmeRegister.sq0Tail:
        if (!this.#ready()) return;
        if (value >= this.#sqSize) {
          this.stats.invalidDoorbells++;
          return;
        }
        this.#sqTail = value;
        this.#kick();
        return;
      case NvmeRegister.cq0Head:
        if (!this.#ready()) return;
        if (value >= this.#cqSize) {
          this.stats.invalidDoorbells++;
          return;
        }
        this.#cqHead = value;
        this.#interruptIfPending();
        this.#kick();
        return;
      default:
        return;
    }
  }

  protected override onDetach(): void {
    this.#generation++;
    this.#busy = false;
  }

  #writeCc(value: number): void {
    const wasEnabled = (this.#cc & NvmeCc.enable) !== 0;
    const enable = (value & NvmeCc.enable) !== 0;
    this.#cc = value;
    if (wasEnabled && !enable) this.#resetQueues();
    else if (!wasEnabled && enable) this.#enable();
    if ((value & NvmeCc.shnMask) !== 0) this.#csts |= NvmeCsts.shutdownComplete;
  }

  /** CC.EN 0 -> 1: latch the queues; a configuration the controller cannot run is fatal. */
  #enable(): void {
    const sqSize = (this.#aqa & QUEUE_SIZE_MASK) + 1;
    const cqSize = ((this.#aqa >>> 16) & QUEUE_SIZE_MASK) + 1;
    if ((this.#cc & NvmeCc.mpsMask) !== 0 || sqSize < 2 || cqSize < 2) {
      this.#csts = NvmeCsts.fatal;
      return;
    }
    this.#sqBase = joinAddress(this.#asqLow, this.#asqHigh);
    this.#cqBase = joinAddress(this.#acqLow, this.#acqHigh);
    this.#sqSize = sqSize;
    this.#cqSize = cqSize;
    this.#csts = NvmeCsts.ready;
  }

  /** CC.EN 1 -> 0: the controller reset (section 7.3.2). Commands in flight are abandoned. */
  #resetQueues(): void {
    this.#generation++;
    this.#busy = false;
    this.#csts = 0;
    this.#sqHead = 0;
    this.#sqTail = 0;
    this.#cqHead = 0;
    this.#cqTail = 0;
    this.#phase = 1;
  }

  #ready(): boolean {
    return (this.#csts & (NvmeCsts.ready | NvmeCsts.fatal)) === NvmeCsts.ready;
  }

  #kick(): void {
    if (this.#busy || !this.#ready() || !this.attached || this.#sqHead === this.#sqTail) return;
    if ((this.#cqTail + 1) % this.#cqSize === this.#cqHead) return;
    this.#busy = true;
    const generation = this.#generation;
    this.after(this.latencyNs, () => this.#execute(generation), `${this.name} command`);
  }

  /** Fetches the command at the submission head and moves its data. */
  #execute(generation: number): void {
    if (generation !== this.#generation) return;
    const fetched = dmaRead(this.port, this.#sqBase + this.#sqHead * SubmissionEntry.size, this.#sqe);
    if (!fetched.ok) {
      this.#fatal("submission entry fetch", fetched);
      return;
    }
    this.#sqHead = (this.#sqHead + 1) % this.#sqSize;
    const dw0 = this.#sqeView.getUint32(SubmissionEntry.dw0, true);
    const commandId = dw0 >>> 16;
    this.#moved = 0;
    const status = this.#run(dw0);
    this.stats.commands++;
    const delay = this.transferTime(this.#moved) - this.latencyNs;
    this.after(delay, () => this.#complete(generation, commandId, status), `${this.name} completion`);
  }

  /** Runs one command; returns its status code and leaves the bytes it moved in `#moved`. */
  #run(dw0: number): number {
    const view = this.#sqeView;
    const opcode = dw0 & 0xff;
    const psdt = (dw0 >>> 14) & 0b11;
    const nsid = view.getUint32(SubmissionEntry.nsid, true);
    if (psdt !== 0) return NvmeStatus.invalidField;
    if (opcode === NvmeOpcode.flush) {
      return nsid === NVME_NAMESPACE_ID || nsid === 0xffffffff
        ? NvmeStatus.success
        : NvmeStatus.invalidNamespace;
    }
    if (opcode !== NvmeOpcode.read && opcode !== NvmeOpcode.write) return NvmeStatus.invalidOpcode;
    if (nsid !== NVME_NAMESPACE_ID) return NvmeStatus.invalidNamespace;
    const slba = joinAddress(
      view.getUint32(SubmissionEntry.slba, true),
      view.getUint32(SubmissionEntry.slba + 4, true),
    );
    const blocks = (view.getUint32(SubmissionEntry.dw12, true) & 0xffff) + 1;
    if (slba + blocks > this.image.sectorCount) return NvmeStatus.lbaOutOfRange;
    const length = blocks * NVME_SECTOR_SIZE;
    if (length > MAX_TRANSFER_BYTES) return NvmeStatus.invalidField;
    const prp1 = joinAddress(
      view.getUint32(SubmissionEntry.prp1, true),
      view.getUint32(SubmissionEntry.prp1 + 4, true),
    );
    const prp2 = joinAddress(
      view.getUint32(SubmissionEntry.prp2, true),
      view.getUint32(SubmissionEntry.prp2 + 4, true),
    );
    const prps = this.#prps;
    const walked = prps.resolve(this.port, prp1, prp2, length);
    if (prps.failure !== undefined) this.#recordError("prp list read", prps.failure);
    if (walked !== NvmeStatus.success) return walked;
    const data = this.#stagingFor(length);
    let offset = 0;
    if (opcode === NvmeOpcode.write) {
      for (let i = 0; i < prps.count; i++) {
        const n = prps.lengths[i]!;
        const result = dmaRead(this.port, prps.addresses[i]!, data.subarray(offset, offset + n));
        if (!result.ok) return this.#dataFailed("write data fetch", result);
        offset += n;
      }
      this.image.write(slba, data);
      this.stats.bytesWritten += length;
    } else {
      this.image.read(slba, data);
      for (let i = 0; i < prps.count; i++) {
        const n = prps.lengths[i]!;
        const result = dmaWrite(this.port, prps.addresses[i]!, data.subarray(offset, offset + n));
        if (!result.ok) return this.#dataFailed("read data store", result);
        offset += n;
      }
      this.stats.bytesRead += length;
    }
    this.#moved = length;
    return NvmeStatus.success;
  }

  /** Posts the completion entry, flips the phase at the wrap, interrupts, takes the next command. */
  #complete(generation: number, commandId: number, status: number): void {
    if (generation !== this.#generation) return;
    const view = this.#cqeView;
    view.setUint32(CompletionEntry.dw0, 0, true);
    view.setUint32(4, 0, true);
    view.setUint32(CompletionEntry.dw2, this.#sqHead, true);
    const dnr = status !== NvmeStatus.success && status !== NvmeStatus.dataTransferError ? COMPLETION_DNR : 0;
    view.setUint32(CompletionEntry.dw3, (commandId | (this.#phase << 16) | (status << 17) | dnr) >>> 0, true);
    const posted = dmaWrite(this.port, this.#cqBase + this.#cqTail * CompletionEntry.size, this.#cqe);
    if (!posted.ok) {
      this.#fatal("completion entry post", posted);
      return;
    }
    this.#cqTail++;
    if (this.#cqTail === this.#cqSize) {
      this.#cqTail = 0;
      this.#phase ^= 1;
    }
    if (status !== NvmeStatus.success) this.stats.failedCommands++;
    this.#busy = false;
    this.#interruptIfPending();
    this.#kick();
  }

  /** Pin-based interrupts (section 7.5.1): asserted while completions wait and the vector is unmasked. */
  #interruptIfPending(): void {
    if ((this.#intms & 1) !== 0 || !this.attached || this.#cqTail === this.#cqHead) return;
    this.stats.interrupts++;
    this.raiseInterrupt();
  }

  #dataFailed(during: string, result: DmaFailure): number {
    this.#recordError(during, result);
    return NvmeStatus.dataTransferError;
  }

  #fatal(during: string, result: DmaFailure): void {
    this.#recordError(during, result);
    this.#csts |= NvmeCsts.fatal;
    this.#busy = false;
    this.stats.interrupts++;
    this.raiseInterrupt();
  }

  #recordError(during: string, result: DmaFailure): void {
    this.#dmaErrors.push({ during, timeNs: this.scheduler.now, result });
  }

  /** A reused staging buffer of at least `length` bytes (grows, never shrinks). */
  #stagingFor(length: number): Uint8Array {
    if (this.#staging.length < length)
      this.#staging = new Uint8Array(Math.max(length, this.#staging.length * 2));
    return this.#staging.subarray(0, length);
  }
}
