/**
 * THE choke point: every byte a device moves goes through its DmaPort, one per PCI requester id
 * (QEMU's pci_dma_rw -> dma_memory_rw -> address_space_rw, with the IOMMU as the address space's
 * translate hook). A device model never holds a RAM view; it holds a port.
 *
 * An access, in order:
 * 1. validate the bus address (a safe integer >= 0; bad input throws, it is a model bug);
 * 2. refuse it whole if Bus Master Enable is clear;
 * 3. translate one page (or superpage) through the DmaRemapper, then keep translating the next
 *    ones while they are physically adjacent, so a run is as long as the mapping allows (a 1 MiB
 *    access inside a 2 MiB superpage, or an identity access, is one copy);
 * 4. copy the run with one PhysicalMemory.read/write. DMA goes to RAM directly, never through
 *    the CPU cache: in non-coherent mode a device does not see dirty CPU lines.
 * On a translation fault the access stops there (the bytes of earlier runs have moved); a read
 * fills the rest of the buffer with 0xFF, a write drops the rest. A physical address outside RAM
 * ends the access the same way as "unassigned" (a PCIe unsupported request).
 */
import type { CounterCell, Counters } from "../trace/counters.js";
import type { EventBus, ListenerFlag } from "../trace/event-bus.js";
import { createTranslation, type DmaAccess, type DmaRemapper, type DmaTranslation } from "./dma-remapper.js";
import { DMA_OK, type DmaFaultKind, type DmaResult, dmaResultKind } from "./dma-result.js";
import { formatAddress } from "./page.js";
import { PhysicalMemory } from "./physical-memory.js";
import { PlatformError } from "./platform-error.js";
import "./platform-events.js";

/** What the port needs to know of the device's command register. */
export interface BusMasterGate {
  readonly busMasterEnabled: boolean;
}

export class DmaPort {
  readonly requesterId: number;
  readonly #gate: BusMasterGate;
  readonly #memory: PhysicalMemory;
  readonly #remapper: DmaRemapper;
  readonly #events: EventBus;
  readonly #counters: Counters;
  readonly #transferWatched: ListenerFlag;
  readonly #readBytes: CounterCell;
  readonly #writeBytes: CounterCell;
  /** The current run's translation and the look-ahead one; swapped, never reallocated. */
  #current: DmaTranslation = createTranslation();
  #next: DmaTranslation = createTranslation();

  constructor(
    requesterId: number,
    gate: BusMasterGate,
    memory: PhysicalMemory,
    remapper: DmaRemapper,
    events: EventBus,
    counters: Counters,
  ) {
    this.requesterId = requesterId;
    this.#gate = gate;
    this.#memory = memory;
    this.#remapper = remapper;
    this.#events = events;
    this.#counters = counters;
    this.#transferWatched = events.listenerFlag("device.transfer");
    this.#readBytes = counters.cell("dma.port.read.bytes");
    this.#writeBytes = counters.cell("dma.port.write.bytes");
  }

  /** The device reads memory at `busAddress` into `dst` (DMA to the device). */
  read(busAddress: number, dst: Uint8Array): DmaResult {
    return this.#access(busAddress, dst, "read");
  }

  /** The device writes `src` to memory at `busAddress` (DMA from the device). */
  write(busAddress: number, src: Uint8Array): DmaResult {
    return this.#access(busAddress, src, "write");
  }

  #access(busAddress: number, buffer: Uint8Array, access: DmaAccess): DmaResult {
    if (!(buffer instanceof Uint8Array)) {
      throw new PlatformError("bad-length", `DMA ${access} needs a Uint8Array buffer`);
    }
    const length = buffer.length;
    if (!Number.isSafeInteger(busAddress) || busAddress < 0 || !Number.isSafeInteger(busAddress + length)) {
      throw new PlatformError(
        "bad-address",
        `DMA ${access} of ${length} bytes at bus address ${formatAddress(busAddress)} is not in [0, 2^53)`,
      );
    }
    const result = this.#gate.busMasterEnabled
      ? this.#transfer(busAddress, buffer, access)
      : this.#fail("bus-master-disabled", busAddress, 0, 0, buffer, access);
    const moved = result.ok ? length : result.bytesDone;
    (access === "read" ? this.#readBytes : this.#writeBytes).value += moved;
    if (!result.ok) this.#counters.add(`dma.port.${result.kind}`);
    if (this.#transferWatched.active) {
      this.#events.emit("device.transfer", {
        requesterId: this.requesterId,
        busAddress,
        length,
        access,
        ok: result.ok,
        kind: dmaResultKind(result),
        bytesDone: moved,
      });
    }
    return result;
  }

  #transfer(busAddress: number, buffer: Uint8Array, access: DmaAccess): DmaResult {
    const total = buffer.length;
    let done = 0;
    let haveNext = false;
    while (done < total) {
      if (haveNext) {
        const t = this.#current;
        this.#current = this.#next;
        this.#next = t;
        haveNext = false;
      } else if (!this.#translate(busAddress + done, access, this.#current)) {
        return this.#fail("iommu-fault", busAddress + done, this.#current.faultReason, done, buffer, access);
      }
      const physical = this.#current.physicalAddress;
      let run = Math.min(this.#current.length, total - done);
      let faulted = false;
      while (done + run < total) {
        if (!this.#translate(busAddress + done + run, access, this.#next)) {
          faulted = true;
          break;
        }
        if (this.#next.physicalAddress !== physical + run) {
          haveNext = true;
          break;
        }
        run += Math.min(this.#next.length, total - done - run);
      }
      const copied = this.#copy(physical, buffer, done, run, access);
      done += copied;
      if (copied < run) return this.#fail("unassigned", busAddress + done, 0, done, buffer, access);
      if (faulted)
        return this.#fail("iommu-fault", busAddress + done, this.#next.faultReason, done, buffer, access);
    }
    return DMA_OK;
  }

  #translate(busAddress: number, access: DmaAccess, out: DmaTranslation): boolean {
    if (!this.#remapper.translate(this.requesterId, busAddress, access, out)) return false;
    if (!(out.length > 0) || !Number.isSafeInteger(out.physicalAddress) || out.physicalAddress < 0) {
      throw new PlatformError(
        "bad-state",
        `DMA remapper translated ${formatAddress(busAddress)} to ${formatAddress(out.physicalAddress)}+${out.length}`,
      );
    }
    return true;
  }

  /**
   * Copies up to `length` bytes between RAM at `physical` and buffer[offset...]. Returns the
   * bytes copied: fewer than `length` when the run leaves RAM.
   */
  #copy(physical: number, buffer: Uint8Array, offset: number, length: number, access: DmaAccess): number {
    const n = this.#memory.isRam(physical, length)
      ? length
      : Math.min(length, this.#ramEnd(physical) - physical);
    if (n <= 0) return 0;
    if (access === "read") this.#memory.readInto(physical, buffer, offset, n);
    else this.#memory.writeFrom(physical, buffer, offset, n);
    return n;
  }

  /** End of the RAM range holding `physical`, or `physical` itself when it is not RAM. */
  #ramEnd(physical: number): number {
    for (const range of this.#memory.ranges) {
      if (physical >= range.start && physical < range.end) return range.end;
    }
    return physical;
  }

  #fail(
    kind: DmaFaultKind,
    address: number,
    faultReason: number,
    bytesDone: number,
    buffer: Uint8Array,
    access: DmaAccess,
  ): DmaResult {
    if (access === "read") buffer.fill(0xff, bytesDone);
    return { ok: false, kind, address, faultReason, bytesDone };
  }
}
