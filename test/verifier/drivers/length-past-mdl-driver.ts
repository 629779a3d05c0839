import {
  DeallocateObjectKeepRegisters,
  type IO_ALLOCATION_ACTION,
  type MAP_REGISTER_BASE,
} from "../../../src/ddi/index.js";
import type { DmaTestExtension } from "./dma-test-driver.js";
import { PacketTestDriver } from "./packet-test-driver.js";

/** 0xE6/0x24: maps 100 bytes more than its MDL describes (the length of a header-included buffer). */
export class LengthPastMdlDriver extends PacketTestDriver {
  readonly serviceName = "pastmdl";

  protected override channelReady(
    extension: DmaTestExtension,
    base: MAP_REGISTER_BASE | undefined,
    registers: number,
  ): IO_ALLOCATION_ACTION {
    const k = this.kernel;
    const mdl = extension.irp!.MdlAddress!;
    extension.base = base;
    extension.registersHeld = registers;
    this.ops(extension).MapTransfer(
      extension.adapter!,
      mdl,
      base,
      k.MmGetMdlVirtualAddress(mdl),
      k.MmGetMdlByteCount(mdl) + 100,
      extension.writeToDevice,
    );
    return DeallocateObjectKeepRegisters;
  }
}
