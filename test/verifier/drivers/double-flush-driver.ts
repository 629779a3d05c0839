import type { DmaTestExtension } from "./dma-test-driver.js";
import { PacketTestDriver } from "./packet-test-driver.js";

/** 0xE6/0x16: flushes its transfer twice before freeing the map registers. */
export class DoubleFlushDriver extends PacketTestDriver {
  readonly serviceName = "dblflush";

  protected override endPacket(extension: DmaTestExtension): void {
    const k = this.kernel;
    const mdl = extension.irp!.MdlAddress!;
    this.ops(extension).FlushAdapterBuffers(
      extension.adapter!,
      mdl,
      extension.base,
      k.MmGetMdlVirtualAddress(mdl),
      k.MmGetMdlByteCount(mdl),
      extension.writeToDevice,
    );
    super.endPacket(extension);
  }
}
