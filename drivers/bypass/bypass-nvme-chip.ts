/**
 * The NVMe-like controller as the bypass driver drives it: queues in MmAllocateContiguousMemory
 * and data pages found with MmGetPhysicalAddress, page by page, written into PRPs. Correct on a
 * machine without remapping (the chip has 64 address lines), and a stream of IOMMU faults with it:
 * none of these addresses was ever mapped for the device.
 */
import {
  type DEVICE_DESCRIPTION,
  DEVICE_DESCRIPTION_VERSION2,
  Kernel,
  MmCached,
  type NTSTATUS,
  PAGE_SIZE,
  PCIBus,
  type PVOID,
  STATUS_DEVICE_NOT_READY,
  STATUS_INSUFFICIENT_RESOURCES,
  STATUS_IO_DEVICE_ERROR,
  STATUS_SUCCESS,
  zeroedDeviceDescription,
} from "../../src/ddi/index.js";
import type { BypassChip, BypassTransfer } from "./bypass-chip.js";
import {
  NVME_CC_EN,
  NVME_CMD_READ,
  NVME_CMD_WRITE,
  NVME_CQE_DW3,
  NVME_CQE_PHASE,
  NVME_CQE_SIZE,
  NVME_CQE_STATUS_SHIFT,
  NVME_CSTS_CFS,
  NVME_CSTS_RDY,
  NVME_MAX_TRANSFER,
  NVME_REG_ACQ,
  NVME_REG_AQA,
  NVME_REG_ASQ,
  NVME_REG_CC,
  NVME_REG_CQ0HDBL,
  NVME_REG_CSTS,
  NVME_REG_INTMC,
  NVME_REG_INTMS,
  NVME_REG_SQ0TDBL,
  NVME_SECTOR_SIZE,
  NVME_SQE_SIZE,
} from "./bypass-hw.js";

const TWO_POW_32 = 2 ** 32;
const SQ_ENTRIES = PAGE_SIZE / NVME_SQE_SIZE;
const CQ_ENTRIES = PAGE_SIZE / NVME_CQE_SIZE;
/** Submission queue, completion queue and PRP list: one page each, in one contiguous block. */
const QUEUE_BYTES = 3 * PAGE_SIZE;

export class BypassNvmeChip implements BypassChip {
  readonly name = "NVMe controller";
  readonly maximumTransfer = NVME_MAX_TRANSFER;
  readonly #kernel: Kernel;
  readonly #registers: PVOID;
  #queues: PVOID = 0;
  #sqTail = 0;
  #cqHead = 0;
  #phase = 1;
  #fatal = false;
  #status = 0;

  constructor(kernel: Kernel, registers: PVOID) {
    this.#kernel = kernel;
    this.#registers = registers;
  }

  description(): DEVICE_DESCRIPTION {
    const description = zeroedDeviceDescription();
    description.Version = DEVICE_DESCRIPTION_VERSION2;
    description.Master = true;
    description.ScatterGather = true;
    description.Dma64BitAddresses = true;
    description.InterfaceType = PCIBus;
    description.MaximumLength = NVME_MAX_TRANSFER;
    return description;
  }

  initialize(): NTSTATUS {
    const k = this.#kernel;
    this.#write(NVME_REG_INTMS, 1);
    this.#write(NVME_REG_CC, 0);
    this.#queues = k.MmAllocateContiguousMemorySpecifyCache(
      QUEUE_BYTES,
      0,
      Number.MAX_SAFE_INTEGER,
      0,
      MmCached,
    );
    if (this.#queues === 0) return STATUS_INSUFFICIENT_RESOURCES;
    k.RtlZeroMemory(this.#queues, QUEUE_BYTES);
    this.#sqTail = 0;
    this.#cqHead = 0;
    this.#phase = 1;
    this.#fatal = false;
    this.#write(NVME_REG_AQA, ((CQ_ENTRIES - 1) << 16) | (SQ_ENTRIES - 1));
    this.#write64(NVME_REG_ASQ, k.MmGetPhysicalAddress(this.#queues));
    this.#write64(NVME_REG_ACQ, k.MmGetPhysicalAddress(this.#queues + PAGE_SIZE));
    this.#write(NVME_REG_CC, NVME_CC_EN);
    const csts = this.#read(NVME_REG_CSTS);
    if ((csts & NVME_CSTS_RDY) === 0 || (csts & NVME_CSTS_CFS) !== 0) return STATUS_DEVICE_NOT_READY;
    this.#write(NVME_REG_INTMC, 1);
    return STATUS_SUCCESS;
  }

  start(transfer: BypassTransfer): boolean {
    const k = this.#kernel;
    if (transfer.length % NVME_SECTOR_SIZE !== 0 || transfer.byteOffset % NVME_SECTOR_SIZE !== 0)
      return false;
    const pages: number[] = [];
    for (let offset = 0; offset < transfer.length; ) {
      const va = transfer.va + offset;
      pages.push(k.MmGetPhysicalAddress(va));
      offset += PAGE_SIZE - (va % PAGE_SIZE);
    }
    let prp2 = 0;
    if (pages.length === 2) {
      prp2 = pages[1]!;
    } else if (pages.length > 2) {
      const list = new Uint8Array((pages.length - 1) * 8);
      const view = new DataView(list.buffer);
      for (let i = 1; i < pages.length; i++) setUint64(view, (i - 1) * 8, pages[i]!);
      k.WriteMemory(this.#queues + 2 * PAGE_SIZE, list);
      prp2 = k.MmGetPhysicalAddress(this.#queues + 2 * PAGE_SIZE);
    }
    const sqe = new Uint8Array(NVME_SQE_SIZE);
    const view = new DataView(sqe.buffer);
    view.setUint32(0, (transfer.write ? NVME_CMD_WRITE : NVME_CMD_READ) | (1 << 16), true);
    view.setUint32(4, 1, true);
    setUint64(view, 24, pages[0]!);
    setUint64(view, 32, prp2);
    setUint64(view, 40, transfer.byteOffset / NVME_SECTOR_SIZE);
    view.setUint32(48, transfer.length / NVME_SECTOR_SIZE - 1, true);
    k.WriteMemory(this.#queues + this.#sqTail * NVME_SQE_SIZE, sqe);
    this.#sqTail = (this.#sqTail + 1) % SQ_ENTRIES;
    this.#write(NVME_REG_SQ0TDBL, this.#sqTail);
    return true;
  }

  interrupted(): boolean {
    if ((this.#read(NVME_REG_CSTS) & NVME_CSTS_CFS) !== 0) {
      this.#fatal = true;
    } else {
      const dw3 = this.#headDw3();
      if (((dw3 & NVME_CQE_PHASE) !== 0 ? 1 : 0) !== this.#phase) return false;
      this.#status = (dw3 >>> NVME_CQE_STATUS_SHIFT) & 0xff;
      this.#cqHead = (this.#cqHead + 1) % CQ_ENTRIES;
      if (this.#cqHead === 0) this.#phase ^= 1;
      this.#write(NVME_REG_CQ0HDBL, this.#cqHead);
    }
    return true;
  }

  result(): NTSTATUS {
    return this.#fatal || this.#status !== 0 ? STATUS_IO_DEVICE_ERROR : STATUS_SUCCESS;
  }

  shutdown(): void {
    this.#write(NVME_REG_INTMS, 1);
    this.#write(NVME_REG_CC, 0);
    if (this.#queues !== 0) this.#kernel.MmFreeContiguousMemory(this.#queues);
    this.#queues = 0;
  }

  #headDw3(): number {
    const raw = this.#kernel.ReadMemory(
      this.#queues + PAGE_SIZE + this.#cqHead * NVME_CQE_SIZE + NVME_CQE_DW3,
      4,
    );
    return new DataView(raw.buffer).getUint32(0, true);
  }

  #read(offset: number): number {
    return this.#kernel.READ_REGISTER_ULONG(this.#registers + offset);
  }

  #write(offset: number, value: number): void {
    this.#kernel.WRITE_REGISTER_ULONG(this.#registers + offset, value);
  }

  #write64(offset: number, value: number): void {
    this.#write(offset, value % TWO_POW_32);
    this.#write(offset + 4, Math.floor(value / TWO_POW_32));
  }
}

function setUint64(view: DataView, offset: number, value: number): void {
  view.setUint32(offset, value % TWO_POW_32, true);
  view.setUint32(offset + 4, Math.floor(value / TWO_POW_32), true);
}
