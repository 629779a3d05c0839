/**
 * Primary fault logging of one unit (iommu-anchors §1.5): NFR 128-bit fault recording
 * registers (FRCD) in a fixed typed array, the fault status register FSTS (PFO, PPF, FRI) and the
 * fault event control register FECTL (IM, IP). `report` follows QEMU's vtd_report_frcd_fault
 * step by step; `service` is what Linux's dmar_fault does with the records.
 *
 * FRCD words: 0 = FI bits 31:12 (page address), 1 = FI 63:32, 2 = SID in bits 15:0 (PP bit 31
 * stays 0: no PASIDs), 3 = FR in bits 7:0, T in bit 30 (1 = read, 0 = write), F in bit 31.
 */
import type { DmaAccess } from "../platform/dma-remapper.js";
import { PAGE_SIZE } from "../platform/page.js";
import { PlatformError } from "../platform/platform-error.js";
import { TWO_POW_32 } from "./entry-format.js";

/** FSTS bits. FRI is bits 15:8. */
export const FSTS_PFO = 0x1;
export const FSTS_PPF = 0x2;
export const FSTS_FRI_SHIFT = 8;
/** FECTL bits. */
export const FECTL_IM = 0x80000000;
export const FECTL_IP = 0x40000000;

const FRCD_T = 0x40000000;
const FRCD_F = 0x80000000;

/** A decoded fault record. */
export interface FaultRecord {
  readonly unit: string;
  /** FRCD index. */
  readonly index: number;
  readonly requesterId: number;
  /** Page address of the faulting request (FI). */
  readonly address: number;
  readonly access: DmaAccess;
  readonly reason: number;
}

/** What became of a reported fault. */
export type FaultOutcome = "recorded" | "collapsed" | "overflow";

export class FaultRecorder {
  readonly unit: string;
  /** Number of fault recording registers (CAP.NFR + 1). */
  readonly size: number;
  readonly #records: Uint32Array;
  readonly #signal: () => void;
  #status = 0;
  #control = 0;
  #next = 0;

  /** `signal` sends the fault event interrupt (the MSI in FEADDR/FEDATA). */
  constructor(unit: string, size: number, signal: () => void) {
    this.unit = unit;
    this.size = size;
    this.#records = new Uint32Array(size * 4);
    this.#signal = signal;
  }

  /** FSTS. PPF is set while any record has F set. */
  get status(): number {
    return this.#status;
  }

  /** FECTL. */
  get control(): number {
    return this.#control >>> 0;
  }

  /** Records a fault as the hardware does; the caller has already applied FPD. */
  report(requesterId: number, address: number, access: DmaAccess, reason: number): FaultOutcome {
    const before = this.#status;
    if ((before & FSTS_PFO) !== 0) return "overflow";
    for (let i = 0; i < this.size; i++) {
      if ((this.#records[i * 4 + 3]! & FRCD_F) !== 0 && this.#records[i * 4 + 2] === requesterId)
        return "collapsed";
    }
    const index = this.#next;
    const base = index * 4;
    if ((this.#records[base + 3]! & FRCD_F) !== 0) {
      this.#status |= FSTS_PFO;
      return "overflow";
    }
    const page = address - (address % PAGE_SIZE);
    this.#records[base] = page % TWO_POW_32;
    this.#records[base + 1] = Math.floor(page / TWO_POW_32);
    this.#records[base + 2] = requesterId;
    this.#records[base + 3] = (reason & 0xff) | (access === "read" ? FRCD_T : 0) | FRCD_F;
    this.#next = (index + 1) % this.size;
    if ((before & FSTS_PPF) !== 0) return "recorded";
    this.#status = (this.#status & ~(0xff << FSTS_FRI_SHIFT)) | (index << FSTS_FRI_SHIFT) | FSTS_PPF;
    this.#faultEvent(before);
    return "recorded";
  }

  /** Writes FSTS: PFO is write-1-to-clear; PPF and FRI are read-only. */
  writeStatus(value: number): void {
    if ((value & FSTS_PFO) !== 0) this.#status &= ~FSTS_PFO;
    this.#clearPendingIfIdle();
  }

  /** Writes FECTL: only IM is writable. Unmasking with IP set sends the held fault event. */
  writeControl(value: number): void {
    this.#control = (this.#control & FECTL_IP) | (value & FECTL_IM);
    if ((this.#control & (FECTL_IM | FECTL_IP)) === FECTL_IP) {
      this.#control &= ~FECTL_IP;
      this.#signal();
    }
  }

  /** Decodes FRCD `index`; undefined when its F bit is clear. */
  read(index: number): FaultRecord | undefined {
    this.#checkIndex(index);
    const base = index * 4;
    const flags = this.#records[base + 3]!;
    if ((flags & FRCD_F) === 0) return undefined;
    return {
      unit: this.unit,
      index,
      requesterId: this.#records[base + 2]! & 0xffff,
      address: this.#records[base + 1]! * TWO_POW_32 + this.#records[base]!,
      access: (flags & FRCD_T) !== 0 ? "read" : "write",
      reason: flags & 0xff,
    };
  }

  /** Writes 1 to F of FRCD `index`, releasing the register. */
  clear(index: number): void {
    this.#checkIndex(index);
    this.#records[index * 4 + 3] = 0;
    if (!this.#anyPending()) this.#status &= ~FSTS_PPF;
    this.#clearPendingIfIdle();
  }

  /**
   * Linux dmar_fault: if PPF, read and clear records from FRI onwards while F is set (wrapping),
   * then write PFO|PPF to FSTS. Returns the records in the order read.
   */
  service(): FaultRecord[] {
    const records: FaultRecord[] = [];
    if ((this.#status & FSTS_PPF) !== 0) {
      let index = (this.#status >>> FSTS_FRI_SHIFT) & 0xff;
      for (let n = 0; n < this.size; n++) {
        const record = this.read(index);
        if (record === undefined) break;
        records.push(record);
        this.clear(index);
        index = (index + 1) % this.size;
      }
    }
    this.writeStatus(FSTS_PFO | FSTS_PPF);
    return records;
  }

  /** Fault event generation (QEMU vtd_generate_fault_event): only if nothing was pending before. */
  #faultEvent(statusBefore: number): void {
    if ((statusBefore & (FSTS_PFO | FSTS_PPF)) !== 0) return;
    this.#control |= FECTL_IP;
    if ((this.#control & FECTL_IM) !== 0) return;
    this.#control &= ~FECTL_IP;
    this.#signal();
  }

  /** IP clears once software has serviced every reason for it (QEMU vtd_fsts_clear_ip). */
  #clearPendingIfIdle(): void {
    if ((this.#status & (FSTS_PFO | FSTS_PPF)) === 0) this.#control &= ~FECTL_IP;
  }

  #anyPending(): boolean {
    for (let i = 0; i < this.size; i++) if ((this.#records[i * 4 + 3]! & FRCD_F) !== 0) return true;
    return false;
  }

  #checkIndex(index: number): void {
    if (!Number.isInteger(index) || index < 0 || index >= this.size) {
      throw new PlatformError(
        "out-of-range",
        `fault record index ${String(index)} is not in [0, ${this.size - 1}] on ${this.unit}`,
      );
    }
  }
}
