import { STATUS_SUCCESS } from "../../../src/ddi/index.js";
import { DmaTestDriver, type DmaTestExtension } from "./dma-test-driver.js";

/** 0xE6/0x06: puts its scatter/gather list back twice when the transfer ends. */
export class DoublePutListDriver extends DmaTestDriver {
  readonly serviceName = "dblsg";

  protected override endScatterGather(extension: DmaTestExtension): void {
    const ops = this.ops(extension);
    ops.PutScatterGatherList(extension.adapter!, extension.list!, extension.writeToDevice);
    ops.PutScatterGatherList(extension.adapter!, extension.list!, extension.writeToDevice);
    this.complete(extension, STATUS_SUCCESS, 0);
  }
}
