import { type IRP, KeepObject, type NTSTATUS, STATUS_SUCCESS } from "../../../src/ddi/index.js";
import { DmaTestDriver, type DmaTestExtension } from "./dma-test-driver.js";

/** 0xE6/0x0B: keeps the adapter channel (KeepObject), then asks for another one. */
export class SecondChannelDriver extends DmaTestDriver {
  readonly serviceName = "twoch";

  protected override control(extension: DmaTestExtension, _irp: IRP): NTSTATUS {
    const ops = this.ops(extension);
    this.atDispatch(() => {
      ops.AllocateAdapterChannel(
        extension.adapter!,
        extension.fdo,
        0,
        () => {
          this.log.push("first channel");
          return KeepObject;
        },
        undefined,
      );
      ops.AllocateAdapterChannel(
        extension.adapter!,
        extension.fdo,
        0,
        () => {
          this.log.push("second channel");
          return KeepObject;
        },
        undefined,
      );
    });
    return STATUS_SUCCESS;
  }
}
