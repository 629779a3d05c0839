import {
  DeallocateObjectKeepRegisters,
  type IRP,
  type MAP_REGISTER_BASE,
  type NTSTATUS,
  STATUS_SUCCESS,
} from "../../../src/ddi/index.js";
import { DmaTestDriver, type DmaTestExtension } from "./dma-test-driver.js";

/** 0xE6/0x05: keeps two map registers (DeallocateObjectKeepRegisters), then frees them twice. */
export class DoubleFreeMapRegistersDriver extends DmaTestDriver {
  readonly serviceName = "dblmr";

  protected override control(extension: DmaTestExtension, _irp: IRP): NTSTATUS {
    const ops = this.ops(extension);
    const adapter = extension.adapter!;
    let base: MAP_REGISTER_BASE | undefined;
    this.atDispatch(() => {
      ops.AllocateAdapterChannel(
        adapter,
        extension.fdo,
        2,
        (_device, _irp, mapRegisterBase) => {
          base = mapRegisterBase;
          return DeallocateObjectKeepRegisters;
        },
        undefined,
      );
      ops.FreeMapRegisters(adapter, base, 2);
      ops.FreeMapRegisters(adapter, base, 2);
    });
    return STATUS_SUCCESS;
  }
}
