import {
  DeallocateObjectKeepRegisters,
  type IO_ALLOCATION_ACTION,
  type MAP_REGISTER_BASE,
} from "../../../src/ddi/index.js";
import type { DmaTestExtension } from "./dma-test-driver.js";
import { PacketTestDriver } from "./packet-test-driver.js";

/** 0xE6/0x21: maps zero bytes (a length it computed as "remaining" once nothing remained). */
export class ZeroLengthMapDriver extends PacketTestDriver {
  readonly serviceName = "zeromap";

  protected override channelReady(
    extension: DmaTestExtension,
    base: MAP_REGISTER_BASE | undefined,
    registers: number,
  ): IO_ALLOCATION_ACTION {
    const mdl = extension.irp!.MdlAddress!;
    extension.base = base;
    extension.registersHeld = registers;
    this.ops(extension).MapTransfer(
      extension.adapter!,
      mdl,
      base,
      this.kernel.MmGetMdlVirtualAddress(mdl),
      0,
      extension.writeToDevice,
    );
    return DeallocateObjectKeepRegisters;
  }
}
