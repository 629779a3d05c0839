import { type IRP, type NTSTATUS, STATUS_SUCCESS } from "../../../src/ddi/index.js";
import { DmaTestDriver, type DmaTestExtension } from "./dma-test-driver.js";

/** 0xE6/0x18: puts its adapter back, then asks it for its alignment. */
export class ReleasedAdapterDriver extends DmaTestDriver {
  readonly serviceName = "released";

  protected override control(extension: DmaTestExtension, _irp: IRP): NTSTATUS {
    const adapter = extension.adapter!;
    extension.adapter = undefined;
    adapter.DmaOperations.PutDmaAdapter(adapter);
    this.log.push(`alignment ${adapter.DmaOperations.GetDmaAlignment(adapter)}`);
    return STATUS_SUCCESS;
  }
}
