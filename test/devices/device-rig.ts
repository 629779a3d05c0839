/**
 * A bare machine for device tests: RAM, scheduler, PCI bus and a DmaRemapper (identity unless a
 * test passes a faulting one), built directly, so device models are tested without the layers
 * above the platform.
 */
import type { DmaAccess, DmaRemapper, DmaTranslation } from "../../src/platform/dma-remapper.js";
import { IdentityRemapper } from "../../src/platform/identity-remapper.js";
import { GiB, MiB, PAGE_SIZE } from "../../src/platform/page.js";
import { PciBus } from "../../src/platform/pci-bus.js";
import type { PciDevice } from "../../src/platform/pci-device.js";
import { PhysicalMemory, type RamRange } from "../../src/platform/physical-memory.js";
import { Scheduler } from "../../src/platform/scheduler.js";
import { Counters } from "../../src/trace/counters.js";
import { EventBus } from "../../src/trace/event-bus.js";

/** VT-d fault reasons 5 and 6: the page-table entry lacks write / read permission. */
export const FAULT_NO_WRITE = 5;
export const FAULT_NO_READ = 6;

/** Identity translation, except for bus pages the test declares blocked: those fault. */
export class FaultingRemapper implements DmaRemapper {
  readonly #identity = new IdentityRemapper();
  readonly #blocked = new Set<number>();
  faults = 0;

  /** Blocks every page touched by [address, address + length). */
  block(address: number, length = 1): this {
    for (let page = Math.floor(address / PAGE_SIZE); page * PAGE_SIZE < address + length; page++) {
      this.#blocked.add(page);
    }
    return this;
  }

  unblockAll(): void {
    this.#blocked.clear();
  }

  translate(requesterId: number, busAddress: number, access: DmaAccess, out: DmaTranslation): boolean {
    if (this.#blocked.has(Math.floor(busAddress / PAGE_SIZE))) {
      this.faults++;
      out.faultReason = access === "write" ? FAULT_NO_WRITE : FAULT_NO_READ;
      return false;
    }
    return this.#identity.translate(requesterId, busAddress, access, out);
  }
}

export interface Rig {
  readonly memory: PhysicalMemory;
  readonly scheduler: Scheduler;
  readonly bus: PciBus;
  readonly events: EventBus;
  readonly counters: Counters;
  readonly remapper: DmaRemapper;
}

/** Default RAM: 64 MiB low, and 64 MiB from 4 GiB up, so 64-bit addresses are real RAM. */
export const LOW_RAM: RamRange = { start: 0, end: 64 * MiB };
export const HIGH_RAM: RamRange = { start: 4 * GiB, end: 4 * GiB + 64 * MiB };

export function makeRig(options: { ranges?: readonly RamRange[]; remapper?: DmaRemapper } = {}): Rig {
  const events = new EventBus();
  const counters = new Counters();
  const memory = new PhysicalMemory(options.ranges ?? [LOW_RAM, HIGH_RAM]);
  const scheduler = new Scheduler(events, counters);
  const remapper = options.remapper ?? new IdentityRemapper();
  const bus = new PciBus(memory, remapper, scheduler, events, counters);
  return { memory, scheduler, bus, events, counters, remapper };
}

/** Plugs `device` in with bus mastering on, as its driver's start routine would leave it. */
export function plug<T extends PciDevice>(rig: Rig, device: T): T {
  rig.bus.attach(device, { busMaster: true });
  return device;
}

export function mmioWrite(rig: Rig, device: PciDevice, offset: number, value: number): void {
  rig.bus.mmioWrite32(device.barAddress + offset, value >>> 0);
}

export function mmioRead(rig: Rig, device: PciDevice, offset: number): number {
  return rig.bus.mmioRead32(device.barAddress + offset);
}

/** Writes a 64-bit address as two dwords (low, high) at `offset` and `offset + 4`. */
export function mmioWrite64(rig: Rig, device: PciDevice, offset: number, value: number): void {
  mmioWrite(rig, device, offset, value % 2 ** 32);
  mmioWrite(rig, device, offset + 4, Math.floor(value / 2 ** 32));
}

export function readMemory(rig: Rig, address: number, length: number): Uint8Array {
  const bytes = new Uint8Array(length);
  rig.memory.read(address, bytes);
  return bytes;
}

/** Deterministic test bytes: a simple LCG keyed by `seed`. */
export function pattern(length: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    bytes[i] = x >>> 24;
  }
  return bytes;
}

/** Counts interrupts on the device's line; `isr` decides whether the device claims each one. */
export function countInterrupts(
  rig: Rig,
  device: PciDevice,
  isr: () => boolean = () => true,
): { count: number } {
  const counter = { count: 0 };
  rig.scheduler.connectInterrupt(device.interruptLine, () => {
    counter.count++;
    return isr();
  });
  return counter;
}

/** Byte equality without a per-element deep compare (vitest's toEqual is slow on large arrays). */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.length).equals(Buffer.from(b.buffer, b.byteOffset, b.length));
}
