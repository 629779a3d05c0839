import { DeallocateObjectKeepRegisters, type IRP, type NTSTATUS } from "../../../src/ddi/index.js";
import { DmaTestDriver, type DmaTestExtension } from "./dma-test-driver.js";

/** 0xE6/0x15: asks for one map register more than IoGetDmaAdapter allowed, and ignores the status. */
export class OverMaximumDriver extends DmaTestDriver {
  readonly serviceName = "overmax";

  protected override control(extension: DmaTestExtension, _irp: IRP): NTSTATUS {
    const status = this.atDispatch(() =>
      this.ops(extension).AllocateAdapterChannel(
        extension.adapter!,
        extension.fdo,
        extension.numberOfMapRegisters + 1,
        () => {
          this.log.push("AdapterControl ran");
          return DeallocateObjectKeepRegisters;
        },
        undefined,
      ),
    );
    this.log.push(`status 0x${status.toString(16)}`);
    return status;
  }
}
