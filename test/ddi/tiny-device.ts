/**
 * A tiny bus-master device for the DDI tests: one command, "fill LENGTH bytes at ADDRESS with the
 * pattern SEED, SEED + 1, ...", done by DMA through its port, then DONE in STATUS and an interrupt.
 * Register offsets are shared with the tiny driver (test/ddi/drivers/tiny-driver.ts).
 */
import { PciDevice } from "../../src/platform/pci-device.js";

export const TINY_VENDOR_ID = 0x1af4;
export const TINY_DEVICE_ID = 0x10f0;
export const TINY_ID_VALUE = 0x7e57d0d0;

export class TinyDevice extends PciDevice {
  #addressLow = 0;
  #addressHigh = 0;
  #length = 0;
  #seed = 0;
  #status = 0;
  /** Commands received, for assertions. */
  commands = 0;

  constructor(deviceId = TINY_DEVICE_ID) {
    super(
      { name: "tiny test device", vendorId: TINY_VENDOR_ID, deviceId, classCode: 0xff0000, revisionId: 1 },
      { barSize: 4096 },
    );
  }

  protected registerValue(offset: number): number {
    switch (offset) {
      case 0x00:
        return TINY_ID_VALUE;
      case 0x14:
        return this.#status;
      default:
        return 0;
    }
  }

  protected onRegisterWrite(offset: number, value: number): void {
    switch (offset) {
      case 0x04:
        this.#addressLow = value;
        return;
      case 0x08:
        this.#addressHigh = value;
        return;
      case 0x0c:
        this.#length = value;
        return;
      case 0x10:
        this.#start();
        return;
      case 0x14:
        this.#status = 0;
        return;
      case 0x18:
        this.#seed = value;
        return;
    }
  }

  #start(): void {
    this.commands++;
    const address = this.#addressHigh * 2 ** 32 + this.#addressLow;
    const data = Uint8Array.from({ length: this.#length }, (_, i) => (this.#seed + i) % 256);
    this.afterTransfer(data.length, () => {
      const result = this.port.write(address, data);
      this.#status = result.ok ? 1 : 3;
      this.raiseInterrupt();
    });
  }
}
