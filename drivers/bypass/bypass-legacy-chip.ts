/**
 * The legacy bus master as the bypass driver drives it: the buffer's physical address, both
 * dwords, straight into ADDRESS and ADDRESS_HIGH, as for a 64-bit device. The chip has no
 * ADDRESS_HIGH register: above 4 GiB the transfer lands at the address modulo 4 GiB.
 */
import {
  type DEVICE_DESCRIPTION,
  DEVICE_DESCRIPTION_VERSION2,
  Kernel,
  type NTSTATUS,
  PCIBus,
  type PVOID,
  STATUS_IO_DEVICE_ERROR,
  STATUS_SUCCESS,
  zeroedDeviceDescription,
} from "../../src/ddi/index.js";
import type { BypassChip, BypassTransfer } from "./bypass-chip.js";
import {
  LDMA_BUFFER_SIZE,
  LDMA_CONTROL_START,
  LDMA_CONTROL_TO_MEMORY,
  LDMA_REG_ADDRESS,
  LDMA_REG_ADDRESS_HIGH,
  LDMA_REG_CONTROL,
  LDMA_REG_LENGTH,
  LDMA_REG_STATUS,
  LDMA_STATUS_CLEAR,
  LDMA_STATUS_DMA_ERROR,
  LDMA_STATUS_DONE,
  LDMA_STATUS_LENGTH_ERROR,
} from "./bypass-hw.js";

const TWO_POW_32 = 2 ** 32;

export class BypassLegacyChip implements BypassChip {
  readonly name = "legacy bus master";
  readonly maximumTransfer = LDMA_BUFFER_SIZE;
  readonly #kernel: Kernel;
  readonly #registers: PVOID;
  #status = 0;

  constructor(kernel: Kernel, registers: PVOID) {
    this.#kernel = kernel;
    this.#registers = registers;
  }

  description(): DEVICE_DESCRIPTION {
    const description = zeroedDeviceDescription();
    description.Version = DEVICE_DESCRIPTION_VERSION2;
    description.Master = true;
    description.Dma32BitAddresses = true;
    description.InterfaceType = PCIBus;
    description.MaximumLength = LDMA_BUFFER_SIZE;
    return description;
  }

  initialize(): NTSTATUS {
    this.#write(LDMA_REG_STATUS, LDMA_STATUS_CLEAR);
    return STATUS_SUCCESS;
  }

  /** The buffer is taken to be physically contiguous: one address for all of it. */
  start(transfer: BypassTransfer): boolean {
    const physical = this.#kernel.MmGetPhysicalAddress(transfer.va);
    if (physical === 0) return false;
    this.#write(LDMA_REG_ADDRESS, physical % TWO_POW_32);
    this.#write(LDMA_REG_ADDRESS_HIGH, Math.floor(physical / TWO_POW_32));
    this.#write(LDMA_REG_LENGTH, transfer.length);
    this.#write(LDMA_REG_CONTROL, LDMA_CONTROL_START | (transfer.write ? 0 : LDMA_CONTROL_TO_MEMORY));
    return true;
  }

  interrupted(): boolean {
    const status = this.#kernel.READ_REGISTER_ULONG(this.#registers + LDMA_REG_STATUS);
    if ((status & LDMA_STATUS_DONE) === 0) return false;
    this.#write(LDMA_REG_STATUS, LDMA_STATUS_CLEAR);
    this.#status = status;
    return true;
  }

  result(): NTSTATUS {
    return (this.#status & (LDMA_STATUS_DMA_ERROR | LDMA_STATUS_LENGTH_ERROR)) === 0
      ? STATUS_SUCCESS
      : STATUS_IO_DEVICE_ERROR;
  }

  shutdown(): void {
    this.#write(LDMA_REG_STATUS, LDMA_STATUS_CLEAR);
  }

  #write(offset: number, value: number): void {
    this.#kernel.WRITE_REGISTER_ULONG(this.#registers + offset, value);
  }
}
