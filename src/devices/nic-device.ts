/**
 * An e1000-like (Intel 8254x) Ethernet controller: a descriptor-ring bus master, modelled on QEMU
 * hw/net/e1000.c's start_xmit (read a descriptor through the port, gather its buffer, write the
 * status back, raise the cause) but checking every DmaResult, which QEMU's e1000 does not.
 *
 * - Transmit: writing TDT wakes the transmit unit. After the device latency it gathers one frame
 *   from TDH on (legacy descriptors, scatter/gather until EOP); after the frame's wire time it
 *   writes DD back to the descriptors with RS, advances TDH and hands the frame to its link.
 *   A frame whose EOP descriptor the driver has not yet handed over (TDT) waits, untouched.
 * - Receive: a frame from the link fills descriptors from RDH (several if it is longer than one
 *   RCTL.BSIZE buffer); with too few descriptors between RDH and RDT it is dropped whole and
 *   counted in MPC, with ICR.RXO.
 * - Interrupts: causes collect in ICR (read clears); the line is raised while ICR & IMS != 0, no
 *   more often than once per ITR interval (manual 13.4.18), so a burst is coalesced.
 * - A failed DMA sets ICR.dmaError and is recorded in `dmaErrors`. Transmit halts at the frame
 *   that failed (TDH stays on its first descriptor) until the driver writes TDT again; a receive
 *   failure drops the frame without writing any descriptor back.
 *
 * Simplified (documented in docs/samples.md): legacy descriptors only (DEXT and the checksum
 * offloads are ignored), no address filtering (every frame is accepted, as in promiscuous mode),
 * no FCS on the wire, no TIDV/RDTR delay timers, no EEPROM/PHY/flow-control registers.
 */
import type { DmaResult } from "../platform/dma-result.js";
import { PciDevice, type PciDeviceOptions } from "../platform/pci-device.js";
import { PlatformError } from "../platform/platform-error.js";
import { type DeviceDmaError, dmaRead, dmaWrite, joinAddress } from "./device-dma.js";
import {
  CtrlBit,
  IcrBit,
  ITR_UNIT_NS,
  MAX_FRAME_BYTES,
  MIN_FRAME_BYTES,
  NicRegister,
  RctlBit,
  RxDescriptor,
  RxStatus,
  StatusBit,
  TctlBit,
  TxCmd,
  TxDescriptor,
  TxStatus,
} from "./nic-registers.js";

/** Where a NIC sends the frames it transmits (a LoopbackWire). */
export interface NicLink {
  /** `frame` is valid only during the call. */
  deliver(from: NicDevice, frame: Uint8Array, timeNs: number): void;
}

export interface NicDeviceOptions extends Partial<PciDeviceOptions> {
  /** Station address, six bytes (default 52:54:00:12:34:56, QEMU's first NIC). */
  readonly mac?: readonly number[];
  readonly name?: string;
}

/** Host-side counts, for tests and reports (the driver-visible ones are the MPC/GPRC/GPTC registers). */
export interface NicStats {
  txFrames: number;
  txBytes: number;
  rxFrames: number;
  rxBytes: number;
  /** Frames dropped for want of receive descriptors (ICR.RXO). */
  rxMissed: number;
  /** Frames dropped because the receiver was disabled or the ring was not set up. */
  rxDisabled: number;
  /** Frames not sent: longer than 16 KiB, or empty. */
  txInvalid: number;
  interrupts: number;
}

/** e1000 82540EM identity (QEMU's default e1000). */
export const NIC_VENDOR_ID = 0x8086;
export const NIC_DEVICE_ID = 0x100e;
/** PCI class 02h/00h: Ethernet controller. */
export const NIC_CLASS_CODE = 0x020000;
/** The 8254x memory BAR is 128 KiB. */
export const NIC_BAR_SIZE = 128 * 1024;
const DEFAULT_MAC = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56] as const;
/** RCTL.BSIZE -> buffer bytes, without and with BSEX (00 with BSEX is reserved: taken as 2048). */
const RX_BUFFER_SIZES = [2048, 1024, 512, 256] as const;
const RX_BUFFER_SIZES_EXTENDED = [2048, 16384, 8192, 4096] as const;
/** Bits of the ring base address registers that are ignored (16-byte aligned descriptors). */
const RING_BASE_MASK = ~0xf >>> 0;
const HEAD_TAIL_MASK = 0xffff;
const RAH_ADDRESS_VALID = 1 << 31;
/** Legacy transmit and receive descriptors are both 16 bytes. */
const DESCRIPTOR_SIZE = 16;

/** The frame being gathered or on the wire. */
interface GatheredFrame {
  length: number;
  /** Index of the descriptor after EOP: the new TDH. */
  next: number;
  /** Descriptors whose status must be written back (RS set). */
  readonly reportStatus: number[];
}

export class NicDevice extends PciDevice {
  readonly stats: NicStats = {
    txFrames: 0,
    txBytes: 0,
    rxFrames: 0,
    rxBytes: 0,
    rxMissed: 0,
    rxDisabled: 0,
    txInvalid: 0,
    interrupts: 0,
  };
  readonly #mac: Uint8Array;
  readonly #dmaErrors: DeviceDmaError[] = [];
  #link: NicLink | undefined;

  #ctrl = 0;
  #icr = 0;
  #ims = 0;
  #itr = 0;
  #rctl = 0;
  #tctl = 0;
  #rdbal = 0;
  #rdbah = 0;
  #rdlen = 0;
  #rdh = 0;
  #rdt = 0;
  #tdbal = 0;
  #tdbah = 0;
  #tdlen = 0;
  #tdh = 0;
  #tdt = 0;
  #ral = 0;
  #rah = 0;
  #mpc = 0;
  #gprc = 0;
  #gptc = 0;
  #tpr = 0;
  #tpt = 0;

  /** A frame is being gathered or is on the wire. */
  #txBusy = false;
  /** Set by a transmit DMA failure; cleared by the next TDT write. */
  #txHalted = false;
  /** Bumped by a reset: work scheduled before it finds a new generation and stops. */
  #generation = 0;
  #lastInterruptNs = Number.NEGATIVE_INFINITY;
  #interruptTimerArmed = false;

  /** Reused buffers: one descriptor, and the frame being gathered. */
  readonly #descriptor = new Uint8Array(16);
  readonly #descriptorView = new DataView(this.#descriptor.buffer);
  readonly #writeBack = new Uint8Array(8);
  readonly #descriptorDone = Uint8Array.of(TxStatus.dd);
  readonly #writeBackView = new DataView(this.#writeBack.buffer);
  readonly #frame = new Uint8Array(MAX_FRAME_BYTES);
  readonly #gathered: GatheredFrame = { length: 0, next: 0, reportStatus: [] };

  constructor(options: NicDeviceOptions = {}) {
    super(
      {
        name: options.name ?? "e1000-like NIC",
        vendorId: NIC_VENDOR_ID,
        deviceId: NIC_DEVICE_ID,
        classCode: NIC_CLASS_CODE,
      },
      { barSize: NIC_BAR_SIZE, latencyNs: options.latencyNs, bandwidth: options.bandwidth ?? 125_000_000 },
    );
    const mac = options.mac ?? DEFAULT_MAC;
    if (mac.length !== 6 || mac.some((b) => !Number.isInteger(b) || b < 0 || b > 0xff)) {
      throw new PlatformError("out-of-range", `MAC address must be six bytes, got [${mac.join(", ")}]`);
    }
    this.#mac = Uint8Array.from(mac);
    this.#reset();
  }

  /** The station address (RAL0/RAH0 as loaded from the EEPROM at reset). */
  get mac(): Uint8Array {
    return this.#mac.slice();
  }

  /** Every DMA failure this NIC met, oldest first. */
  get dmaErrors(): readonly DeviceDmaError[] {
    return this.#dmaErrors;
  }

  get link(): NicLink | undefined {
    return this.#link;
  }

  /** Plugs the NIC's cable into `link` (undefined unplugs it). Called by LoopbackWire. */
  connectLink(link: NicLink | undefined): void {
    this.#link = link;
  }

  /**
   * A frame arrives from the link. Returns false if it was dropped (receiver off or its ring not
   * set up, too few free descriptors, or a DMA failure), true once it is in the receive ring.
   */
  receive(frame: Uint8Array): boolean {
    if (!(frame instanceof Uint8Array) || frame.length === 0 || frame.length > MAX_FRAME_BYTES) {
      throw new PlatformError("bad-length", `a received frame must be 1..${MAX_FRAME_BYTES} bytes`);
    }
    const count = this.#ringSize(this.#rdlen);
    const ringUsable = count > 0 && this.#rdh < count && this.#rdt < count;
    if (!this.attached || (this.#rctl & RctlBit.enable) === 0 || !ringUsable) {
      this.stats.rxDisabled++;
      return false;
    }
    const bufferSize = this.#rxBufferSize();
    const needed = Math.ceil(frame.length / bufferSize);
    const available = (this.#rdt - this.#rdh + count) % count;
    this.#tpr++;
    if (available < needed) {
      this.#mpc++;
      this.stats.rxMissed++;
      this.#cause(IcrBit.rxo);
      return false;
    }
    const base = joinAddress(this.#rdbal, this.#rdbah);
    for (let i = 0; i < needed; i++) {
      const slot = (this.#rdh + i) % count;
      const read = dmaRead(this.port, base + slot * RxDescriptor.size, this.#descriptor);
      if (!read.ok) return this.#rxFailed("rx descriptor read", read);
      const address = joinAddress(
        this.#descriptorView.getUint32(0, true),
        this.#descriptorView.getUint32(4, true),
      );
      const piece = frame.subarray(i * bufferSize, Math.min(frame.length, (i + 1) * bufferSize));
      const written = dmaWrite(this.port, address, piece);
      if (!written.ok) return this.#rxFailed("rx buffer write", written);
    }
    for (let i = 0; i < needed; i++) {
      const slot = (this.#rdh + i) % count;
      const view = this.#writeBackView;
      view.setUint16(0, Math.min(bufferSize, frame.length - i * bufferSize), true);
      view.setUint16(2, 0, true);
      view.setUint8(4, RxStatus.dd | (i === needed - 1 ? RxStatus.eop : 0));
      view.setUint8(5, 0);
      view.setUint16(6, 0, true);
      const result = dmaWrite(
        this.port,
        base + slot * RxDescriptor.size + RxDescriptor.length,
        this.#writeBack,
      );
      if (!result.ok) return this.#rxFailed("rx descriptor write-back", result);
    }
    this.#rdh = (this.#rdh + needed) % count;
    this.#gprc++;
    this.stats.rxFrames++;
    this.stats.rxBytes += frame.length;
    this.#cause(IcrBit.rxt0);
    return true;
  }

  protected override registerValue(offset: number): number {
    switch (offset) {
      case NicRegister.ctrl:
        return this.#ctrl;
      case NicRegister.status:
        return this.#link === undefined
          ? StatusBit.fullDuplex
          : StatusBit.fullDuplex | StatusBit.linkUp | StatusBit.speed1000;
      case NicRegister.icr: {
        const icr = this.#icr;
        this.#icr = 0;
        return icr;
      }
      case NicRegister.itr:
        return this.#itr;
      case NicRegister.ims:
        return this.#ims;
      case NicRegister.rctl:
        return this.#rctl;
      case NicRegister.tctl:
        return this.#tctl;
      case NicRegister.rdbal:
        return this.#rdbal;
      case NicRegister.rdbah:
        return this.#rdbah;
      case NicRegister.rdlen:
        return this.#rdlen;
      case NicRegister.rdh:
        return this.#rdh;
      case NicRegister.rdt:
        return this.#rdt;
      case NicRegister.tdbal:
        return this.#tdbal;
      case NicRegister.tdbah:
        return this.#tdbah;
      case NicRegister.tdlen:
        return this.#tdlen;
      case NicRegister.tdh:
        return this.#tdh;
      case NicRegister.tdt:
        return this.#tdt;
      case NicRegister.ral0:
        return this.#ral;
      case NicRegister.rah0:
        return this.#rah;
      case NicRegister.mpc:
        return this.#readClear("mpc");
      case NicRegister.gprc:
        return this.#readClear("gprc");
      case NicRegister.gptc:
        return this.#readClear("gptc");
      case NicRegister.tpr:
        return this.#readClear("tpr");
      case NicRegister.tpt:
        return this.#readClear("tpt");
      default:
        return 0;
    }
  }

  protected override onRegisterWrite(offset: number, value: number): void {
    switch (offset) {
      case NicRegister.ctrl:
        if ((value & CtrlBit.rst) !== 0) this.#reset();
        else this.#ctrl = value;
        return;
      case NicRegister.icr:
        this.#icr = (this.#icr & ~value) >>> 0;
        return;
      case NicRegister.itr:
        this.#itr = value & 0xffff;
        return;
      case NicRegister.ics:
        this.#cause(value);
        return;
      case NicRegister.ims:
        this.#ims = (this.#ims | value) >>> 0;
        this.#updateInterrupt();
        return;
      case NicRegister.imc:
        this.#ims = (this.#ims & ~value) >>> 0;
        return;
      case NicRegister.rctl:
        this.#rctl = value;
        return;
      case NicRegister.tctl:
        this.#tctl = value;
        this.#kickTransmit();
        return;
      case NicRegister.rdbal:
        this.#rdbal = (value & RING_BASE_MASK) >>> 0;
        return;
      case NicRegister.rdbah:
        this.#rdbah = value;
        return;
      case NicRegister.rdlen:
        this.#rdlen = ringLength(value);
        return;
      case NicRegister.rdh:
        this.#rdh = value & HEAD_TAIL_MASK;
        return;
      case NicRegister.rdt:
        this.#rdt = value & HEAD_TAIL_MASK;
        return;
      case NicRegister.tdbal:
        this.#tdbal = (value & RING_BASE_MASK) >>> 0;
        return;
      case NicRegister.tdbah:
        this.#tdbah = value;
        return;
      case NicRegister.tdlen:
        this.#tdlen = ringLength(value);
        return;
      case NicRegister.tdh:
        this.#tdh = value & HEAD_TAIL_MASK;
        return;
      case NicRegister.tdt:
        this.#tdt = value & HEAD_TAIL_MASK;
        this.#txHalted = false;
        this.#kickTransmit();
        return;
      case NicRegister.ral0:
        this.#ral = value;
        return;
      case NicRegister.rah0:
        this.#rah = value;
        return;
      default:
        return;
    }
  }

  protected override onDetach(): void {
    this.#generation++;
    this.#txBusy = false;
    this.#interruptTimerArmed = false;
  }

  /** CTRL.RST: every register back to its power-on value, pending work abandoned. */
  #reset(): void {
    this.#generation++;
    this.#ctrl = 0;
    this.#icr = 0;
    this.#ims = 0;
    this.#itr = 0;
    this.#rctl = 0;
    this.#tctl = 0;
    this.#rdbal = 0;
    this.#rdbah = 0;
    this.#rdlen = 0;
    this.#rdh = 0;
    this.#rdt = 0;
    this.#tdbal = 0;
    this.#tdbah = 0;
    this.#tdlen = 0;
    this.#tdh = 0;
    this.#tdt = 0;
    this.#mpc = 0;
    this.#gprc = 0;
    this.#gptc = 0;
    this.#tpr = 0;
    this.#tpt = 0;
    this.#txBusy = false;
    this.#txHalted = false;
    this.#lastInterruptNs = Number.NEGATIVE_INFINITY;
    this.#interruptTimerArmed = false;
    const m = this.#mac;
    this.#ral = (m[0]! | (m[1]! << 8) | (m[2]! << 16) | (m[3]! << 24)) >>> 0;
    this.#rah = (m[4]! | (m[5]! << 8) | RAH_ADDRESS_VALID) >>> 0;
  }

  #readClear(counter: "mpc" | "gprc" | "gptc" | "tpr" | "tpt"): number {
    let value: number;
    switch (counter) {
      case "mpc":
        value = this.#mpc;
        this.#mpc = 0;
        break;
      case "gprc":
        value = this.#gprc;
        this.#gprc = 0;
        break;
      case "gptc":
        value = this.#gptc;
        this.#gptc = 0;
        break;
      case "tpr":
        value = this.#tpr;
        this.#tpr = 0;
        break;
      case "tpt":
        value = this.#tpt;
        this.#tpt = 0;
        break;
    }
    return value >>> 0;
  }

  /** Descriptors in a ring of `length` bytes (0 when the ring is not set up). */
  #ringSize(length: number): number {
    return length / DESCRIPTOR_SIZE;
  }

  #rxBufferSize(): number {
    const bsize = (this.#rctl & RctlBit.bsizeMask) >>> RctlBit.bsizeShift;
    return ((this.#rctl & RctlBit.bsex) !== 0 ? RX_BUFFER_SIZES_EXTENDED : RX_BUFFER_SIZES)[bsize]!;
  }

  /** Starts the transmit unit if it is enabled, idle, not halted and has descriptors to send. */
  #kickTransmit(): void {
    if (this.#txBusy || this.#txHalted || !this.attached || (this.#tctl & TctlBit.enable) === 0) return;
    const count = this.#ringSize(this.#tdlen);
    if (count === 0 || this.#tdh >= count || this.#tdt >= count || this.#tdh === this.#tdt) return;
    this.#txBusy = true;
    const generation = this.#generation;
    this.after(this.latencyNs, () => this.#gather(generation), `${this.name} tx`);
  }

  /** Reads descriptors from TDH up to an EOP and gathers their buffers into one frame. */
  #gather(generation: number): void {
    if (generation !== this.#generation) return;
    const count = this.#ringSize(this.#tdlen);
    if ((this.#tctl & TctlBit.enable) === 0 || count === 0 || this.#tdh >= count || this.#tdt >= count) {
      // The driver disabled or moved the ring under the transmit unit: nothing valid to send.
      this.#txBusy = false;
      return;
    }
    const base = joinAddress(this.#tdbal, this.#tdbah);
    const frame = this.#gathered;
    frame.length = 0;
    frame.reportStatus.length = 0;
    let slot = this.#tdh;
    let oversize = false;
    for (;;) {
      if (slot === this.#tdt) {
        // The driver has not handed over the EOP descriptor yet: wait for the next TDT write.
        this.#txBusy = false;
        return;
      }
      const read = dmaRead(this.port, base + slot * TxDescriptor.size, this.#descriptor);
      if (!read.ok) {
        this.#txFailed("tx descriptor read", read);
        return;
      }
      const view = this.#descriptorView;
      const address = joinAddress(view.getUint32(0, true), view.getUint32(4, true));
      const length = view.getUint16(TxDescriptor.length, true);
      const cmd = view.getUint8(TxDescriptor.cmd);
      if (frame.length + length > MAX_FRAME_BYTES) oversize = true;
      if (!oversize && length > 0) {
        const data = dmaRead(this.port, address, this.#frame.subarray(frame.length, frame.length + length));
        if (!data.ok) {
          this.#txFailed("tx buffer read", data);
          return;
        }
        frame.length += length;
      }
      if ((cmd & TxCmd.rs) !== 0) frame.reportStatus.push(slot);
      slot = (slot + 1) % count;
      if ((cmd & TxCmd.eop) !== 0) break;
    }
    frame.next = slot;
    const padded = !oversize && (this.#tctl & TctlBit.psp) !== 0 && frame.length < MIN_FRAME_BYTES;
    if (padded) {
      this.#frame.fill(0, frame.length, MIN_FRAME_BYTES);
      frame.length = MIN_FRAME_BYTES;
    }
    const invalid = oversize || frame.length === 0;
    if (invalid) this.stats.txInvalid++;
    const wireNs = this.transferTime(frame.length) - this.latencyNs;
    this.after(wireNs, () => this.#transmitted(generation, invalid), `${this.name} tx done`);
  }

  /** The frame left: write DD back, move TDH, hand the frame to the link, raise the causes. */
  #transmitted(generation: number, dropped: boolean): void {
    if (generation !== this.#generation) return;
    const frame = this.#gathered;
    const base = joinAddress(this.#tdbal, this.#tdbah);
    for (const slot of frame.reportStatus) {
      const result = dmaWrite(
        this.port,
        base + slot * TxDescriptor.size + TxDescriptor.status,
        this.#descriptorDone,
      );
      if (!result.ok) {
        this.#txFailed("tx descriptor write-back", result);
        return;
      }
    }
    this.#tdh = frame.next;
    this.#tpt++;
    let causes = frame.reportStatus.length > 0 ? IcrBit.txdw : 0;
    if (this.#tdh === this.#tdt) causes |= IcrBit.txqe;
    if (!dropped) {
      this.#gptc++;
      this.stats.txFrames++;
      this.stats.txBytes += frame.length;
      this.#link?.deliver(this, this.#frame.subarray(0, frame.length), this.scheduler.now);
    }
    this.#txBusy = false;
    this.#cause(causes);
    this.#kickTransmit();
  }

  #txFailed(during: string, result: DmaResult): void {
    this.#txBusy = false;
    this.#txHalted = true;
    this.#recordError(during, result);
  }

  #rxFailed(during: string, result: DmaResult): false {
    this.#recordError(during, result);
    return false;
  }

  #recordError(during: string, result: DmaResult): void {
    if (result.ok)
      throw new PlatformError("bad-state", `${this.name}: ${during} succeeded but was reported as failed`);
    this.#dmaErrors.push({ during, timeNs: this.scheduler.now, result });
    this.#cause(IcrBit.dmaError);
  }

  /** Sets interrupt causes and raises the line if they are enabled (moderated by ITR). */
  #cause(bits: number): void {
    if (bits === 0) return;
    this.#icr = (this.#icr | bits) >>> 0;
    this.#updateInterrupt();
  }

  #updateInterrupt(): void {
    if ((this.#icr & this.#ims) === 0 || this.#interruptTimerArmed || !this.attached) return;
    const interval = this.#itr * ITR_UNIT_NS;
    const now = this.scheduler.now;
    const earliest = this.#lastInterruptNs + interval;
    if (now >= earliest) {
      this.#assert();
      return;
    }
    this.#interruptTimerArmed = true;
    const generation = this.#generation;
    this.after(
      earliest - now,
      () => {
        if (generation !== this.#generation) return;
        this.#interruptTimerArmed = false;
        if ((this.#icr & this.#ims) !== 0) this.#assert();
      },
      `${this.name} itr`,
    );
  }

  #assert(): void {
    this.#lastInterruptNs = this.scheduler.now;
    this.stats.interrupts++;
    this.raiseInterrupt();
  }
}

/** TDLEN/RDLEN: bits 19:7, a multiple of 128 bytes (8 descriptors); the low bits read as zero. */
function ringLength(value: number): number {
  return value & 0xfff80;
}
