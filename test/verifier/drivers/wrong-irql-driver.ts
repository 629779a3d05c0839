import { type IRP, NT_SUCCESS } from "../../../src/ddi/index.js";
import { DmaTestDriver, type DmaTestExtension } from "./dma-test-driver.js";

/** 0xE6/0x13: calls GetScatterGatherList from its dispatch routine, at PASSIVE_LEVEL. */
export class WrongIrqlDriver extends DmaTestDriver {
  readonly serviceName = "irql";

  protected override startScatterGather(extension: DmaTestExtension, irp: IRP): void {
    const k = this.kernel;
    const mdl = irp.MdlAddress!;
    const status = this.ops(extension).GetScatterGatherList(
      extension.adapter!,
      extension.fdo,
      mdl,
      k.MmGetMdlVirtualAddress(mdl),
      k.MmGetMdlByteCount(mdl),
      (_device, _irp, list) => this.listReady(extension, list),
      irp,
      extension.writeToDevice,
    );
    if (!NT_SUCCESS(status)) this.complete(extension, status, 0);
  }
}
