/**
 * A tiny WDM function driver for the tiny test device, written the way a C driver is: DriverEntry
 * fills the dispatch table; AddDevice creates and attaches the FDO; START maps the registers,
 * connects the interrupt and gets a DMA adapter; reads go through StartIo, GetScatterGatherList
 * and the device, and complete from the DpcForIsr. It imports the DDI barrel and nothing else.
 */
import {
  type CM_PARTIAL_RESOURCE_DESCRIPTOR,
  DEVICE_DESCRIPTION_VERSION2,
  type DEVICE_OBJECT,
  type DMA_ADAPTER,
  DO_DEVICE_INITIALIZING,
  DO_DIRECT_IO,
  type DRIVER_OBJECT,
  type DriverContribution,
  FILE_DEVICE_SECURE_OPEN,
  FILE_DEVICE_UNKNOWN,
  IO_NO_INCREMENT,
  type IRP,
  IRP_MJ_PNP,
  IRP_MJ_READ,
  IRP_MN_REMOVE_DEVICE,
  IRP_MN_START_DEVICE,
  IRP_MN_STOP_DEVICE,
  IRP_MN_SURPRISE_REMOVAL,
  inject,
  injectable,
  KDPC,
  Kernel,
  type KINTERRUPT,
  type KIRQL,
  LevelSensitive,
  MmNonCached,
  NT_SUCCESS,
  type NTSTATUS,
  PCIBus,
  type PVOID,
  type SCATTER_GATHER_LIST,
  STATUS_DEVICE_DATA_ERROR,
  STATUS_INSUFFICIENT_RESOURCES,
  STATUS_NO_SUCH_DEVICE,
  STATUS_PENDING,
  STATUS_SUCCESS,
  STATUS_UNSUCCESSFUL,
  zeroedDeviceDescription,
} from "../../../src/ddi/index.js";

/** Register offsets of the tiny device. */
export const TinyRegister = {
  id: 0x00,
  addressLow: 0x04,
  addressHigh: 0x08,
  length: 0x0c,
  command: 0x10,
  status: 0x14,
  seed: 0x18,
};
export const TINY_ID_VALUE = 0x7e57d0d0;

interface TinyExtension {
  readonly pdo: DEVICE_OBJECT;
  readonly fdo: DEVICE_OBJECT;
  readonly lower: DEVICE_OBJECT;
  registers: PVOID;
  registerLength: number;
  interrupt: KINTERRUPT | undefined;
  adapter: DMA_ADAPTER | undefined;
  numberOfMapRegisters: number;
  /** The list of the transfer in flight, handed back by PutScatterGatherList in the DPC. */
  list: SCATTER_GATHER_LIST | undefined;
  seed: number;
}

@injectable()
export class TinyDriver implements DriverContribution {
  @inject(Kernel) protected readonly kernel!: Kernel;
  readonly serviceName = "tiny";
  readonly hardwareIds = ["PCI\\VEN_1AF4&DEV_10F0"];
  /** What happened, in order, for the tests to read. */
  readonly log: string[] = [];
  /** Resources START carried. */
  resources: readonly CM_PARTIAL_RESOURCE_DESCRIPTOR[] = [];
  /** IRQL seen inside the DPC and the ISR. */
  dpcIrql: KIRQL | undefined;
  isrIrql: KIRQL | undefined;
  /** Test switch: fail IRP_MN_START_DEVICE. */
  failStart = false;
  /** Test switch: pend IRP_MN_START_DEVICE and finish it from a DPC. */
  startFromDpc = false;
  #devices = 0;

  DriverEntry(DriverObject: DRIVER_OBJECT, RegistryPath: string): NTSTATUS {
    this.log.push(`DriverEntry ${RegistryPath}`);
    DriverObject.MajorFunction[IRP_MJ_PNP] = (device, irp) => this.dispatchPnp(device, irp);
    DriverObject.MajorFunction[IRP_MJ_READ] = (device, irp) => this.dispatchRead(device, irp);
    DriverObject.DriverExtension.AddDevice = (driver, pdo) => this.addDevice(driver, pdo);
    DriverObject.DriverStartIo = (device, irp) => this.startIo(device, irp);
    DriverObject.DriverUnload = () => {
      this.log.push("DriverUnload");
    };
    return STATUS_SUCCESS;
  }

  protected addDevice(DriverObject: DRIVER_OBJECT, PhysicalDeviceObject: DEVICE_OBJECT): NTSTATUS {
    const k = this.kernel;
    const name = `\\Device\\Tiny${this.#devices++}`;
    const created = k.IoCreateDevice(
      DriverObject,
      0,
      name,
      FILE_DEVICE_UNKNOWN,
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
    const extension: TinyExtension = {
      pdo: PhysicalDeviceObject,
      fdo,
      lower,
      registers: 0,
      registerLength: 0,
      interrupt: undefined,
      adapter: undefined,
      numberOfMapRegisters: 0,
      list: undefined,
      seed: 0x40,
    };
    fdo.DeviceExtension = extension;
    fdo.Flags |= DO_DIRECT_IO;
    fdo.Flags &= ~DO_DEVICE_INITIALIZING;
    this.log.push(`AddDevice ${name}`);
    return STATUS_SUCCESS;
  }

  protected dispatchPnp(DeviceObject: DEVICE_OBJECT, Irp: IRP): NTSTATUS {
    const k = this.kernel;
    const extension = DeviceObject.DeviceExtension as TinyExtension;
    const stack = k.IoGetCurrentIrpStackLocation(Irp);
    let status = Irp.IoStatus.Status;
    switch (stack.MinorFunction) {
      case IRP_MN_START_DEVICE: {
        this.log.push("START");
        const resources = stack.Parameters.StartDevice?.AllocatedResourcesTranslated ?? [];
        if (this.startFromDpc) return this.pendStart(extension, Irp, resources);
        status = this.failStart ? STATUS_UNSUCCESSFUL : this.start(extension, resources);
        break;
      }
      case IRP_MN_STOP_DEVICE:
        this.log.push("STOP");
        this.release(extension);
        status = STATUS_SUCCESS;
        break;
      case IRP_MN_SURPRISE_REMOVAL:
        this.log.push("SURPRISE_REMOVAL");
        this.release(extension);
        status = STATUS_SUCCESS;
        break;
      case IRP_MN_REMOVE_DEVICE:
        this.log.push("REMOVE");
        this.release(extension);
        k.IoDetachDevice(extension.lower);
        k.IoDeleteDevice(DeviceObject);
        status = STATUS_SUCCESS;
        break;
    }
    Irp.IoStatus.Status = status;
    k.IoCompleteRequest(Irp, IO_NO_INCREMENT);
    return status;
  }

  /** START finished later, at DISPATCH_LEVEL, as a driver waiting for its hardware would. */
  protected pendStart(
    extension: TinyExtension,
    Irp: IRP,
    resources: readonly CM_PARTIAL_RESOURCE_DESCRIPTOR[],
  ): NTSTATUS {
    const k = this.kernel;
    k.IoMarkIrpPending(Irp);
    const dpc = new KDPC();
    k.KeInitializeDpc(
      dpc,
      () => {
        Irp.IoStatus.Status = this.failStart
          ? STATUS_UNSUCCESSFUL
          : this.startAtDispatch(extension, resources);
        k.IoCompleteRequest(Irp, IO_NO_INCREMENT);
      },
      undefined,
    );
    k.KeInsertQueueDpc(dpc, undefined, undefined);
    return STATUS_PENDING;
  }

  /** The resource part of start() that is allowed at DISPATCH_LEVEL: map the registers only. */
  protected startAtDispatch(
    extension: TinyExtension,
    resources: readonly CM_PARTIAL_RESOURCE_DESCRIPTOR[],
  ): NTSTATUS {
    const memory = resources.find((r) => r.Type === "CmResourceTypeMemory");
    if (memory === undefined) return STATUS_INSUFFICIENT_RESOURCES;
    extension.registers = this.kernel.MmMapIoSpace(memory.Start, memory.Length, MmNonCached);
    extension.registerLength = memory.Length;
    return STATUS_SUCCESS;
  }

  protected start(extension: TinyExtension, resources: readonly CM_PARTIAL_RESOURCE_DESCRIPTOR[]): NTSTATUS {
    const k = this.kernel;
    this.resources = resources;
    for (const resource of resources) {
      if (resource.Type === "CmResourceTypeMemory") {
        extension.registers = k.MmMapIoSpace(resource.Start, resource.Length, MmNonCached);
        extension.registerLength = resource.Length;
      } else {
        const connected = k.IoConnectInterrupt(
          (interrupt, context) => this.isr(interrupt, context as TinyExtension),
          extension,
          undefined,
          resource.Vector,
          resource.Level,
          resource.Level,
          LevelSensitive,
          true,
          1,
          false,
        );
        if (!NT_SUCCESS(connected.Status)) return connected.Status;
        extension.interrupt = connected.InterruptObject;
      }
    }
    if (extension.registers === 0 || extension.interrupt === undefined) return STATUS_INSUFFICIENT_RESOURCES;
    if (k.READ_REGISTER_ULONG(extension.registers + TinyRegister.id) !== TINY_ID_VALUE)
      return STATUS_NO_SUCH_DEVICE;
    const description = zeroedDeviceDescription();
    description.Version = DEVICE_DESCRIPTION_VERSION2;
    description.Master = true;
    description.ScatterGather = true;
    description.Dma64BitAddresses = true;
    description.InterfaceType = PCIBus;
    description.MaximumLength = 64 * 1024;
    const { Adapter, NumberOfMapRegisters } = k.IoGetDmaAdapter(extension.pdo, description);
    if (Adapter === undefined) return STATUS_INSUFFICIENT_RESOURCES;
    extension.adapter = Adapter;
    extension.numberOfMapRegisters = NumberOfMapRegisters;
    k.IoInitializeDpcRequest(extension.fdo, (dpc, device, irp, context) =>
      this.dpcForIsr(dpc, device, irp, context as number),
    );
    this.log.push(`started registers=${extension.registers > 0} adapter=${Adapter.Version}`);
    return STATUS_SUCCESS;
  }

  protected release(extension: TinyExtension): void {
    const k = this.kernel;
    if (extension.interrupt !== undefined) k.IoDisconnectInterrupt(extension.interrupt);
    if (extension.adapter !== undefined) extension.adapter.DmaOperations.PutDmaAdapter(extension.adapter);
    if (extension.registers !== 0) k.MmUnmapIoSpace(extension.registers, extension.registerLength);
    extension.interrupt = undefined;
    extension.adapter = undefined;
    extension.registers = 0;
  }

  protected dispatchRead(DeviceObject: DEVICE_OBJECT, Irp: IRP): NTSTATUS {
    const k = this.kernel;
    k.IoMarkIrpPending(Irp);
    k.IoStartPacket(DeviceObject, Irp, undefined, undefined);
    return STATUS_PENDING;
  }

  /** StartIo, at DISPATCH_LEVEL: map the buffer, then program the device from the list callback. */
  protected startIo(DeviceObject: DEVICE_OBJECT, Irp: IRP): void {
    const k = this.kernel;
    const extension = DeviceObject.DeviceExtension as TinyExtension;
    const adapter = extension.adapter!;
    const mdl = Irp.MdlAddress!;
    const status = adapter.DmaOperations.GetScatterGatherList(
      adapter,
      DeviceObject,
      mdl,
      k.MmGetMdlVirtualAddress(mdl),
      k.MmGetMdlByteCount(mdl),
      (_device, _irp, list) => this.program(extension, list, k.MmGetMdlByteCount(mdl)),
      Irp,
      false,
    );
    if (!NT_SUCCESS(status)) this.finish(extension, Irp, status, 0);
  }

  protected program(extension: TinyExtension, list: SCATTER_GATHER_LIST, length: number): void {
    const k = this.kernel;
    extension.list = list;
    const element = list.Elements[0]!;
    const registers = extension.registers;
    k.WRITE_REGISTER_ULONG(registers + TinyRegister.addressLow, element.Address % 2 ** 32);
    k.WRITE_REGISTER_ULONG(registers + TinyRegister.addressHigh, Math.floor(element.Address / 2 ** 32));
    k.WRITE_REGISTER_ULONG(registers + TinyRegister.length, Math.min(length, element.Length));
    k.WRITE_REGISTER_ULONG(registers + TinyRegister.seed, extension.seed);
    k.WRITE_REGISTER_ULONG(registers + TinyRegister.command, 1);
  }

  protected isr(_interrupt: KINTERRUPT, extension: TinyExtension): boolean {
    const k = this.kernel;
    const status = k.READ_REGISTER_ULONG(extension.registers + TinyRegister.status);
    if ((status & 1) === 0) return false;
    this.isrIrql = k.KeGetCurrentIrql();
    k.WRITE_REGISTER_ULONG(extension.registers + TinyRegister.status, 1);
    k.IoRequestDpc(extension.fdo, extension.fdo.CurrentIrp, status);
    return true;
  }

  protected dpcForIsr(_dpc: KDPC, DeviceObject: DEVICE_OBJECT, Irp: IRP | undefined, status: number): void {
    const k = this.kernel;
    const extension = DeviceObject.DeviceExtension as TinyExtension;
    this.dpcIrql = k.KeGetCurrentIrql();
    const list = extension.list!;
    const length = list.Elements[0]!.Length;
    extension.adapter!.DmaOperations.PutScatterGatherList(extension.adapter!, list, false);
    extension.list = undefined;
    extension.seed = (extension.seed + 1) % 256;
    this.finish(extension, Irp!, (status & 2) === 0 ? STATUS_SUCCESS : STATUS_DEVICE_DATA_ERROR, length);
  }

  protected finish(extension: TinyExtension, Irp: IRP, status: NTSTATUS, information: number): void {
    const k = this.kernel;
    Irp.IoStatus.Status = status;
    Irp.IoStatus.Information = NT_SUCCESS(status) ? information : 0;
    this.log.push(`read done ${status.toString(16)}`);
    k.IoStartNextPacket(extension.fdo, false);
    k.IoCompleteRequest(Irp, IO_NO_INCREMENT);
  }
}
