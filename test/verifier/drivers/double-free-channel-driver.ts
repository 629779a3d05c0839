import { type IRP, KeepObject, type NTSTATUS, STATUS_SUCCESS } from "../../../src/ddi/index.js";
import { DmaTestDriver, type DmaTestExtension } from "./dma-test-driver.js";

/** 0xE6/0x04: keeps the adapter channel (KeepObject), then frees it twice. */
export class DoubleFreeChannelDriver extends DmaTestDriver {
  readonly serviceName = "dblch";

  protected override control(extension: DmaTestExtension, _irp: IRP): NTSTATUS {
    const ops = this.ops(extension);
    const adapter = extension.adapter!;
    this.atDispatch(() => {
      ops.AllocateAdapterChannel(adapter, extension.fdo, 0, () => KeepObject, undefined);
      ops.FreeAdapterChannel(adapter);
      ops.FreeAdapterChannel(adapter);
    });
    return STATUS_SUCCESS;
  }
}
