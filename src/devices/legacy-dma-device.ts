/**
 * A legacy 32-bit bus master without scatter/gather: one address register and one length register
 * per transfer, a direction bit, a start bit, a status register and an interrupt. It moves data
 * between host memory and its on-board buffer (host side: `load` and `contents`).
 *
 * Its address register is 32 bits wide, as its address lines are: the upper bits of an address a
 * driver means to program are simply lost (the ADDRESS_HIGH register is not implemented), so a
 * buffer above 4 GiB is reached at its address modulo 4 GiB, i.e. somewhere else entirely. This is
 * why a driver must describe the device (Dma32BitAddresses, ScatterGather = FALSE) and use the
 * addresses the DMA adapter gives it: map registers (bounce pages below 4 GiB, or an IOVA window
 * under the IOMMU) and one contiguous run per transfer.
 *
 * The address counter wraps at 4 GiB like a 32-bit counter. START sets BUSY; after the device
 * latency the data moves through the port; after the bytes' transfer time BUSY clears, DONE (and
 * DMA_ERROR if the port refused part of the transfer) is set, and the interrupt is raised.
 */
import { checkLength, MiB } from "../platform/page.js";
import { PciDevice, type PciDeviceOptions } from "../platform/pci-device.js";
import type { DeviceDmaError, DmaFailure } from "./device-dma.js";
import {
  LEGACY_ADDRESS_SPACE,
  LegacyDmaControl,
  LegacyDmaRegister,
  LegacyDmaStatus,
} from "./legacy-dma-registers.js";

export interface LegacyDmaDeviceOptions extends Partial<PciDeviceOptions> {
  /** On-board buffer in bytes (default 64 KiB, at most 16 MiB): the longest transfer. */
  readonly bufferSize?: number;
  readonly name?: string;
}

export interface LegacyDmaStats {
  transfers: number;
  failedTransfers: number;
  interrupts: number;
}

/** 0x1234 is the unofficial vendor id emulators (Bochs, QEMU) give made-up devices. */
export const LEGACY_DMA_VENDOR_ID = 0x1234;
export const LEGACY_DMA_DEVICE_ID = 0x0dda;
/** PCI class 08h/01h/00h: generic 8237-compatible DMA controller. */
export const LEGACY_DMA_CLASS_CODE = 0x080100;
export const LEGACY_DMA_BAR_SIZE = 4096;
const DEFAULT_BUFFER_SIZE = 64 * 1024;
const MAX_BUFFER_SIZE = 16 * MiB;
const CLEARABLE_STATUS = LegacyDmaStatus.done | LegacyDmaStatus.dmaError | LegacyDmaStatus.lengthError;

export class LegacyDmaDevice extends PciDevice {
  readonly bufferSize: number;
  readonly stats: LegacyDmaStats = { transfers: 0, failedTransfers: 0, interrupts: 0 };
  readonly #buffer: Uint8Array;
  readonly #dmaErrors: DeviceDmaError[] = [];
  #address = 0;
  #length = 0;
  #control = 0;
  #status = 0;
  #bytesDone = 0;
  #generation = 0;

  constructor(options: LegacyDmaDeviceOptions = {}) {
    super(
      {
        name: options.name ?? "legacy 32-bit bus master",
        vendorId: LEGACY_DMA_VENDOR_ID,
        deviceId: LEGACY_DMA_DEVICE_ID,
        classCode: LEGACY_DMA_CLASS_CODE,
      },
      {
        barSize: LEGACY_DMA_BAR_SIZE,
        latencyNs: options.latencyNs,
        bandwidth: options.bandwidth ?? 33_000_000,
      },
    );
    this.bufferSize = checkLength(
      options.bufferSize ?? DEFAULT_BUFFER_SIZE,
      "legacy DMA buffer size",
      MAX_BUFFER_SIZE,
    );
    this.#buffer = new Uint8Array(this.bufferSize);
  }

  /** Every DMA failure this device met, oldest first. */
  get dmaErrors(): readonly DeviceDmaError[] {
    return this.#dmaErrors;
  }

  /** Host side: puts `bytes` in the on-board buffer at `offset` (what the device will send). */
  load(bytes: Uint8Array, offset = 0): void {
    checkLength(offset, "buffer offset", this.bufferSize - bytes.length);
    this.#buffer.set(bytes, offset);
  }

  /** Host side: a copy of `length` bytes of the on-board buffer from `offset` (what it received). */
  contents(length: number, offset = 0): Uint8Array {
    checkLength(length, "length", this.bufferSize);
    checkLength(offset, "buffer offset", this.bufferSize - length);
    return this.#buffer.slice(offset, offset + length);
  }

  protected override registerValue(offset: number): number {
    switch (offset) {
      case LegacyDmaRegister.address:
        return this.#address;
      case LegacyDmaRegister.length:
        return this.#length;
      case LegacyDmaRegister.control:
        return this.#control;
      case LegacyDmaRegister.status:
        return this.#status;
      case LegacyDmaRegister.bytesDone:
        return this.#bytesDone;
      default:
        return 0;
    }
  }

  protected override onRegisterWrite(offset: number, value: number): void {
    const busy = (this.#status & LegacyDmaStatus.busy) !== 0;
    switch (offset) {
      case LegacyDmaRegister.address:
        if (!busy) this.#address = value;
        return;
      case LegacyDmaRegister.length:
        if (!busy) this.#length = value;
        return;
      case LegacyDmaRegister.control:
        if (busy) return;
        this.#control = value & (LegacyDmaControl.start | LegacyDmaControl.toMemory);
        if ((value & LegacyDmaControl.start) !== 0) this.#start();
        return;
      case LegacyDmaRegister.status:
        this.#status &= ~(value & CLEARABLE_STATUS);
        return;
      default:
        return;
    }
  }

  protected override onDetach(): void {
    this.#generation++;
    this.#status &= ~LegacyDmaStatus.busy;
  }

  #start(): void {
    this.#status = LegacyDmaStatus.busy;
    this.#bytesDone = 0;
    const generation = this.#generation;
    this.after(this.latencyNs, () => this.#transfer(generation), `${this.name} dma`);
  }

  #transfer(generation: number): void {
    if (generation !== this.#generation) return;
    const length = this.#length;
    if (length === 0 || length > this.bufferSize) {
      this.#finish(LegacyDmaStatus.lengthError);
      return;
    }
    // The 32-bit address counter wraps: a transfer crossing 4 GiB continues at bus address 0.
    const first = Math.min(length, LEGACY_ADDRESS_SPACE - this.#address);
    let failure = this.#move(this.#address, 0, first);
    if (failure === undefined && first < length) failure = this.#move(0, first, length - first);
    const moved = failure === undefined ? length : this.#bytesDone;
    const bytesNs = this.transferTime(moved) - this.latencyNs;
    this.after(bytesNs, () => {
      if (generation !== this.#generation) return;
      this.#finish(failure === undefined ? 0 : LegacyDmaStatus.dmaError);
    });
  }

  /** Moves buffer[offset, offset + n) to or from `busAddress`; returns the failure, if any. */
  #move(busAddress: number, offset: number, n: number): DmaFailure | undefined {
    const bytes = this.#buffer.subarray(offset, offset + n);
    const toMemory = (this.#control & LegacyDmaControl.toMemory) !== 0;
    const result = toMemory ? this.port.write(busAddress, bytes) : this.port.read(busAddress, bytes);
    if (result.ok) {
      this.#bytesDone = offset + n;
      return undefined;
    }
    this.#bytesDone = offset + result.bytesDone;
    this.#dmaErrors.push({
      during: toMemory ? "write to memory" : "read from memory",
      timeNs: this.scheduler.now,
      result,
    });
    return result;
  }

  #finish(errors: number): void {
    this.#status = LegacyDmaStatus.done | errors;
    this.#control &= ~LegacyDmaControl.start;
    this.stats.transfers++;
    if (errors !== 0) this.stats.failedTransfers++;
    this.stats.interrupts++;
    this.raiseInterrupt();
  }
}
