import { type IRP, NT_SUCCESS } from "../../../src/ddi/index.js";
import { DmaTestDriver, type DmaTestExtension } from "./dma-test-driver.js";

/** 0xE6/0x1F: passes CurrentVa one byte before its MDL (it meant to include a header byte). */
export class VaBeforeMdlDriver extends DmaTestDriver {
  readonly serviceName = "vabefore";

  protected override startScatterGather(extension: DmaTestExtension, irp: IRP): void {
    const k = this.kernel;
    const mdl = irp.MdlAddress!;
    this.atDispatch(() => {
      const status = this.ops(extension).GetScatterGatherList(
        extension.adapter!,
        extension.fdo,
        mdl,
        k.MmGetMdlVirtualAddress(mdl) - 1,
        k.MmGetMdlByteCount(mdl),
        (_device, _irp, list) => this.listReady(extension, list),
        irp,
        extension.writeToDevice,
      );
      if (!NT_SUCCESS(status)) this.complete(extension, status, 0);
    });
  }
}
