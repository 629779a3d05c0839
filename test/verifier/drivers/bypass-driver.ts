import type { SCATTER_GATHER_LIST } from "../../../src/ddi/index.js";
import { DmaTestDriver, type DmaTestExtension } from "./dma-test-driver.js";

/**
 * 0xE6/0x26: gets its list like everyone, but programs the device with MmGetPhysicalAddress of the
 * buffer instead of the list's logical address (the bypassing driver of the seed).
 */
export class BypassDriver extends DmaTestDriver {
  readonly serviceName = "bypass";

  protected override listReady(extension: DmaTestExtension, list: SCATTER_GATHER_LIST): void {
    const k = this.kernel;
    const mdl = extension.irp!.MdlAddress!;
    extension.list = list;
    const physical = k.MmGetPhysicalAddress(k.MmGetMdlVirtualAddress(mdl));
    this.program(extension, physical, k.MmGetMdlByteCount(mdl), 0);
  }
}
