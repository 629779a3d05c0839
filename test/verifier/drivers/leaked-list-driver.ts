import { STATUS_SUCCESS } from "../../../src/ddi/index.js";
import { DmaTestDriver, type DmaTestExtension } from "./dma-test-driver.js";

/** 0xE6/0x0A: completes its transfers without PutScatterGatherList. */
export class LeakedListDriver extends DmaTestDriver {
  readonly serviceName = "leaksg";

  protected override endScatterGather(extension: DmaTestExtension): void {
    this.complete(extension, STATUS_SUCCESS, 0);
  }
}
