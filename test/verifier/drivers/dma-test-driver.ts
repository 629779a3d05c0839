/**
 * A correct WDM bus-master driver for the verifier's test device, written as a C driver is and
 * importing only the DDI barrel. The buggy drivers extend it and change one step, so each commits
 * exactly one bug. Steps, each a method:
 *
 * - START: map the registers, connect the interrupt, IoGetDmaAdapter(`description()`), then `started`.
 * - READ / WRITE: `read` / `write`, by default a scatter/gather transfer (GetScatterGatherList,
 *   one device command per element, PutScatterGatherList in the DPC once all are done), or the
 *   packet-based one when `style` is "packet" (AllocateAdapterChannel + MapTransfer, then
 *   FlushAdapterBuffers and FreeMapRegisters in the DPC).
 * - IOCTL_DMA_TEST_RUN: `control`, a synchronous step for bugs that need no device.
 * - STOP / REMOVE: `stopping`, then PutDmaAdapter.
 */
import {
  ADDRESS_AND_SIZE_TO_SPAN_PAGES,
  type CM_PARTIAL_RESOURCE_DESCRIPTOR,
  type DEVICE_DESCRIPTION,
  DEVICE_DESCRIPTION_VERSION2,
  type DEVICE_OBJECT,
  DeallocateObjectKeepRegisters,
  DISPATCH_LEVEL,
  type DMA_ADAPTER,
  type DMA_OPERATIONS,
  DO_DEVICE_INITIALIZING,
  DO_DIRECT_IO,
  type DRIVER_OBJECT,
  type DriverContribution,
  FILE_DEVICE_SECURE_OPEN,
  FILE_DEVICE_UNKNOWN,
  type IO_ALLOCATION_ACTION,
  IO_NO_INCREMENT,
  type IRP,
  IRP_MJ_DEVICE_CONTROL,
  IRP_MJ_PNP,
  IRP_MJ_READ,
  IRP_MJ_WRITE,
  IRP_MN_REMOVE_DEVICE,
  IRP_MN_START_DEVICE,
  IRP_MN_STOP_DEVICE,
  type Kernel,
  type KINTERRUPT,
  LevelSensitive,
  type MAP_REGISTER_BASE,
  type MDL,
  MmNonCached,
  NonPagedPool,
  NT_SUCCESS,
  type NTSTATUS,
  PCIBus,
  type PVOID,
  type SCATTER_GATHER_LIST,
  STATUS_INSUFFICIENT_RESOURCES,
  STATUS_INVALID_DEVICE_REQUEST,
  STATUS_NO_SUCH_DEVICE,
  STATUS_PENDING,
  STATUS_SUCCESS,
  zeroedDeviceDescription,
} from "../../../src/ddi/index.js";
import { DMA_TEST_ID_VALUE, IOCTL_DMA_TEST_RUN, TestCommand, TestRegister } from "./dma-test-registers.js";

export interface DmaTestExtension {
  readonly pdo: DEVICE_OBJECT;
  readonly fdo: DEVICE_OBJECT;
  readonly lower: DEVICE_OBJECT;
  registers: PVOID;
  registerLength: number;
  interrupt: KINTERRUPT | undefined;
  adapter: DMA_ADAPTER | undefined;
  numberOfMapRegisters: number;
  /** The transfer in flight: its IRP, direction, list or map registers, and device commands left. */
  irp: IRP | undefined;
  writeToDevice: boolean;
  list: SCATTER_GATHER_LIST | undefined;
  base: MAP_REGISTER_BASE | undefined;
  registersHeld: number;
  outstanding: number;
  /** Commands the ISR saw done, for the DPC (DPCs coalesce: the count travels here). */
  completed: number;
  /** The device's pattern seed for the next transfer. */
  seed: number;
}

export abstract class DmaTestDriver implements DriverContribution {
  abstract readonly serviceName: string;
  readonly hardwareIds = ["PCI\\VEN_1AF4&DEV_10F1"];
  /** "scatter-gather" (GetScatterGatherList) or "packet" (AllocateAdapterChannel + MapTransfer). */
  protected readonly style: "scatter-gather" | "packet" = "scatter-gather";
  /** false: a 32-bit device, whose buffers above 4 GiB bounce when nothing remaps them. */
  protected readonly dma64: boolean = true;
  /** The extension of the device the driver started last, for tests. */
  extension: DmaTestExtension | undefined;
  /** What the driver observed, for tests (statuses, bytes it read). */
  readonly log: string[] = [];
  /** The buffers its own steps allocated (ownBuffer), in order, for tests. */
  readonly buffers: { readonly va: PVOID; readonly mdl: MDL }[] = [];

  /** The package's module builds the driver with the machine's Kernel (driver-package.ts). */
  constructor(protected readonly kernel: Kernel) {}

  DriverEntry(DriverObject: DRIVER_OBJECT, _RegistryPath: string): NTSTATUS {
    DriverObject.MajorFunction[IRP_MJ_PNP] = (device, irp) => this.dispatchPnp(device, irp);
    DriverObject.MajorFunction[IRP_MJ_READ] = (device, irp) => this.dispatchTransfer(device, irp, false);
    DriverObject.MajorFunction[IRP_MJ_WRITE] = (device, irp) => this.dispatchTransfer(device, irp, true);
    DriverObject.MajorFunction[IRP_MJ_DEVICE_CONTROL] = (device, irp) => this.dispatchControl(device, irp);
    DriverObject.DriverExtension.AddDevice = (driver, pdo) => this.addDevice(driver, pdo);
    DriverObject.DriverUnload = () => {};
    return STATUS_SUCCESS;
  }

  /** The DEVICE_DESCRIPTION START asks for: a scatter/gather PCI bus master, 64-bit unless `dma64` is false. */
  protected description(): DEVICE_DESCRIPTION {
    const description = zeroedDeviceDescription();
    description.Version = DEVICE_DESCRIPTION_VERSION2;
    description.Master = true;
    description.ScatterGather = true;
    description.Dma64BitAddresses = this.dma64;
    description.Dma32BitAddresses = !this.dma64;
    description.InterfaceType = PCIBus;
    description.MaximumLength = 64 * 1024;
    return description;
  }

  /** After START got the adapter. */
  protected started(_extension: DmaTestExtension): NTSTATUS {
    return STATUS_SUCCESS;
  }

  /** Before STOP or REMOVE puts the adapter back. */
  protected stopping(_extension: DmaTestExtension): void {}

  /** IOCTL_DMA_TEST_RUN, at PASSIVE_LEVEL. */
  protected control(_extension: DmaTestExtension, _irp: IRP): NTSTATUS {
    return STATUS_INVALID_DEVICE_REQUEST;
  }

  /** IRP_MJ_READ / IRP_MJ_WRITE: start the transfer of the IRP's MDL (the IRP is already pending). */
  protected transfer(extension: DmaTestExtension, irp: IRP): void {
    if (this.style === "packet") this.startPacket(extension, irp);
    else this.startScatterGather(extension, irp);
  }

  /** The DPC, once the device finished every command of the transfer. */
  protected transferDone(extension: DmaTestExtension): void {
    if (this.style === "packet") this.endPacket(extension);
    else this.endScatterGather(extension);
  }

  // ---- the steps of a correct transfer ----

  protected startScatterGather(extension: DmaTestExtension, irp: IRP): void {
    const k = this.kernel;
    const mdl = irp.MdlAddress!;
    k.KeFlushIoBuffers(mdl, !extension.writeToDevice, true);
    this.atDispatch(() => {
      const status = this.ops(extension).GetScatterGatherList(
        extension.adapter!,
        extension.fdo,
        mdl,
        k.MmGetMdlVirtualAddress(mdl),
        k.MmGetMdlByteCount(mdl),
        (_device, _irp, list) => this.listReady(extension, list),
        irp,
        extension.writeToDevice,
      );
      if (!NT_SUCCESS(status)) this.complete(extension, status, 0);
    });
  }

  /** The list callback: one device command per element. */
  protected listReady(extension: DmaTestExtension, list: SCATTER_GATHER_LIST): void {
    extension.list = list;
    let offset = 0;
    for (const element of list.Elements) {
      this.program(extension, element.Address, element.Length, offset);
      offset += element.Length;
    }
  }

  protected endScatterGather(extension: DmaTestExtension): void {
    this.ops(extension).PutScatterGatherList(extension.adapter!, extension.list!, extension.writeToDevice);
    extension.list = undefined;
    this.complete(extension, STATUS_SUCCESS, this.kernel.MmGetMdlByteCount(extension.irp!.MdlAddress!));
  }

  /** Map registers a packet transfer of `mdl` takes: the pages it spans. */
  protected registersFor(mdl: MDL): number {
    const k = this.kernel;
    return ADDRESS_AND_SIZE_TO_SPAN_PAGES(k.MmGetMdlVirtualAddress(mdl), k.MmGetMdlByteCount(mdl));
  }

  protected startPacket(extension: DmaTestExtension, irp: IRP): void {
    const registers = this.registersFor(irp.MdlAddress!);
    this.kernel.KeFlushIoBuffers(irp.MdlAddress!, !extension.writeToDevice, true);
    this.atDispatch(() => {
      const status = this.ops(extension).AllocateAdapterChannel(
        extension.adapter!,
        extension.fdo,
        registers,
        (_device, _irp, base) => this.channelReady(extension, base, registers),
        irp,
      );
      if (!NT_SUCCESS(status)) this.complete(extension, status, 0);
    });
  }

  /** The AdapterControl routine: map the whole buffer (a packet adapter makes it one run), program the device. */
  protected channelReady(
    extension: DmaTestExtension,
    base: MAP_REGISTER_BASE | undefined,
    registers: number,
  ): IO_ALLOCATION_ACTION {
    const k = this.kernel;
    const mdl = extension.irp!.MdlAddress!;
    extension.base = base;
    extension.registersHeld = registers;
    const mapped = this.ops(extension).MapTransfer(
      extension.adapter!,
      mdl,
      base,
      k.MmGetMdlVirtualAddress(mdl),
      k.MmGetMdlByteCount(mdl),
      extension.writeToDevice,
    );
    this.program(extension, mapped.LogicalAddress, mapped.Length, 0);
    return DeallocateObjectKeepRegisters;
  }

  protected endPacket(extension: DmaTestExtension): void {
    const k = this.kernel;
    const mdl = extension.irp!.MdlAddress!;
    const ops = this.ops(extension);
    ops.FlushAdapterBuffers(
      extension.adapter!,
      mdl,
      extension.base,
      k.MmGetMdlVirtualAddress(mdl),
      k.MmGetMdlByteCount(mdl),
      extension.writeToDevice,
    );
    ops.FreeMapRegisters(extension.adapter!, extension.base, extension.registersHeld);
    extension.base = undefined;
    this.complete(extension, STATUS_SUCCESS, k.MmGetMdlByteCount(mdl));
  }

  // ---- helpers ----

  /** A nonpaged buffer of the driver's own, with its MDL (built unless `build` is false), for steps without an IRP. */
  protected ownBuffer(length: number, build = true): { readonly va: PVOID; readonly mdl: MDL } {
    const k = this.kernel;
    const va = k.ExAllocatePoolWithTag(NonPagedPool, length, "Test");
    const mdl = k.IoAllocateMdl(va, length, false, false, undefined)!;
    if (build) k.MmBuildMdlForNonPagedPool(mdl);
    this.buffers.push({ va, mdl });
    return { va, mdl };
  }

  protected ops(extension: DmaTestExtension): DMA_OPERATIONS {
    return extension.adapter!.DmaOperations;
  }

  protected atDispatch<T>(body: () => T): T {
    const old = this.kernel.KeRaiseIrql(DISPATCH_LEVEL);
    try {
      return body();
    } finally {
      this.kernel.KeLowerIrql(old);
    }
  }

  /** Queues one device command: write the pattern (a read IRP) or read memory (a write IRP). */
  protected program(
    extension: DmaTestExtension,
    address: number,
    length: number,
    patternOffset: number,
  ): void {
    const k = this.kernel;
    const registers = extension.registers;
    extension.outstanding++;
    k.WRITE_REGISTER_ULONG(registers + TestRegister.addressLow, address % 2 ** 32);
    k.WRITE_REGISTER_ULONG(registers + TestRegister.addressHigh, Math.floor(address / 2 ** 32));
    k.WRITE_REGISTER_ULONG(registers + TestRegister.length, length);
    k.WRITE_REGISTER_ULONG(registers + TestRegister.seed, (extension.seed + patternOffset) % 256);
    k.WRITE_REGISTER_ULONG(
      registers + TestRegister.command,
      extension.writeToDevice ? TestCommand.readMemory : TestCommand.writeMemory,
    );
  }

  protected complete(extension: DmaTestExtension, status: NTSTATUS, information: number): void {
    const irp = extension.irp!;
    extension.irp = undefined;
    irp.IoStatus.Status = status;
    irp.IoStatus.Information = information;
    this.kernel.IoCompleteRequest(irp, IO_NO_INCREMENT);
  }

  // ---- the WDM plumbing ----

  protected addDevice(DriverObject: DRIVER_OBJECT, PhysicalDeviceObject: DEVICE_OBJECT): NTSTATUS {
    const k = this.kernel;
    const created = k.IoCreateDevice(
      DriverObject,
      0,
      undefined,
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
    const extension: DmaTestExtension = {
      pdo: PhysicalDeviceObject,
      fdo,
      lower,
      registers: 0,
      registerLength: 0,
      interrupt: undefined,
      adapter: undefined,
      numberOfMapRegisters: 0,
      irp: undefined,
      writeToDevice: false,
      list: undefined,
      base: undefined,
      registersHeld: 0,
      outstanding: 0,
      completed: 0,
      seed: 0x40,
    };
    fdo.DeviceExtension = extension;
    fdo.Flags |= DO_DIRECT_IO;
    fdo.Flags &= ~DO_DEVICE_INITIALIZING;
    this.extension = extension;
    return STATUS_SUCCESS;
  }

  protected dispatchPnp(DeviceObject: DEVICE_OBJECT, Irp: IRP): NTSTATUS {
    const k = this.kernel;
    const extension = DeviceObject.DeviceExtension as DmaTestExtension;
    const stack = k.IoGetCurrentIrpStackLocation(Irp);
    let status = Irp.IoStatus.Status;
    switch (stack.MinorFunction) {
      case IRP_MN_START_DEVICE:
        status = this.start(extension, stack.Parameters.StartDevice?.AllocatedResourcesTranslated ?? []);
        break;
      case IRP_MN_STOP_DEVICE:
        this.release(extension);
        status = STATUS_SUCCESS;
        break;
      case IRP_MN_REMOVE_DEVICE:
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

  protected start(
    extension: DmaTestExtension,
    resources: readonly CM_PARTIAL_RESOURCE_DESCRIPTOR[],
  ): NTSTATUS {
    const k = this.kernel;
    for (const resource of resources) {
      if (resource.Type === "CmResourceTypeMemory") {
        extension.registers = k.MmMapIoSpace(resource.Start, resource.Length, MmNonCached);
        extension.registerLength = resource.Length;
      } else {
        const connected = k.IoConnectInterrupt(
          () => this.isr(extension),
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
    if (k.READ_REGISTER_ULONG(extension.registers + TestRegister.id) !== DMA_TEST_ID_VALUE)
      return STATUS_NO_SUCH_DEVICE;
    const { Adapter, NumberOfMapRegisters } = k.IoGetDmaAdapter(extension.pdo, this.description());
    if (Adapter === undefined) return STATUS_INSUFFICIENT_RESOURCES;
    extension.adapter = Adapter;
    extension.numberOfMapRegisters = NumberOfMapRegisters;
    k.IoInitializeDpcRequest(extension.fdo, () => this.dpc(extension));
    return this.started(extension);
  }

  protected release(extension: DmaTestExtension): void {
    const k = this.kernel;
    if (extension.adapter !== undefined) {
      this.stopping(extension);
      extension.adapter.DmaOperations.PutDmaAdapter(extension.adapter);
    }
    if (extension.interrupt !== undefined) k.IoDisconnectInterrupt(extension.interrupt);
    if (extension.registers !== 0) k.MmUnmapIoSpace(extension.registers, extension.registerLength);
    extension.adapter = undefined;
    extension.interrupt = undefined;
    extension.registers = 0;
  }

  protected dispatchTransfer(DeviceObject: DEVICE_OBJECT, Irp: IRP, writeToDevice: boolean): NTSTATUS {
    const extension = DeviceObject.DeviceExtension as DmaTestExtension;
    this.kernel.IoMarkIrpPending(Irp);
    extension.irp = Irp;
    extension.writeToDevice = writeToDevice;
    this.transfer(extension, Irp);
    return STATUS_PENDING;
  }

  protected dispatchControl(DeviceObject: DEVICE_OBJECT, Irp: IRP): NTSTATUS {
    const k = this.kernel;
    const extension = DeviceObject.DeviceExtension as DmaTestExtension;
    const code = k.IoGetCurrentIrpStackLocation(Irp).Parameters.DeviceIoControl?.IoControlCode;
    const status = code === IOCTL_DMA_TEST_RUN ? this.control(extension, Irp) : STATUS_INVALID_DEVICE_REQUEST;
    if (status === STATUS_PENDING) return status;
    Irp.IoStatus.Status = status;
    k.IoCompleteRequest(Irp, IO_NO_INCREMENT);
    return status;
  }

  protected isr(extension: DmaTestExtension): boolean {
    const k = this.kernel;
    const done = k.READ_REGISTER_ULONG(extension.registers + TestRegister.status);
    if (done === 0) return false;
    k.WRITE_REGISTER_ULONG(extension.registers + TestRegister.status, 0);
    extension.completed += done;
    k.IoRequestDpc(extension.fdo, extension.irp, undefined);
    return true;
  }

  protected dpc(extension: DmaTestExtension): void {
    extension.outstanding -= extension.completed;
    extension.completed = 0;
    if (extension.outstanding === 0 && extension.irp !== undefined) this.transferDone(extension);
  }
}
