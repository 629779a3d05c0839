import {
  type IRP,
  type NTSTATUS,
  type PVOID,
  STATUS_INSUFFICIENT_RESOURCES,
  STATUS_SUCCESS,
} from "../../../src/ddi/index.js";
import { DmaTestDriver, type DmaTestExtension } from "./dma-test-driver.js";

/**
 * 0xE6/0x0F, driver side: writes `overrun` bytes at `at` bytes from the start of its 100-byte
 * common buffer (a record copied one field too far), and frees the buffer when the device stops.
 */
export class CommonBufferOverrunDriver extends DmaTestDriver {
  readonly serviceName = "cbover";
  static readonly bufferLength = 100;
  /** Where the stray write starts, from the buffer's start, and how long it is. */
  at = CommonBufferOverrunDriver.bufferLength;
  overrun = 4;
  buffer: { va: PVOID; la: number } | undefined;

  protected override started(extension: DmaTestExtension): number {
    const { VirtualAddress, LogicalAddress } = this.ops(extension).AllocateCommonBuffer(
      extension.adapter!,
      CommonBufferOverrunDriver.bufferLength,
      true,
    );
    if (VirtualAddress === 0) return STATUS_INSUFFICIENT_RESOURCES;
    this.buffer = { va: VirtualAddress, la: LogicalAddress };
    return STATUS_SUCCESS;
  }

  protected override control(_extension: DmaTestExtension, _irp: IRP): NTSTATUS {
    this.kernel.WriteMemory(this.buffer!.va + this.at, new Uint8Array(this.overrun).fill(0xee));
    return STATUS_SUCCESS;
  }

  protected override stopping(extension: DmaTestExtension): void {
    const { va, la } = this.buffer!;
    this.ops(extension).FreeCommonBuffer(
      extension.adapter!,
      CommonBufferOverrunDriver.bufferLength,
      la,
      va,
      true,
    );
  }
}
