import { STATUS_SUCCESS } from "../../../src/ddi/index.js";
import type { DmaTestExtension } from "./dma-test-driver.js";
import { PacketTestDriver } from "./packet-test-driver.js";

/** dma-debug "syncs DMA memory outside allocated range": flushes 100 bytes less than it mapped. */
export class PartialFlushDriver extends PacketTestDriver {
  readonly serviceName = "partialflush";

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
      length - 100,
      extension.writeToDevice,
    );
    ops.FreeMapRegisters(extension.adapter!, extension.base, extension.registersHeld);
    this.complete(extension, STATUS_SUCCESS, length);
  }
}
