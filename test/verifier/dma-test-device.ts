/**
 * The bus master the verifier's buggy drivers drive. One register block, commands queued in
 * order, each one DMA through the device's port:
 *
 * - WRITE_MEMORY: write LENGTH bytes of the pattern SEED, SEED + 1, ... at ADDRESS (device to memory);
 * - READ_MEMORY: read LENGTH bytes at ADDRESS and keep them in `received` (memory to device).
 *
 * Registers are latched when COMMAND is written, so a driver may queue a command per element of
 * a scatter/gather list. Each command ends with DONE counted in STATUS and an interrupt; writing
 * STATUS acknowledges. Failed transfers (an IOMMU fault) are counted in ERRORS.
 */
import { PciDevice } from "../../src/platform/pci-device.js";
import { DMA_TEST_ID_VALUE, TestCommand, TestRegister } from "./drivers/dma-test-registers.js";

export const DMA_TEST_VENDOR_ID = 0x1af4;
export const DMA_TEST_DEVICE_ID = 0x10f1;

/** The bytes WRITE_MEMORY writes for `seed`. */
export function testPattern(seed: number, length: number): Uint8Array {
  return Uint8Array.from({ length }, (_, i) => (seed + i) % 256);
}

export class DmaTestDevice extends PciDevice {
  #addressLow = 0;
  #addressHigh = 0;
  #length = 0;
  #seed = 0;
  #done = 0;
  #errors = 0;
  /** What READ_MEMORY commands read, in order. */
  readonly received: Uint8Array[] = [];
  /** Commands started. */
  commands = 0;

  constructor() {
    super(
      {
        name: "verifier test device",
        vendorId: DMA_TEST_VENDOR_ID,
        deviceId: DMA_TEST_DEVICE_ID,
        classCode: 0xff0000,
        revisionId: 1,
      },
      { barSize: 4096 },
    );
  }

  get errors(): number {
    return this.#errors;
  }

  protected registerValue(offset: number): number {
    switch (offset) {
      case TestRegister.id:
        return DMA_TEST_ID_VALUE;
      case TestRegister.status:
        return this.#done;
      case TestRegister.errors:
        return this.#errors;
      default:
        return 0;
    }
  }

  protected onRegisterWrite(offset: number, value: number): void {
    switch (offset) {
      case TestRegister.addressLow:
        this.#addressLow = value;
        return;
      case TestRegister.addressHigh:
        this.#addressHigh = value;
        return;
      case TestRegister.length:
        this.#length = value;
        return;
      case TestRegister.seed:
        this.#seed = value;
        return;
      case TestRegister.status:
        this.#done = 0;
        return;
      case TestRegister.command:
        this.#start(value);
        return;
    }
  }

  #start(command: number): void {
    this.commands++;
    const address = this.#addressHigh * 2 ** 32 + this.#addressLow;
    const length = this.#length;
    const seed = this.#seed;
    this.afterTransfer(length, () => {
      let ok: boolean;
      if (command === TestCommand.writeMemory) {
        ok = this.port.write(address, testPattern(seed, length)).ok;
      } else {
        const bytes = new Uint8Array(length);
        ok = this.port.read(address, bytes).ok;
        this.received.push(bytes);
      }
      if (!ok) this.#errors++;
      this.#done++;
      this.raiseInterrupt();
    });
  }
}
