import { STATUS_INSUFFICIENT_RESOURCES, STATUS_SUCCESS } from "../../../src/ddi/index.js";
import { DmaTestDriver, type DmaTestExtension } from "./dma-test-driver.js";

/**
 * dma-debug "pending DMA allocations while released from device": allocates a common buffer at
 * START and, on REMOVE, forgets both the buffer and PutDmaAdapter.
 */
export class LeakAtUnloadDriver extends DmaTestDriver {
  readonly serviceName = "leakunload";

  protected override started(extension: DmaTestExtension): number {
    const { VirtualAddress } = this.ops(extension).AllocateCommonBuffer(extension.adapter!, 4096, true);
    return VirtualAddress === 0 ? STATUS_INSUFFICIENT_RESOURCES : STATUS_SUCCESS;
  }

  protected override release(extension: DmaTestExtension): void {
    const k = this.kernel;
    if (extension.interrupt !== undefined) k.IoDisconnectInterrupt(extension.interrupt);
    if (extension.registers !== 0) k.MmUnmapIoSpace(extension.registers, extension.registerLength);
    extension.interrupt = undefined;
    extension.registers = 0;
  }
}
