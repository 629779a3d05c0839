import { STATUS_INSUFFICIENT_RESOURCES, STATUS_SUCCESS } from "../../../src/ddi/index.js";
import { DmaTestDriver, type DmaTestExtension } from "./dma-test-driver.js";

/** 0xE6/0x07: allocates a common buffer at START and puts the adapter back without freeing it. */
export class LeakedCommonBufferDriver extends DmaTestDriver {
  readonly serviceName = "leakcb";

  protected override started(extension: DmaTestExtension): number {
    const { VirtualAddress } = this.ops(extension).AllocateCommonBuffer(extension.adapter!, 8192, true);
    return VirtualAddress === 0 ? STATUS_INSUFFICIENT_RESOURCES : STATUS_SUCCESS;
  }
}
