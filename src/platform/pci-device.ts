/**
 * The base of every device model: a PCI function with its identity as data, one MMIO BAR of
 * 32-bit registers, a configuration header, an interrupt line and a DmaPort (one file per model,
 * as v86 keeps one per device; the e1000 shape of QEMU: read a descriptor through the port, do the
 * work after virtual time, write back through the port, raise the interrupt).
 *
 * A device model may touch ONLY its port for memory, its scheduler for time, and
 * `raiseInterrupt` to signal. It never sees PhysicalMemory, the IOMMU or the CPU's memory.
 */
import type { DmaPort } from "./dma-port.js";
import { checkLength, formatAddress } from "./page.js";
import { formatRequesterId } from "./pci-address.js";
import { PciConfigSpace, type PciIdentity } from "./pci-config-space.js";
import { PlatformError } from "./platform-error.js";
import type { Scheduler, TimerHandle } from "./scheduler.js";

export interface PciDeviceOptions {
  /** Size of the MMIO BAR in bytes: a power of two from 16 bytes to 256 MiB (PCI 6.2.5.1). */
  readonly barSize: number;
  /** Fixed cost of starting a transfer, in ns (default 1 µs). */
  readonly latencyNs?: number;
  /** Sustained transfer rate in bytes per second (default 1 GB/s, about PCIe 2.0 x2). */
  readonly bandwidth?: number;
}

/** What the bus hands a device when it plugs it in. */
export interface PciSlot {
  readonly requesterId: number;
  readonly interruptLine: number;
  readonly port: DmaPort;
  readonly scheduler: Scheduler;
}

export const MIN_BAR_SIZE = 16;
export const MAX_BAR_SIZE = 256 * 1024 * 1024;
const DEFAULT_LATENCY_NS = 1_000;
const DEFAULT_BANDWIDTH = 1_000_000_000;

export abstract class PciDevice {
  readonly config: PciConfigSpace;
  /** Size of the BAR the bus will place. */
  readonly barSize: number;
  readonly latencyNs: number;
  /** Bytes per second. */
  readonly bandwidth: number;
  #slot: PciSlot | undefined;
  /** Work this device scheduled through `after`, cancelled when it is unplugged. */
  readonly #timers = new Set<TimerHandle>();

  constructor(identity: PciIdentity, options: PciDeviceOptions) {
    const { barSize, latencyNs = DEFAULT_LATENCY_NS, bandwidth = DEFAULT_BANDWIDTH } = options;
    if (
      !Number.isInteger(barSize) ||
      barSize < MIN_BAR_SIZE ||
      barSize > MAX_BAR_SIZE ||
      (barSize & (barSize - 1)) !== 0
    ) {
      throw new PlatformError(
        "bad-length",
        `BAR size ${String(barSize)} of ${identity.name} must be a power of two in [${MIN_BAR_SIZE}, ${MAX_BAR_SIZE}]`,
      );
    }
    checkLength(latencyNs, `latency (ns) of ${identity.name}`);
    if (!Number.isFinite(bandwidth) || bandwidth <= 0) {
      throw new PlatformError(
        "out-of-range",
        `bandwidth ${String(bandwidth)} of ${identity.name} must be positive`,
      );
    }
    this.config = new PciConfigSpace(identity);
    this.barSize = barSize;
    this.latencyNs = latencyNs;
    this.bandwidth = bandwidth;
  }

  get name(): string {
    return this.config.identity.name;
  }

  get attached(): boolean {
    return this.#slot !== undefined;
  }

  get requesterId(): number {
    return this.#plugged().requesterId;
  }

  get interruptLine(): number {
    return this.#plugged().interruptLine;
  }

  get barAddress(): number {
    this.#plugged();
    return this.config.barAddress;
  }

  /** MMIO read of the register at `offset` in the BAR (the bus routes here). */
  readRegister(offset: number): number {
    this.#checkRegister(offset);
    return this.registerValue(offset) >>> 0;
  }

  /** MMIO write of the register at `offset` in the BAR (the bus routes here). */
  writeRegister(offset: number, value: number): void {
    this.#checkRegister(offset);
    if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) {
      throw new PlatformError(
        "out-of-range",
        `register value ${String(value)} is not a 32-bit unsigned integer`,
      );
    }
    this.onRegisterWrite(offset, value);
  }

  /** Called by PciBus.attach only. */
  plugInto(slot: PciSlot): void {
    if (this.#slot !== undefined) {
      throw new PlatformError(
        "bad-state",
        `${this.name} is already attached as ${formatRequesterId(this.requesterId)}`,
      );
    }
    this.#slot = slot;
    try {
      this.onAttach();
    } catch (error) {
      this.#slot = undefined;
      throw error;
    }
  }

  /** Called by PciBus.detach only: pending work is cancelled, then the model is told. */
  unplug(): void {
    const slot = this.#plugged();
    for (const timer of this.#timers) slot.scheduler.cancel(timer);
    this.#timers.clear();
    this.#slot = undefined;
    this.onDetach();
  }

  /** The device's only way to memory. */
  protected get port(): DmaPort {
    return this.#plugged().port;
  }

  protected get scheduler(): Scheduler {
    return this.#plugged().scheduler;
  }

  /** Virtual time for moving `bytes`: latency plus bytes / bandwidth, rounded up to whole ns. */
  protected transferTime(bytes: number): number {
    checkLength(bytes, "transfer size");
    return this.latencyNs + Math.ceil((bytes * 1e9) / this.bandwidth);
  }

  /** Runs `callback` after `delayNs`; cancelled automatically if the device is unplugged first. */
  protected after(delayNs: number, callback: () => void, label: string = this.name): TimerHandle {
    const scheduler = this.scheduler;
    const handle = scheduler.schedule(
      delayNs,
      () => {
        this.#timers.delete(handle);
        callback();
      },
      label,
    );
    this.#timers.add(handle);
    return handle;
  }

  /** Runs `callback` once a transfer of `bytes` would have completed. */
  protected afterTransfer(bytes: number, callback: () => void, label?: string): TimerHandle {
    return this.after(this.transferTime(bytes), callback, label);
  }

  /** Asserts the device's interrupt line, unless Interrupt Disable is set in its command register. */
  protected raiseInterrupt(): void {
    const slot = this.#plugged();
    if (this.config.interruptDisabled) return;
    slot.scheduler.requestInterrupt(slot.interruptLine);
  }

  /** The value of the 32-bit register at `offset` (dword aligned, inside the BAR). */
  protected abstract registerValue(offset: number): number;

  /** A driver wrote `value` to the 32-bit register at `offset`. */
  protected abstract onRegisterWrite(offset: number, value: number): void;

  /** The device got its requester id, BAR, line and port. */
  protected onAttach(): void {}

  /** The device left the bus; its timers are already cancelled. */
  protected onDetach(): void {}

  #plugged(): PciSlot {
    if (this.#slot === undefined)
      throw new PlatformError("bad-state", `${this.name} is not attached to a PCI bus`);
    return this.#slot;
  }

  #checkRegister(offset: number): void {
    if (!Number.isInteger(offset) || offset < 0 || offset % 4 !== 0 || offset + 4 > this.barSize) {
      throw new PlatformError(
        "bad-address",
        `${this.name}: register offset ${formatAddress(offset)} is not a dword inside its ${this.barSize}-byte BAR`,
      );
    }
  }
}
