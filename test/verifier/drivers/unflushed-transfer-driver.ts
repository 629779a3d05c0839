import {
  DeallocateObjectKeepRegisters,
  type IRP,
  type MAP_REGISTER_BASE,
  type NTSTATUS,
  STATUS_SUCCESS,
} from "../../../src/ddi/index.js";
import type { DmaTestExtension } from "./dma-test-driver.js";
import { PacketTestDriver } from "./packet-test-driver.js";

/**
 * 0xE6/0x0D: maps two one-page transfers in a row with the same map registers, meaning to flush
 * them both at the end: the first was never flushed when the second is mapped.
 */
export class UnflushedTransferDriver extends PacketTestDriver {
  readonly serviceName = "noflush";

  protected override control(extension: DmaTestExtension, _irp: IRP): NTSTATUS {
    const ops = this.ops(extension);
    const adapter = extension.adapter!;
    const first = this.ownBuffer(4096);
    const second = this.ownBuffer(4096);
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
      ops.MapTransfer(adapter, first.mdl, base, first.va, 4096, false);
      ops.MapTransfer(adapter, second.mdl, base, second.va, 4096, false);
      ops.FlushAdapterBuffers(adapter, first.mdl, base, first.va, 4096, false);
      ops.FlushAdapterBuffers(adapter, second.mdl, base, second.va, 4096, false);
      ops.FreeMapRegisters(adapter, base, 1);
    });
    return STATUS_SUCCESS;
  }
}
