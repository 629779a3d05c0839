/**
 * The PCI bus: where device models are plugged in, and the bus's firmware role. Attaching a
 * device gives it a requester id (bus:device.function), a memory BAR in the MMIO window, an
 * interrupt line and its DmaPort; the CPU side reaches its registers through mmioRead32 and
 * mmioWrite32, routed by address as the host bridge decodes them.
 *
 * The MMIO window is the hole between the first RAM range and 4 GiB, stopping below the I/O APIC
 * and local APIC (0xFEC00000 up, never given to BARs); with no hole below 4 GiB it lies above RAM.
 * BARs are naturally aligned (PCI 6.2.5.1) and at least page aligned, so no two devices share a
 * page (what VFIO needs to map a BAR to user mode).
 */
import { inject, injectable } from "inversify";
import { Counters } from "../trace/counters.js";
import { EventBus } from "../trace/event-bus.js";
import { DmaPort } from "./dma-port.js";
import type { DmaRemapper as DmaRemapperShape } from "./dma-remapper.js";
import { checkAddress, formatAddress, GiB, PAGE_SIZE, TiB } from "./page.js";
import {
  checkRequesterId,
  formatRequesterId,
  MAX_PCI_BUS,
  MAX_PCI_DEVICE,
  requesterId,
} from "./pci-address.js";
import { PciCommand } from "./pci-config-space.js";
import type { PciDevice } from "./pci-device.js";
import { PhysicalMemory } from "./physical-memory.js";
import { PlatformError } from "./platform-error.js";
import type { PciDeviceEvent } from "./platform-events.js";
import { MAX_INTERRUPT_LINE, Scheduler } from "./scheduler.js";
import { DmaRemapper } from "./tokens.js";

/** Where to plug a device; unset parts take the next free slot (bus 0, device 1 up, function 0). */
export interface PciSlotRequest {
  readonly bus?: number;
  readonly device?: number;
  readonly function?: number;
  /** Set Bus Master Enable at once, as if its driver had started (default false). */
  readonly busMaster?: boolean;
}

/** A [start, end) range of physical addresses. */
export interface MmioWindow {
  readonly start: number;
  readonly end: number;
}

/** Lines below 16 belong to legacy ISA interrupts; PCI devices get 16 and up. */
export const FIRST_PCI_INTERRUPT_LINE = 16;
/** The I/O APIC and local APIC live here and above; BARs stay below. */
export const APIC_BASE = 0xfec0_0000;
const FOUR_GIB = 4 * GiB;

interface Attachment {
  readonly device: PciDevice;
  readonly port: DmaPort;
  readonly barAddress: number;
  readonly barEnd: number;
  readonly interruptLine: number;
}

@injectable()
export class PciBus {
  /** Where BARs are placed. */
  readonly mmioWindow: MmioWindow;
  readonly #memory: PhysicalMemory;
  readonly #remapper: DmaRemapperShape;
  readonly #scheduler: Scheduler;
  readonly #events: EventBus;
  readonly #counters: Counters;
  readonly #byRequester = new Map<number, Attachment>();
  /** Sorted by BAR address, for routing and placement. */
  #byBar: Attachment[] = [];

  constructor(
    @inject(PhysicalMemory) memory: PhysicalMemory,
    @inject(DmaRemapper) remapper: DmaRemapperShape,
    @inject(Scheduler) scheduler: Scheduler,
    @inject(EventBus) events: EventBus,
    @inject(Counters) counters: Counters,
  ) {
    this.#memory = memory;
    this.#remapper = remapper;
    this.#scheduler = scheduler;
    this.#events = events;
    this.#counters = counters;
    this.mmioWindow = mmioWindowOf(memory);
  }

  /** Plugs `device` in and returns its requester id. Nothing changes if it cannot be placed. */
  attach(device: PciDevice, request: PciSlotRequest = {}): number {
    if (device.attached) {
      throw new PlatformError(
        "bad-state",
        `${device.name} is already attached as ${formatRequesterId(device.requesterId)}`,
      );
    }
    const rid = this.#slotFor(device, request);
    const barAddress = this.#placeBar(device.barSize, device.name);
    const interruptLine = this.#freeLine(device.name);
    const port = new DmaPort(rid, device.config, this.#memory, this.#remapper, this.#events, this.#counters);
    const attachment: Attachment = {
      device,
      port,
      barAddress,
      barEnd: barAddress + device.barSize,
      interruptLine,
    };
    device.config.assignResources(barAddress, device.barSize, interruptLine);
    if (request.busMaster === true) device.config.setCommandBit(PciCommand.busMaster, true);
    try {
      device.plugInto({ requesterId: rid, interruptLine, port, scheduler: this.#scheduler });
    } catch (error) {
      device.config.releaseResources();
      throw error;
    }
    this.#byRequester.set(rid, attachment);
    this.#byBar = [...this.#byBar, attachment].sort((a, b) => a.barAddress - b.barAddress);
    this.#counters.add("pci.attach");
    if (this.#events.hasListeners("pci.attach")) this.#events.emit("pci.attach", eventOf(rid, attachment));
    return rid;
  }

  /** Unplugs a device (surprise removal): its timers are cancelled and its port refuses DMA. */
  detach(rid: number): void {
    const attachment = this.#attachment(rid);
    this.#byRequester.delete(rid);
    this.#byBar = this.#byBar.filter((a) => a !== attachment);
    attachment.device.config.releaseResources();
    attachment.device.unplug();
    this.#counters.add("pci.detach");
    if (this.#events.hasListeners("pci.detach")) this.#events.emit("pci.detach", eventOf(rid, attachment));
  }

  device(rid: number): PciDevice {
    return this.#attachment(rid).device;
  }

  has(rid: number): boolean {
    return this.#byRequester.has(rid);
  }

  /** Attached devices by requester id. */
  devices(): readonly PciDevice[] {
    return [...this.#byRequester.keys()]
      .sort((a, b) => a - b)
      .map((rid) => this.#byRequester.get(rid)!.device);
  }

  portFor(rid: number): DmaPort {
    return this.#attachment(rid).port;
  }

  /** Sets or clears Bus Master Enable in the device's command register. */
  setBusMaster(rid: number, enabled: boolean): void {
    this.#attachment(rid).device.config.setCommandBit(PciCommand.busMaster, enabled);
  }

  configRead32(rid: number, offset: number): number {
    return this.#attachment(rid).device.config.read32(offset);
  }

  configWrite32(rid: number, offset: number, value: number): void {
    this.#attachment(rid).device.config.write32(offset, value);
  }

  /** The device whose BAR holds physical address `pa`, if any. */
  deviceAt(pa: number): PciDevice | undefined {
    return this.#decode(pa)?.device;
  }

  mmioRead32(pa: number): number {
    const attachment = this.#route(pa, "read");
    const offset = pa - attachment.barAddress;
    const value = attachment.device.readRegister(offset);
    if (this.#events.hasListeners("pci.mmio")) {
      this.#events.emit("pci.mmio", {
        requesterId: attachment.port.requesterId,
        offset,
        value,
        access: "read",
      });
    }
    return value;
  }

  mmioWrite32(pa: number, value: number): void {
    const attachment = this.#route(pa, "write");
    const offset = pa - attachment.barAddress;
    attachment.device.writeRegister(offset, value);
    if (this.#events.hasListeners("pci.mmio")) {
      this.#events.emit("pci.mmio", {
        requesterId: attachment.port.requesterId,
        offset,
        value,
        access: "write",
      });
    }
  }

  #attachment(rid: number): Attachment {
    checkRequesterId(rid);
    const attachment = this.#byRequester.get(rid);
    if (attachment === undefined) {
      throw new PlatformError("bad-handle", `no PCI device is attached at ${formatRequesterId(rid)}`);
    }
    return attachment;
  }

  #decode(pa: number): Attachment | undefined {
    checkAddress(pa, "MMIO address");
    for (const attachment of this.#byBar) {
      if (pa < attachment.barAddress) return undefined;
      if (pa < attachment.barEnd) return attachment;
    }
    return undefined;
  }

  #route(pa: number, access: string): Attachment {
    const attachment = this.#decode(pa);
    if (attachment === undefined) {
      throw new PlatformError(
        "bad-address",
        `MMIO ${access} at ${formatAddress(pa)}: no device BAR decodes it`,
      );
    }
    if (pa % 4 !== 0) {
      throw new PlatformError("bad-address", `MMIO ${access} at ${formatAddress(pa)} is not dword aligned`);
    }
    if (!attachment.device.config.memorySpaceEnabled) {
      throw new PlatformError(
        "bad-state",
        `MMIO ${access} at ${formatAddress(pa)}: ${attachment.device.name} has memory decoding disabled`,
      );
    }
    return attachment;
  }

  #slotFor(device: PciDevice, request: PciSlotRequest): number {
    const bus = request.bus ?? 0;
    const fn = request.function ?? 0;
    if (request.device !== undefined) {
      const rid = requesterId(bus, request.device, fn);
      const taken = this.#byRequester.get(rid);
      if (taken !== undefined) {
        throw new PlatformError(
          "bad-state",
          `PCI slot ${formatRequesterId(rid)} is taken by ${taken.device.name}`,
        );
      }
      return rid;
    }
    requesterId(bus, 0, fn);
    // 00:00.0 is the host bridge's.
    for (let dev = bus === 0 ? 1 : 0; dev <= MAX_PCI_DEVICE; dev++) {
      const rid = requesterId(bus, dev, fn);
      if (!this.#byRequester.has(rid)) return rid;
    }
    throw new PlatformError(
      "no-memory",
      `no free PCI slot on bus ${bus} (of ${MAX_PCI_BUS + 1}) for ${device.name}`,
    );
  }

  /** First fit in the MMIO window, naturally aligned, at least page aligned. */
  #placeBar(size: number, name: string): number {
    const alignment = Math.max(size, PAGE_SIZE);
    let candidate = alignUp(this.mmioWindow.start, alignment);
    for (const a of this.#byBar) {
      if (candidate + size <= a.barAddress) break;
      candidate = Math.max(candidate, alignUp(a.barEnd, alignment));
    }
    if (candidate + size > this.mmioWindow.end) {
      throw new PlatformError("no-memory", `no room for the ${size}-byte BAR of ${name} in the MMIO window`);
    }
    return candidate;
  }

  #freeLine(name: string): number {
    const used = new Set<number>();
    for (const a of this.#byRequester.values()) used.add(a.interruptLine);
    for (let line = FIRST_PCI_INTERRUPT_LINE; line <= MAX_INTERRUPT_LINE; line++) {
      if (!used.has(line)) return line;
    }
    throw new PlatformError("no-memory", `no free interrupt line for ${name}`);
  }
}

function mmioWindowOf(memory: PhysicalMemory): MmioWindow {
  const low = memory.ranges[0]!;
  const next = memory.ranges[1]?.start ?? FOUR_GIB;
  const end = Math.min(APIC_BASE, next);
  if (low.end < end) return { start: low.end, end };
  const start = alignUp(Math.max(memory.limit, FOUR_GIB), GiB);
  return { start, end: start + TiB };
}

function alignUp(value: number, alignment: number): number {
  return Math.ceil(value / alignment) * alignment;
}

function eventOf(rid: number, a: Attachment): PciDeviceEvent {
  return {
    requesterId: rid,
    name: a.device.name,
    barAddress: a.barAddress,
    barSize: a.device.barSize,
    interruptLine: a.interruptLine,
  };
}
