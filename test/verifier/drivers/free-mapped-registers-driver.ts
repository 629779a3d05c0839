import { STATUS_SUCCESS } from "../../../src/ddi/index.js";
import type { DmaTestExtension } from "./dma-test-driver.js";
import { PacketTestDriver } from "./packet-test-driver.js";

/** 0xE6/0x10: ends a transfer with FreeMapRegisters and no FlushAdapterBuffers. */
export class FreeMappedRegistersDriver extends PacketTestDriver {
  readonly serviceName = "freemapped";

  protected override endPacket(extension: DmaTestExtension): void {
    const length = this.kernel.MmGetMdlByteCount(extension.irp!.MdlAddress!);
    this.ops(extension).FreeMapRegisters(extension.adapter!, extension.base, extension.registersHeld);
    extension.base = undefined;
    this.complete(extension, STATUS_SUCCESS, length);
  }
}
