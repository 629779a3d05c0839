/**
 * The driver every IOMMU talk warns about (the seed's "What is DMA, part 9"): a perfectly ordinary
 * WDM driver (AddDevice, START with its DMA adapter, StartIo, ISR, DpcForIsr) except for one
 * shortcut: it gives its chip the result of MmGetPhysicalAddress instead of an address from the
 * adapter. It even gets an adapter, as real drivers do, and never uses it for a transfer.
 *
 * Without remapping this "works" on a 64-bit chip, and on a 32-bit chip silently writes somewhere
 * else when the buffer is above 4 GiB. With remapping on, the chip's domain has no such address:
 * the IOMMU faults and the data never moves. It runs two chips, told apart by the NVMe version
 * register: the NVMe-like controller ("bypass64") and the legacy bus master ("bypass32").
 */
import {
  type CM_PARTIAL_RESOURCE_DESCRIPTOR,
  type DEVICE_OBJECT,
  type DMA_ADAPTER,
  DO_DEVICE_INITIALIZING,
  DO_DIRECT_IO,
  type DRIVER_OBJECT,
  type DriverContribution,
  FILE_DEVICE_CONTROLLER,
  FILE_DEVICE_SECURE_OPEN,
  IO_NO_INCREMENT,
  type IRP,
  IRP_MJ_PNP,
  IRP_MJ_READ,
  IRP_MJ_WRITE,
  IRP_MN_REMOVE_DEVICE,
  IRP_MN_START_DEVICE,
  IRP_MN_STOP_DEVICE,
  IRP_MN_SURPRISE_REMOVAL,
  inject,
  injectable,
  type KDPC,
  Kernel,
  type KINTERRUPT,
  LevelSensitive,
  MmNonCached,
  NormalPagePriority,
  NT_SUCCESS,
  type NTSTATUS,
  type PVOID,
  STATUS_DEVICE_NOT_READY,
  STATUS_INSUFFICIENT_RESOURCES,
  STATUS_INVALID_PARAMETER,
  STATUS_NO_SUCH_DEVICE,
  STATUS_PENDING,
  STATUS_SUCCESS,
} from "../../src/ddi/index.js";
import type { BypassChip } from "./bypass-chip.js";
import {
  LDMA_DEVICE_ID,
  LDMA_VENDOR_ID,
  NVME_DEVICE_ID,
  NVME_REG_VS,
  NVME_VENDOR_ID,
  NVME_VS_1_4,
} from "./bypass-hw.js";
import { BypassLegacyChip } from "./bypass-legacy-chip.js";
import { BypassNvmeChip } from "./bypass-nvme-chip.js";

export interface BypassStatistics {
  requests: number;
  interrupts: number;
  failures: number;
  /** The physical addresses the driver programmed, in order: what a trace of its chip shows. */
  readonly programmed: number[];
}

interface BypassExtension {
  readonly pdo: DEVICE_OBJECT;
  readonly fdo: DEVICE_OBJECT;
  readonly lower: DEVICE_OBJECT;
  registers: PVOID;
  registerLength: number;
  interrupt: KINTERRUPT | undefined;
  adapter: DMA_ADAPTER | undefined;
  chip: BypassChip | undefined;
  readonly stats: BypassStatistics;
}

@injectable()
export class BypassDriver implements DriverContribution {
  readonly serviceName = "bypasssim";
  readonly hardwareIds = [
    `PCI\\VEN_${hex4(NVME_VENDOR_ID)}&DEV_${hex4(NVME_DEVICE_ID)}`,
    `PCI\\VEN_${hex4(LDMA_VENDOR_ID)}&DEV_${hex4(LDMA_DEVICE_ID)}`,
  ];
  readonly #kernel: Kernel;
  #instances = 0;

  constructor(@inject(Kernel) kernel: Kernel) {
    this.#kernel = kernel;
  }

  DriverEntry(DriverObject: DRIVER_OBJECT, _RegistryPath: string): NTSTATUS {
    DriverObject.MajorFunction[IRP_MJ_PNP] = (device, irp) => this.#dispatchPnp(device, irp);
    DriverObject.MajorFunction[IRP_MJ_READ] = (device, irp) => this.#dispatchReadWrite(device, irp);
    DriverObject.MajorFunction[IRP_MJ_WRITE] = (device, irp) => this.#dispatchReadWrite(device, irp);
    DriverObject.DriverExtension.AddDevice = (driver, pdo) => this.#addDevice(driver, pdo);
    DriverObject.DriverStartIo = (device, irp) => this.#startIo(device, irp);
    DriverObject.DriverUnload = () => {};
    return STATUS_SUCCESS;
  }

  statistics(DeviceObject: DEVICE_OBJECT): Readonly<BypassStatistics> {
    return (DeviceObject.DeviceExtension as BypassExtension).stats;
  }

  #addDevice(DriverObject: DRIVER_OBJECT, PhysicalDeviceObject: DEVICE_OBJECT): NTSTATUS {
    const k = this.#kernel;
    const name = `\\Device\\BypassSim${this.#instances++}`;
    const created = k.IoCreateDevice(
      DriverObject,
      0,
      name,
      FILE_DEVICE_CONTROLLER,
      FILE_DEVICE_SECURE_OPEN,
      false,
    );
    if (!NT_SUCCESS(created.Status)) return created.Status;
    const fdo = created.DeviceObject!;
    const lower = k.IoAttachDeviceToDeviceStack(fdo, PhysicalDeviceObject);
    if (lower === undefined) {
      k.IoDeleteDevice(fdo);
      return STATUS_NO_SUCH_DEVICE;
    }
    const extension: BypassExtension = {
      pdo: PhysicalDeviceObject,
      fdo,
      lower,
      registers: 0,
      registerLength: 0,
      interrupt: undefined,
      adapter: undefined,
      chip: undefined,
      stats: { requests: 0, interrupts: 0, failures: 0, programmed: [] },
    };
    fdo.DeviceExtension = extension;
    fdo.Flags |= DO_DIRECT_IO;
    fdo.Flags &= ~DO_DEVICE_INITIALIZING;
    return STATUS_SUCCESS;
  }

  #dispatchPnp(DeviceObject: DEVICE_OBJECT, Irp: IRP): NTSTATUS {
    const k = this.#kernel;
    const extension = DeviceObject.DeviceExtension as BypassExtension;
    const stack = k.IoGetCurrentIrpStackLocation(Irp);
    let status = Irp.IoStatus.Status;
    switch (stack.MinorFunction) {
      case IRP_MN_START_DEVICE:
        status = this.#start(extension, stack.Parameters.StartDevice?.AllocatedResourcesTranslated ?? []);
        if (!NT_SUCCESS(status)) this.#release(extension);
        break;
      case IRP_MN_STOP_DEVICE:
      case IRP_MN_SURPRISE_REMOVAL:
        this.#release(extension);
        status = STATUS_SUCCESS;
        break;
      case IRP_MN_REMOVE_DEVICE:
        this.#release(extension);
        k.IoDetachDevice(extension.lower);
        k.IoDeleteDevice(DeviceObject);
        status = STATUS_SUCCESS;
        break;
    }
    Irp.IoStatus.Status = status;
    k.IoCompleteRequest(Irp, IO_NO_INCREMENT);
    return status;
  }

  #start(extension: BypassExtension, resources: readonly CM_PARTIAL_RESOURCE_DESCRIPTOR[]): NTSTATUS {
    const k = this.#kernel;
    for (const resource of resources) {
      if (resource.Type === "CmResourceTypeMemory") {
        extension.registers = k.MmMapIoSpace(resource.Start, resource.Length, MmNonCached);
        extension.registerLength = resource.Length;
      } else {
        const connected = k.IoConnectInterrupt(
          (interrupt, context) => this.#isr(interrupt, context as BypassExtension),
          extension,
          undefined,
          resource.Vector,
          resource.Level,
          resource.Level,
          LevelSensitive,
          false,
          1,
          false,
        );
        if (!NT_SUCCESS(connected.Status)) return connected.Status;
        extension.interrupt = connected.InterruptObject;
      }
    }
    if (extension.registers === 0 || extension.interrupt === undefined) return STATUS_INSUFFICIENT_RESOURCES;
    const nvme = k.READ_REGISTER_ULONG(extension.registers + NVME_REG_VS) === NVME_VS_1_4;
    const chip = nvme
      ? new BypassNvmeChip(k, extension.registers)
      : new BypassLegacyChip(k, extension.registers);
    // An adapter, as every DMA driver gets one. The transfers below never ask it for an address.
    const { Adapter } = k.IoGetDmaAdapter(extension.pdo, chip.description());
    if (Adapter === undefined) return STATUS_INSUFFICIENT_RESOURCES;
    extension.adapter = Adapter;
    const status = chip.initialize();
    if (!NT_SUCCESS(status)) return status;
    extension.chip = chip;
    k.IoInitializeDpcRequest(extension.fdo, (dpc, device) => this.#dpcForIsr(dpc, device));
    return STATUS_SUCCESS;
  }

  #release(extension: BypassExtension): void {
    const k = this.#kernel;
    extension.chip?.shutdown();
    extension.chip = undefined;
    if (extension.interrupt !== undefined) k.IoDisconnectInterrupt(extension.interrupt);
    extension.interrupt = undefined;
    if (extension.adapter !== undefined) extension.adapter.DmaOperations.PutDmaAdapter(extension.adapter);
    extension.adapter = undefined;
    if (extension.registers !== 0) k.MmUnmapIoSpace(extension.registers, extension.registerLength);
    extension.registers = 0;
  }

  #dispatchReadWrite(DeviceObject: DEVICE_OBJECT, Irp: IRP): NTSTATUS {
    const k = this.#kernel;
    const extension = DeviceObject.DeviceExtension as BypassExtension;
    const chip = extension.chip;
    if (chip === undefined) return this.#complete(Irp, STATUS_DEVICE_NOT_READY, 0);
    const mdl = Irp.MdlAddress;
    if (mdl === undefined || k.MmGetMdlByteCount(mdl) > chip.maximumTransfer)
      return this.#complete(Irp, STATUS_INVALID_PARAMETER, 0);
    k.IoMarkIrpPending(Irp);
    k.IoStartPacket(DeviceObject, Irp, undefined, undefined);
    return STATUS_PENDING;
  }

  /** StartIo: the shortcut. The chip gets physical addresses of the buffer, not logical ones. */
  #startIo(DeviceObject: DEVICE_OBJECT, Irp: IRP): void {
    const k = this.#kernel;
    const extension = DeviceObject.DeviceExtension as BypassExtension;
    const stack = k.IoGetCurrentIrpStackLocation(Irp);
    const write = stack.MajorFunction === IRP_MJ_WRITE;
    const mdl = Irp.MdlAddress!;
    const va = k.MmGetSystemAddressForMdlSafe(mdl, NormalPagePriority);
    extension.stats.requests++;
    k.KeFlushIoBuffers(mdl, !write, true);
    const byteOffset = (write ? stack.Parameters.Write?.ByteOffset : stack.Parameters.Read?.ByteOffset) ?? 0;
    const transfer = { va, length: k.MmGetMdlByteCount(mdl), write, byteOffset };
    if (va !== 0) extension.stats.programmed.push(k.MmGetPhysicalAddress(va));
    if (va === 0 || !extension.chip!.start(transfer))
      this.#finish(extension, Irp, STATUS_INVALID_PARAMETER, 0);
  }

  #isr(_interrupt: KINTERRUPT, extension: BypassExtension): boolean {
    if (extension.chip === undefined || !extension.chip.interrupted()) return false;
    extension.stats.interrupts++;
    this.#kernel.IoRequestDpc(extension.fdo, extension.fdo.CurrentIrp, undefined);
    return true;
  }

  #dpcForIsr(_dpc: KDPC, DeviceObject: DEVICE_OBJECT): void {
    const extension = DeviceObject.DeviceExtension as BypassExtension;
    const irp = DeviceObject.CurrentIrp;
    if (irp === undefined || extension.chip === undefined) return;
    const status = extension.chip.result();
    this.#finish(
      extension,
      irp,
      status,
      NT_SUCCESS(status) ? this.#kernel.MmGetMdlByteCount(irp.MdlAddress!) : 0,
    );
  }

  #finish(extension: BypassExtension, Irp: IRP, status: NTSTATUS, information: number): void {
    if (!NT_SUCCESS(status)) extension.stats.failures++;
    Irp.IoStatus.Status = status;
    Irp.IoStatus.Information = information;
    this.#kernel.IoStartNextPacket(extension.fdo, false);
    this.#kernel.IoCompleteRequest(Irp, IO_NO_INCREMENT);
  }

  #complete(Irp: IRP, status: NTSTATUS, information: number): NTSTATUS {
    Irp.IoStatus.Status = status;
    Irp.IoStatus.Information = information;
    this.#kernel.IoCompleteRequest(Irp, IO_NO_INCREMENT);
    return status;
  }
}

function hex4(value: number): string {
  return value.toString(16).toUpperCase().padStart(4, "0");
}
