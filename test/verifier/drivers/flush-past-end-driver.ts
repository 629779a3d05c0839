import { STATUS_SUCCESS } from "../../../src/ddi/index.js";
import type { DmaTestExtension } from "./dma-test-driver.js";
import { PacketTestDriver } from "./packet-test-driver.js";

/** 0xE6/0x00 (p2 = 1): flushes 8 bytes more than the MDL has left (it rounded the length up). */
export class FlushPastEndDriver extends PacketTestDriver {
  readonly serviceName = "flushpast";

  protected override endPacket(extension: DmaTestExtension): void {
    const k = this.kernel;
    const mdl = extension.irp!.MdlAddress!;
    const ops = this.ops(extension);
    const length = k.MmGetMdlByteCount(mdl);
    ops.FlushAdapterBuffers(
      extension.adapter!,
      mdl,
      extension.base,
      k.MmGetMdlVirtualAddress(mdl),
      length + 8,
      extension.writeToDevice,
    );
    ops.FreeMapRegisters(extension.adapter!, extension.base, extension.registersHeld);
    this.complete(extension, STATUS_SUCCESS, length);
  }
}
