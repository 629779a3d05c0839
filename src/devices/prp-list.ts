/**
 * Physical Region Page walking (NVMe 1.4 section 4.3): turns a command's PRP1/PRP2 and its length
 * into runs of bus addresses. PRP1 may start inside a page (dword aligned); a transfer that ends
 * in the second page names that page in PRP2; a longer one makes PRP2 point at a PRP list of
 * 8-byte page addresses, whose last entry chains to the next list page when one page of entries
 * is not enough. List pages are read through the device's port, one DMA per list page, and
 * adjacent pages are merged into one run so a contiguous buffer costs one data DMA.
 */
import type { DmaPort } from "../platform/dma-port.js";
import { type DmaFailure, dmaRead, joinAddress } from "./device-dma.js";
import { NVME_PAGE_SIZE, NvmeStatus } from "./nvme-registers.js";

const ENTRY_BYTES = 8;

export class PrpList {
  /** Runs [addresses[i], addresses[i] + lengths[i]) in transfer order; `count` of them are valid. */
  readonly addresses: number[] = [];
  readonly lengths: number[] = [];
  count = 0;
  /** Set when reading a list page failed (the command ends with a data transfer error). */
  failure: DmaFailure | undefined;
  readonly #scratch = new Uint8Array(NVME_PAGE_SIZE);
  readonly #view = new DataView(this.#scratch.buffer);

  /** Walks the PRPs of a `length`-byte transfer. Returns an NvmeStatus code (success = 0). */
  resolve(port: DmaPort, prp1: number, prp2: number, length: number): number {
    this.count = 0;
    this.failure = undefined;
    if (prp1 % 4 !== 0) return NvmeStatus.prpOffsetInvalid;
    const first = Math.min(length, NVME_PAGE_SIZE - (prp1 % NVME_PAGE_SIZE));
    this.#push(prp1, first);
    let remaining = length - first;
    if (remaining === 0) return NvmeStatus.success;
    if (remaining <= NVME_PAGE_SIZE) {
      if (prp2 % NVME_PAGE_SIZE !== 0) return NvmeStatus.prpOffsetInvalid;
      this.#push(prp2, remaining);
      return NvmeStatus.success;
    }
    let list = prp2;
    if (list % ENTRY_BYTES !== 0) return NvmeStatus.prpOffsetInvalid;
    while (remaining > 0) {
      const pages = Math.ceil(remaining / NVME_PAGE_SIZE);
      const slots = (NVME_PAGE_SIZE - (list % NVME_PAGE_SIZE)) / ENTRY_BYTES;
      const chained = pages > slots;
      const entries = chained ? slots : pages;
      const read = dmaRead(port, list, this.#scratch.subarray(0, entries * ENTRY_BYTES));
      if (!read.ok) {
        this.failure = read;
        return NvmeStatus.dataTransferError;
      }
      const dataEntries = chained ? entries - 1 : entries;
      for (let i = 0; i < dataEntries; i++) {
        const page = this.#entry(i);
        if (page % NVME_PAGE_SIZE !== 0) return NvmeStatus.prpOffsetInvalid;
        const n = Math.min(NVME_PAGE_SIZE, remaining);
        this.#push(page, n);
        remaining -= n;
      }
      if (chained) {
        list = this.#entry(entries - 1);
        if (list % NVME_PAGE_SIZE !== 0) return NvmeStatus.prpOffsetInvalid;
      }
    }
    return NvmeStatus.success;
  }

  #entry(i: number): number {
    return joinAddress(
      this.#view.getUint32(i * ENTRY_BYTES, true),
      this.#view.getUint32(i * ENTRY_BYTES + 4, true),
    );
  }

  #push(address: number, length: number): void {
    const last = this.count - 1;
    if (last >= 0 && this.addresses[last]! + this.lengths[last]! === address) {
      this.lengths[last]! += length;
      return;
    }
    this.addresses[this.count] = address;
    this.lengths[this.count] = length;
    this.count++;
  }
}
