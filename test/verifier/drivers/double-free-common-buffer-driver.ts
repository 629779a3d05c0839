import {
  type PHYSICAL_ADDRESS,
  type PVOID,
  STATUS_INSUFFICIENT_RESOURCES,
  STATUS_SUCCESS,
} from "../../../src/ddi/index.js";
import { DmaTestDriver, type DmaTestExtension } from "./dma-test-driver.js";

/** 0xE6/0x03: frees its ring's common buffer twice when the device stops. */
export class DoubleFreeCommonBufferDriver extends DmaTestDriver {
  readonly serviceName = "dblcb";
  ring: { va: PVOID; la: PHYSICAL_ADDRESS } | undefined;

  protected override started(extension: DmaTestExtension): number {
    const { VirtualAddress, LogicalAddress } = this.ops(extension).AllocateCommonBuffer(
      extension.adapter!,
      4096,
      true,
    );
    if (VirtualAddress === 0) return STATUS_INSUFFICIENT_RESOURCES;
    this.ring = { va: VirtualAddress, la: LogicalAddress };
    return STATUS_SUCCESS;
  }

  protected override stopping(extension: DmaTestExtension): void {
    const { va, la } = this.ring!;
    this.ops(extension).FreeCommonBuffer(extension.adapter!, 4096, la, va, true);
    this.ops(extension).FreeCommonBuffer(extension.adapter!, 4096, la, va, true);
  }
}
