import { type IRP, type NTSTATUS, type SCATTER_GATHER_LIST, STATUS_SUCCESS } from "../../../src/ddi/index.js";
import { DmaTestDriver, type DmaTestExtension } from "./dma-test-driver.js";

/** 0xE6/0x1D: builds a second receive list over a buffer whose first list is still out. */
export class DoubleMappingDriver extends DmaTestDriver {
  readonly serviceName = "dblmap";

  protected override control(extension: DmaTestExtension, _irp: IRP): NTSTATUS {
    const ops = this.ops(extension);
    const adapter = extension.adapter!;
    const { va, mdl } = this.ownBuffer(2048);
    const lists: SCATTER_GATHER_LIST[] = [];
    this.atDispatch(() => {
      for (let i = 0; i < 2; i++) {
        ops.GetScatterGatherList(
          adapter,
          extension.fdo,
          mdl,
          va,
          2048,
          (_d, _i, list) => lists.push(list),
          undefined,
          false,
        );
      }
      for (const list of lists) ops.PutScatterGatherList(adapter, list, false);
    });
    return STATUS_SUCCESS;
  }
}
