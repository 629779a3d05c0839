import { type IRP, KeepObject, type NTSTATUS, STATUS_SUCCESS } from "../../../src/ddi/index.js";
import { DmaTestDriver, type DmaTestExtension } from "./dma-test-driver.js";

/** 0xE6/0x08: keeps the adapter channel (KeepObject) and never calls FreeAdapterChannel. */
export class LeakedChannelDriver extends DmaTestDriver {
  readonly serviceName = "leakch";

  protected override control(extension: DmaTestExtension, _irp: IRP): NTSTATUS {
    this.atDispatch(() =>
      this.ops(extension).AllocateAdapterChannel(
        extension.adapter!,
        extension.fdo,
        0,
        () => KeepObject,
        undefined,
      ),
    );
    return STATUS_SUCCESS;
  }
}
