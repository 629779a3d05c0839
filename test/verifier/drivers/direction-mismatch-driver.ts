import { STATUS_SUCCESS } from "../../../src/ddi/index.js";
import { DmaTestDriver, type DmaTestExtension } from "./dma-test-driver.js";

/** dma-debug "frees DMA memory with different direction": puts a receive list back as a send list. */
export class DirectionMismatchDriver extends DmaTestDriver {
  readonly serviceName = "direction";
  protected override readonly dma64 = false;

  /** Where the device was told to write. */
  address = 0;

  protected override endScatterGather(extension: DmaTestExtension): void {
    this.address = extension.list!.Elements[0]!.Address;
    this.ops(extension).PutScatterGatherList(extension.adapter!, extension.list!, !extension.writeToDevice);
    extension.list = undefined;
    this.complete(extension, STATUS_SUCCESS, this.kernel.MmGetMdlByteCount(extension.irp!.MdlAddress!));
  }
}
