import {
  DeallocateObjectKeepRegisters,
  type IRP,
  type MAP_REGISTER_BASE,
  type NTSTATUS,
  STATUS_SUCCESS,
} from "../../../src/ddi/index.js";
import type { DmaTestExtension } from "./dma-test-driver.js";
import { PacketTestDriver } from "./packet-test-driver.js";

/** 0xE6/0x20: flushes map registers it got but never mapped anything with (a skipped MapTransfer). */
export class NeverMappedFlushDriver extends PacketTestDriver {
  readonly serviceName = "nevermapped";

  protected override control(extension: DmaTestExtension, _irp: IRP): NTSTATUS {
    const ops = this.ops(extension);
    const adapter = extension.adapter!;
    const { va, mdl } = this.ownBuffer(4096);
    let base: MAP_REGISTER_BASE | undefined;
    this.atDispatch(() => {
      ops.AllocateAdapterChannel(
        adapter,
        extension.fdo,
        1,
        (_device, _irp, mapRegisterBase) => {
          base = mapRegisterBase;
          return DeallocateObjectKeepRegisters;
        },
        undefined,
      );
      ops.FlushAdapterBuffers(adapter, mdl, base, va, 4096, false);
      ops.FreeMapRegisters(adapter, base, 1);
    });
    return STATUS_SUCCESS;
  }
}
