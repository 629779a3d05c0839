import { type DMA_ADAPTER, type IRP, type NTSTATUS, STATUS_SUCCESS } from "../../../src/ddi/index.js";
import { DmaTestDriver, type DmaTestExtension } from "./dma-test-driver.js";

/** 0xE6/0x19: passes a NULL DMA_ADAPTER (an adapter pointer it never set) to GetDmaAlignment. */
export class NullAdapterDriver extends DmaTestDriver {
  readonly serviceName = "nulladapter";
  readonly spare: DMA_ADAPTER | undefined = undefined;

  protected override control(extension: DmaTestExtension, _irp: IRP): NTSTATUS {
    this.log.push(`alignment ${this.ops(extension).GetDmaAlignment(this.spare as DMA_ADAPTER)}`);
    return STATUS_SUCCESS;
  }
}
