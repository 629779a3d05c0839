import {
  type DEVICE_DESCRIPTION,
  DEVICE_DESCRIPTION_VERSION3,
  IoModifyAccess,
  type IRP,
  KernelMode,
  NonPagedPool,
  type NTSTATUS,
} from "../../../src/ddi/index.js";
import { DmaTestDriver, type DmaTestExtension } from "./dma-test-driver.js";

/**
 * 0xE6/0x22: turns a locked MDL into a common buffer (CreateCommonBufferFromMdl) without mapping
 * it into system space first (MmGetSystemAddressForMdlSafe).
 */
export class NotSystemMappedDriver extends DmaTestDriver {
  readonly serviceName = "nosysva";

  protected override description(): DEVICE_DESCRIPTION {
    return { ...super.description(), Version: DEVICE_DESCRIPTION_VERSION3, DmaAddressWidth: 64 };
  }

  protected override control(extension: DmaTestExtension, _irp: IRP): NTSTATUS {
    const k = this.kernel;
    const va = k.ExAllocatePoolWithTag(NonPagedPool, 8192, "Test");
    const mdl = k.IoAllocateMdl(va, 8192, false, false, undefined)!;
    k.MmProbeAndLockPages(mdl, KernelMode, IoModifyAccess);
    this.buffers.push({ va, mdl });
    const { Status } = this.ops(extension).CreateCommonBufferFromMdl(extension.adapter!, mdl, []);
    this.log.push(`status 0x${Status.toString(16)}`);
    return Status;
  }
}
