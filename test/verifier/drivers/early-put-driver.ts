import type { SCATTER_GATHER_LIST } from "../../../src/ddi/index.js";
import { STATUS_SUCCESS } from "../../../src/ddi/index.js";
import { DmaTestDriver, type DmaTestExtension } from "./dma-test-driver.js";

/**
 * 0xE6/0x0F (p2 = 3): puts its receive list back right after starting the device, not after the
 * device finished: the device then writes map registers nobody maps any more. A 32-bit device, so
 * that without remapping its buffers above 4 GiB bounce.
 */
export class EarlyPutDriver extends DmaTestDriver {
  readonly serviceName = "earlyput";
  protected override readonly dma64 = false;

  /** Where the device was told to write. */
  address = 0;

  protected override listReady(extension: DmaTestExtension, list: SCATTER_GATHER_LIST): void {
    this.address = list.Elements[0]!.Address;
    super.listReady(extension, list);
    this.ops(extension).PutScatterGatherList(extension.adapter!, list, extension.writeToDevice);
    extension.list = undefined;
  }

  protected override endScatterGather(extension: DmaTestExtension): void {
    this.complete(extension, STATUS_SUCCESS, this.kernel.MmGetMdlByteCount(extension.irp!.MdlAddress!));
  }
}
