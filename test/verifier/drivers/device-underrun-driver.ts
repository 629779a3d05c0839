import {
  type IRP,
  type NTSTATUS,
  type PVOID,
  STATUS_INSUFFICIENT_RESOURCES,
  STATUS_SUCCESS,
} from "../../../src/ddi/index.js";
import { DmaTestDriver, type DmaTestExtension } from "./dma-test-driver.js";

/**
 * 0xE6/0x0F, device side: programs the device to write its status block `before` bytes ahead of
 * its common buffer (a descriptor whose address was computed one header too early).
 */
export class DeviceUnderrunDriver extends DmaTestDriver {
  readonly serviceName = "cbunder";
  /** How far before the buffer the device writes, and how many bytes. */
  before = 16;
  bytes = 8;
  buffer: { va: PVOID; la: number } | undefined;

  protected override started(extension: DmaTestExtension): number {
    const { VirtualAddress, LogicalAddress } = this.ops(extension).AllocateCommonBuffer(
      extension.adapter!,
      4096,
      true,
    );
    if (VirtualAddress === 0) return STATUS_INSUFFICIENT_RESOURCES;
    this.buffer = { va: VirtualAddress, la: LogicalAddress };
    return STATUS_SUCCESS;
  }

  protected override control(extension: DmaTestExtension, _irp: IRP): NTSTATUS {
    extension.writeToDevice = false;
    this.program(extension, this.buffer!.la - this.before, this.bytes, 0);
    return STATUS_SUCCESS;
  }

  protected override stopping(extension: DmaTestExtension): void {
    const { va, la } = this.buffer!;
    this.ops(extension).FreeCommonBuffer(extension.adapter!, 4096, la, va, true);
  }
}
