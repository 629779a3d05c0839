/**
 * A VFIO device handle (the fd VFIO_GROUP_GET_DEVICE_FD returns): what a user-space driver uses
 * to run its device. Regions are vfio-pci's: BAR 0 (index 0, the mmap-able register window) and
 * the configuration space (index 7, where the driver sets Bus Master Enable). The INTx trigger
 * (VFIO_DEVICE_SET_IRQS with an eventfd) becomes a callback with the running count.
 *
 * Bad offsets and values are EINVAL; a closed handle is EBADF.
 */
import { Irql } from "../../platform/irql.js";
import type { PciDevice } from "../../platform/pci-device.js";
import { PlatformError } from "../../platform/platform-error.js";
import {
  VFIO_DEVICE_FLAGS_PCI,
  VFIO_PCI_BAR0_REGION_INDEX,
  VFIO_PCI_CONFIG_REGION_INDEX,
  VFIO_PCI_NUM_IRQS,
  VFIO_PCI_NUM_REGIONS,
  VFIO_REGION_INFO_FLAG_MMAP,
  VFIO_REGION_INFO_FLAG_READ,
  VFIO_REGION_INFO_FLAG_WRITE,
} from "./vfio-constants.js";
import type { VfioContext } from "./vfio-context.js";
import { VfioError } from "./vfio-error.js";
import { deviceName } from "./vfio-group.js";

export interface VfioDeviceInfo {
  readonly flags: number;
  readonly numRegions: number;
  readonly numIrqs: number;
}

export interface VfioRegionInfo {
  readonly index: number;
  readonly size: number;
  readonly flags: number;
}

/** The eventfd of an INTx trigger: called at device IRQL with the interrupts seen so far. */
export type VfioInterruptHandler = (count: number) => void;

const PCI_CONFIG_SIZE = 256;

export class VfioDevice {
  readonly requesterId: number;
  /** "0000:00:03.0". */
  readonly name: string;
  readonly #context: VfioContext;
  readonly #onClose: (device: VfioDevice) => void;
  #disconnect: (() => void) | undefined;
  #interrupts = 0;
  #closed = false;

  constructor(requesterId: number, context: VfioContext, onClose: (device: VfioDevice) => void) {
    this.requesterId = requesterId;
    this.name = deviceName(requesterId);
    this.#context = context;
    this.#onClose = onClose;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** INTx interrupts delivered to the trigger. */
  get interrupts(): number {
    return this.#interrupts;
  }

  /** VFIO_DEVICE_GET_INFO. */
  getInfo(): VfioDeviceInfo {
    this.#open("VFIO_DEVICE_GET_INFO");
    return { flags: VFIO_DEVICE_FLAGS_PCI, numRegions: VFIO_PCI_NUM_REGIONS, numIrqs: VFIO_PCI_NUM_IRQS };
  }

  /** VFIO_DEVICE_GET_REGION_INFO: BAR 0 and config have a size; the other regions are empty. */
  getRegionInfo(index: number): VfioRegionInfo {
    const operation = "VFIO_DEVICE_GET_REGION_INFO";
    this.#open(operation);
    if (!Number.isInteger(index) || index < 0 || index >= VFIO_PCI_NUM_REGIONS) {
      throw new VfioError("EINVAL", operation, `region ${String(index)} does not exist`);
    }
    const rw = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE;
    if (index === VFIO_PCI_BAR0_REGION_INDEX) {
      return { index, size: this.#device().barSize, flags: rw | VFIO_REGION_INFO_FLAG_MMAP };
    }
    if (index === VFIO_PCI_CONFIG_REGION_INDEX) return { index, size: PCI_CONFIG_SIZE, flags: rw };
    return { index, size: 0, flags: 0 };
  }

  /** A 32-bit read of region `index` at `offset` (pread on the device fd, or a load from the mmap). */
  regionRead32(index: number, offset: number): number {
    const operation = "pread";
    this.#open(operation);
    return this.#access(operation, () =>
      this.#region(operation, index, offset) === "bar"
        ? this.#context.pci.mmioRead32(this.#device().barAddress + offset)
        : this.#context.pci.configRead32(this.requesterId, offset),
    );
  }

  /** A 32-bit write of region `index` at `offset`. */
  regionWrite32(index: number, offset: number, value: number): void {
    const operation = "pwrite";
    this.#open(operation);
    this.#access(operation, () => {
      if (this.#region(operation, index, offset) === "bar") {
        this.#context.pci.mmioWrite32(this.#device().barAddress + offset, value);
      } else {
        this.#context.pci.configWrite32(this.requesterId, offset, value);
      }
    });
  }

  /**
   * VFIO_DEVICE_SET_IRQS for INTx: `handler` is signalled on each interrupt of the device's line
   * (undefined tears the trigger down). The handler runs at device IRQL, as an eventfd signal is
   * sent from the host's interrupt handler.
   */
  setIrqs(handler: VfioInterruptHandler | undefined): void {
    const operation = "VFIO_DEVICE_SET_IRQS";
    this.#open(operation);
    if (handler !== undefined && typeof handler !== "function") {
      throw new VfioError("EINVAL", operation, "the trigger must be a function");
    }
    this.#disconnect?.();
    this.#disconnect = undefined;
    if (handler === undefined) return;
    this.#disconnect = this.#context.scheduler.connectInterrupt(
      this.#device().interruptLine,
      () => {
        this.#interrupts++;
        handler(this.#interrupts);
        return true;
      },
      Irql.device,
    );
  }

  /** close(): the trigger is torn down and the handle becomes invalid. */
  close(): void {
    this.#open("close");
    this.#disconnect?.();
    this.#disconnect = undefined;
    this.#closed = true;
    this.#onClose(this);
  }

  #device(): PciDevice {
    return this.#context.pci.device(this.requesterId);
  }

  #region(operation: string, index: number, offset: number): "bar" | "config" {
    const size =
      index === VFIO_PCI_BAR0_REGION_INDEX
        ? this.#device().barSize
        : index === VFIO_PCI_CONFIG_REGION_INDEX
          ? PCI_CONFIG_SIZE
          : 0;
    if (!Number.isInteger(offset) || offset < 0 || offset % 4 !== 0 || offset + 4 > size) {
      throw new VfioError(
        "EINVAL",
        operation,
        `offset ${String(offset)} is not a dword inside region ${String(index)} (${size} bytes)`,
      );
    }
    return index === VFIO_PCI_BAR0_REGION_INDEX ? "bar" : "config";
  }

  #access<T>(operation: string, access: () => T): T {
    try {
      return access();
    } catch (error) {
      if (error instanceof PlatformError) throw new VfioError("EINVAL", operation, error.message);
      throw error;
    }
  }

  #open(operation: string): void {
    if (this.#closed) throw new VfioError("EBADF", operation, `device ${this.name} was closed`);
  }
}
