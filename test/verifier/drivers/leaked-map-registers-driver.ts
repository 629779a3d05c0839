import {
  DeallocateObjectKeepRegisters,
  type IRP,
  type NTSTATUS,
  STATUS_SUCCESS,
} from "../../../src/ddi/index.js";
import { DmaTestDriver, type DmaTestExtension } from "./dma-test-driver.js";

/** 0xE6/0x09: keeps three map registers and never calls FreeMapRegisters. */
export class LeakedMapRegistersDriver extends DmaTestDriver {
  readonly serviceName = "leakmr";

  protected override control(extension: DmaTestExtension, _irp: IRP): NTSTATUS {
    this.atDispatch(() =>
      this.ops(extension).AllocateAdapterChannel(
        extension.adapter!,
        extension.fdo,
        3,
        () => DeallocateObjectKeepRegisters,
        undefined,
      ),
    );
    return STATUS_SUCCESS;
  }
}
