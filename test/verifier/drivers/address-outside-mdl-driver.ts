import type { IO_ALLOCATION_ACTION, MAP_REGISTER_BASE } from "../../../src/ddi/index.js";
import { DeallocateObjectKeepRegisters } from "../../../src/ddi/index.js";
import type { DmaTestExtension } from "./dma-test-driver.js";
import { PacketTestDriver } from "./packet-test-driver.js";

/** 0xE6/0x1B: maps from CurrentVa = the end of its MDL (an off-by-one-buffer CurrentVa). */
export class AddressOutsideMdlDriver extends PacketTestDriver {
  readonly serviceName = "outsidemdl";

  protected override channelReady(
    extension: DmaTestExtension,
    base: MAP_REGISTER_BASE | undefined,
    registers: number,
  ): IO_ALLOCATION_ACTION {
    const k = this.kernel;
    const mdl = extension.irp!.MdlAddress!;
    extension.base = base;
    extension.registersHeld = registers;
    const end = k.MmGetMdlVirtualAddress(mdl) + k.MmGetMdlByteCount(mdl);
    this.ops(extension).MapTransfer(extension.adapter!, mdl, base, end, 512, extension.writeToDevice);
    return DeallocateObjectKeepRegisters;
  }
}
