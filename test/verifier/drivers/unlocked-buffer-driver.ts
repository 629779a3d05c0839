import { type IRP, type NTSTATUS, STATUS_SUCCESS } from "../../../src/ddi/index.js";
import { DmaTestDriver, type DmaTestExtension } from "./dma-test-driver.js";

/** 0xE6/0x0E: builds a scatter/gather list over an MDL it never locked or built. */
export class UnlockedBufferDriver extends DmaTestDriver {
  readonly serviceName = "unlocked";

  protected override control(extension: DmaTestExtension, _irp: IRP): NTSTATUS {
    const { va, mdl } = this.ownBuffer(4096, false);
    const status = this.atDispatch(() =>
      this.ops(extension).GetScatterGatherList(
        extension.adapter!,
        extension.fdo,
        mdl,
        va,
        4096,
        (_device, _irp, list) => this.ops(extension).PutScatterGatherList(extension.adapter!, list, false),
        undefined,
        false,
      ),
    );
    this.log.push(`status ${status}`);
    return STATUS_SUCCESS;
  }
}
