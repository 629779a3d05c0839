/**
 * A WDM function driver for the legacy 32-bit bus master, using packet-based DMA exactly as the
 * WDK describes it ("Using Packet-Based Bus-Master DMA", reference section 3):
 *
 *   KeFlushIoBuffers -> AllocateAdapterChannel -> AdapterControl: MapTransfer, program the chip
 *   -> interrupt -> DpcForIsr: FlushAdapterBuffers -> MapTransfer the next piece ... ->
 *   FreeMapRegisters -> complete the IRP.
 *
 * The DEVICE_DESCRIPTION tells the truth about the chip (Dma32BitAddresses, no ScatterGather), so
 * every logical address the HAL gives back fits the 32-bit ADDRESS register: bounce pages below
 * 4 GiB without remapping, an IOVA window with it. A request longer than the chip's buffer or the
 * adapter's map registers cover is split into several transfers with the same registers
 * (WDK "Splitting DMA Transfer Requests"). AdapterControl keeps the registers and gives the
 * channel back (DeallocateObjectKeepRegisters), as a bus master does.
 */
import {
  ADDRESS_AND_SIZE_TO_SPAN_PAGES,
  BYTE_OFFSET,
  type CM_PARTIAL_RESOURCE_DESCRIPTOR,
  DEVICE_DESCRIPTION_VERSION2,
  type DEVICE_OBJECT,
  DeallocateObjectKeepRegisters,
  DISPATCH_LEVEL,
  type DMA_ADAPTER,
  DO_DEVICE_INITIALIZING,
  DO_DIRECT_IO,
  type DRIVER_OBJECT,
  type DriverContribution,
  FILE_DEVICE_CONTROLLER,
  FILE_DEVICE_SECURE_OPEN,
  type IO_ALLOCATION_ACTION,
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
  type MAP_REGISTER_BASE,
  type MDL,
  MmNonCached,
  NT_SUCCESS,
  type NTSTATUS,
  PAGE_SIZE,
  PCIBus,
  type PVOID,
  STATUS_CANCELLED,
  STATUS_DEVICE_NOT_READY,
  STATUS_INSUFFICIENT_RESOURCES,
  STATUS_INVALID_PARAMETER,
  STATUS_IO_DEVICE_ERROR,
  STATUS_NO_SUCH_DEVICE,
  STATUS_PENDING,
  STATUS_SUCCESS,
  zeroedDeviceDescription,
} from "../../src/ddi/index.js";
import {
  LDMA_ADDRESS_LIMIT,
  LDMA_BUFFER_SIZE,
  LDMA_CONTROL_START,
  LDMA_CONTROL_TO_MEMORY,
  LDMA_DEVICE_ID,
  LDMA_REG_ADDRESS,
  LDMA_REG_CONTROL,
  LDMA_REG_LENGTH,
  LDMA_REG_STATUS,
  LDMA_STATUS_CLEAR,
  LDMA_STATUS_DMA_ERROR,
  LDMA_STATUS_DONE,
  LDMA_STATUS_LENGTH_ERROR,
  LDMA_VENDOR_ID,
} from "./legacy-hw.js";

/** The request StartIo is working on. */
interface Request {
  readonly irp: IRP;
  readonly mdl: MDL;
  readonly va: PVOID;
  readonly length: number;
  readonly write: boolean;
  /** Map registers asked of AllocateAdapterChannel, and what AdapterControl got. */
  readonly registers: number;
  mapRegisterBase: MAP_REGISTER_BASE | undefined;
  /** AdapterControl ran: the registers must be freed with FreeMapRegisters. */
  granted: boolean;
  /** Bytes done by earlier transfers, and the transfer in flight. */
  done: number;
  piece: number;
}

export interface LegacyStatistics {
  requests: number;
  /** Transfers programmed: more than requests when requests were split. */
  transfers: number;
  interrupts: number;
  failures: number;
}

interface LegacyExtension {
  readonly pdo: DEVICE_OBJECT;
  readonly fdo: DEVICE_OBJECT;
  readonly lower: DEVICE_OBJECT;
  registers: PVOID;
  registerLength: number;
  interrupt: KINTERRUPT | undefined;
  adapter: DMA_ADAPTER | undefined;
  numberOfMapRegisters: number;
  current: Request | undefined;
  /** STATUS as the ISR read it, for the DPC. */
  chipStatus: number;
  readonly stats: LegacyStatistics;
}

@injectable()
export class LegacyDriver implements DriverContribution {
  readonly serviceName = "ldmasim";
  readonly hardwareIds = [`PCI\\VEN_${hex4(LDMA_VENDOR_ID)}&DEV_${hex4(LDMA_DEVICE_ID)}`];
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

  statistics(DeviceObject: DEVICE_OBJECT): Readonly<LegacyStatistics> {
    return (DeviceObject.DeviceExtension as LegacyExtension).stats;
  }

  #addDevice(DriverObject: DRIVER_OBJECT, PhysicalDeviceObject: DEVICE_OBJECT): NTSTATUS {
    const k = this.#kernel;
    const name = `\\Device\\LdmaSim${this.#instances++}`;
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
    const extension: LegacyExtension = {
      pdo: PhysicalDeviceObject,
      fdo,
      lower,
      registers: 0,
      registerLength: 0,
      interrupt: undefined,
      adapter: undefined,
      numberOfMapRegisters: 0,
      current: undefined,
      chipStatus: 0,
      stats: { requests: 0, transfers: 0, interrupts: 0, failures: 0 },
    };
    fdo.DeviceExtension = extension;
    fdo.Flags |= DO_DIRECT_IO;
    fdo.Flags &= ~DO_DEVICE_INITIALIZING;
    return STATUS_SUCCESS;
  }

  #dispatchPnp(DeviceObject: DEVICE_OBJECT, Irp: IRP): NTSTATUS {
    const k = this.#kernel;
    const extension = DeviceObject.DeviceExtension as LegacyExtension;
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

  #start(extension: LegacyExtension, resources: readonly CM_PARTIAL_RESOURCE_DESCRIPTOR[]): NTSTATUS {
    const k = this.#kernel;
    for (const resource of resources) {
      if (resource.Type === "CmResourceTypeMemory") {
        extension.registers = k.MmMapIoSpace(resource.Start, resource.Length, MmNonCached);
        extension.registerLength = resource.Length;
      } else {
        const connected = k.IoConnectInterrupt(
          (interrupt, context) => this.#isr(interrupt, context as LegacyExtension),
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
    this.#write(extension, LDMA_REG_STATUS, LDMA_STATUS_CLEAR);

    // The truth about the chip: a bus master with 32 address lines and no scatter/gather.
    const description = zeroedDeviceDescription();
    description.Version = DEVICE_DESCRIPTION_VERSION2;
    description.Master = true;
    description.ScatterGather = false;
    description.Dma32BitAddresses = true;
    description.InterfaceType = PCIBus;
    description.MaximumLength = LDMA_BUFFER_SIZE;
    const { Adapter, NumberOfMapRegisters } = k.IoGetDmaAdapter(extension.pdo, description);
    if (Adapter === undefined || NumberOfMapRegisters < 2) return STATUS_INSUFFICIENT_RESOURCES;
    extension.adapter = Adapter;
    extension.numberOfMapRegisters = NumberOfMapRegisters;
    k.IoInitializeDpcRequest(extension.fdo, (dpc, device) => this.#dpcForIsr(dpc, device));
    return STATUS_SUCCESS;
  }

  #release(extension: LegacyExtension): void {
    const k = this.#kernel;
    if (extension.interrupt !== undefined) k.IoDisconnectInterrupt(extension.interrupt);
    extension.interrupt = undefined;
    const adapter = extension.adapter;
    if (adapter !== undefined) {
      if (extension.current !== undefined) {
        const old = k.KeRaiseIrql(DISPATCH_LEVEL);
        this.#finish(extension, STATUS_CANCELLED, extension.current.done);
        k.KeLowerIrql(old);
      }
      adapter.DmaOperations.PutDmaAdapter(adapter);
    }
    extension.adapter = undefined;
    if (extension.registers !== 0) k.MmUnmapIoSpace(extension.registers, extension.registerLength);
    extension.registers = 0;
  }

  #dispatchReadWrite(DeviceObject: DEVICE_OBJECT, Irp: IRP): NTSTATUS {
    const k = this.#kernel;
    const extension = DeviceObject.DeviceExtension as LegacyExtension;
    if (extension.adapter === undefined) return this.#completeNow(Irp, STATUS_DEVICE_NOT_READY);
    if (Irp.MdlAddress === undefined) return this.#completeNow(Irp, STATUS_INVALID_PARAMETER);
    k.IoMarkIrpPending(Irp);
    k.IoStartPacket(DeviceObject, Irp, undefined, undefined);
    return STATUS_PENDING;
  }

  /** DRIVER_STARTIO at DISPATCH_LEVEL: flush the caches, then ask for the channel and registers. */
  #startIo(DeviceObject: DEVICE_OBJECT, Irp: IRP): void {
    const k = this.#kernel;
    const extension = DeviceObject.DeviceExtension as LegacyExtension;
    const adapter = extension.adapter!;
    const write = k.IoGetCurrentIrpStackLocation(Irp).MajorFunction === IRP_MJ_WRITE;
    const mdl = Irp.MdlAddress!;
    const va = k.MmGetMdlVirtualAddress(mdl);
    const length = k.MmGetMdlByteCount(mdl);
    k.KeFlushIoBuffers(mdl, !write, true);
    extension.stats.requests++;
    extension.current = {
      irp: Irp,
      mdl,
      va,
      length,
      write,
      registers: Math.min(extension.numberOfMapRegisters, ADDRESS_AND_SIZE_TO_SPAN_PAGES(va, length)),
      mapRegisterBase: undefined,
      granted: false,
      done: 0,
      piece: 0,
    };
    const status = adapter.DmaOperations.AllocateAdapterChannel(
      adapter,
      DeviceObject,
      extension.current.registers,
      (_device, _irp, mapRegisterBase, context) =>
        this.#adapterControl(context as LegacyExtension, mapRegisterBase),
      extension,
    );
    if (!NT_SUCCESS(status)) this.#finish(extension, status, 0);
  }

  /** DRIVER_CONTROL: the registers are ours; map and start the first transfer. */
  #adapterControl(
    extension: LegacyExtension,
    mapRegisterBase: MAP_REGISTER_BASE | undefined,
  ): IO_ALLOCATION_ACTION {
    extension.current!.mapRegisterBase = mapRegisterBase;
    extension.current!.granted = true;
    this.#startTransfer(extension);
    return DeallocateObjectKeepRegisters;
  }

  /** MapTransfer the next piece (the whole piece: no scatter/gather) and program the chip. */
  #startTransfer(extension: LegacyExtension): void {
    const adapter = extension.adapter!;
    const request = extension.current!;
    const currentVa = request.va + request.done;
    const covered = request.registers * PAGE_SIZE - BYTE_OFFSET(currentVa);
    const wanted = Math.min(request.length - request.done, LDMA_BUFFER_SIZE, covered);
    const mapped = adapter.DmaOperations.MapTransfer(
      adapter,
      request.mdl,
      request.mapRegisterBase,
      currentVa,
      wanted,
      request.write,
    );
    request.piece = mapped.Length;
    if (mapped.LogicalAddress + mapped.Length > LDMA_ADDRESS_LIMIT) {
      // Cannot happen with an adapter that was told the truth; refuse rather than truncate.
      this.#finish(extension, STATUS_IO_DEVICE_ERROR, request.done);
      return;
    }
    extension.stats.transfers++;
    this.#write(extension, LDMA_REG_ADDRESS, mapped.LogicalAddress);
    this.#write(extension, LDMA_REG_LENGTH, mapped.Length);
    this.#write(
      extension,
      LDMA_REG_CONTROL,
      LDMA_CONTROL_START | (request.write ? 0 : LDMA_CONTROL_TO_MEMORY),
    );
  }

  #isr(_interrupt: KINTERRUPT, extension: LegacyExtension): boolean {
    const status = this.#read(extension, LDMA_REG_STATUS);
    if ((status & LDMA_STATUS_DONE) === 0) return false;
    this.#write(extension, LDMA_REG_STATUS, LDMA_STATUS_CLEAR);
    extension.chipStatus = status;
    extension.stats.interrupts++;
    this.#kernel.IoRequestDpc(extension.fdo, extension.fdo.CurrentIrp, undefined);
    return true;
  }

  /** DpcForIsr: flush the piece; then the next piece, or free the registers and complete. */
  #dpcForIsr(_dpc: KDPC, DeviceObject: DEVICE_OBJECT): void {
    const extension = DeviceObject.DeviceExtension as LegacyExtension;
    const request = extension.current;
    if (request === undefined || extension.adapter === undefined) return;
    const piece = request.piece;
    const flushed = this.#endTransfer(extension);
    if (!flushed || (extension.chipStatus & (LDMA_STATUS_DMA_ERROR | LDMA_STATUS_LENGTH_ERROR)) !== 0) {
      this.#finish(extension, STATUS_IO_DEVICE_ERROR, request.done);
      return;
    }
    request.done += piece;
    if (request.done < request.length) this.#startTransfer(extension);
    else this.#finish(extension, STATUS_SUCCESS, request.length);
  }

  /** FlushAdapterBuffers for the piece in flight: for a read, this is where bounced data comes back. */
  #endTransfer(extension: LegacyExtension): boolean {
    const adapter = extension.adapter!;
    const request = extension.current!;
    if (request.piece === 0) return true;
    const flushed = adapter.DmaOperations.FlushAdapterBuffers(
      adapter,
      request.mdl,
      request.mapRegisterBase,
      request.va + request.done,
      request.piece,
      request.write,
    );
    request.piece = 0;
    return flushed;
  }

  /** Frees the registers (after the last flush), completes the IRP and starts the next one. */
  #finish(extension: LegacyExtension, status: NTSTATUS, information: number): void {
    const k = this.#kernel;
    const adapter = extension.adapter!;
    const request = extension.current!;
    if (request.granted) {
      this.#endTransfer(extension);
      adapter.DmaOperations.FreeMapRegisters(adapter, request.mapRegisterBase, request.registers);
    }
    extension.current = undefined;
    if (!NT_SUCCESS(status)) extension.stats.failures++;
    request.irp.IoStatus.Status = status;
    request.irp.IoStatus.Information = information;
    k.IoStartNextPacket(extension.fdo, false);
    k.IoCompleteRequest(request.irp, IO_NO_INCREMENT);
  }

  #completeNow(Irp: IRP, status: NTSTATUS): NTSTATUS {
    Irp.IoStatus.Status = status;
    Irp.IoStatus.Information = 0;
    this.#kernel.IoCompleteRequest(Irp, IO_NO_INCREMENT);
    return status;
  }

  #read(extension: LegacyExtension, offset: number): number {
    return this.#kernel.READ_REGISTER_ULONG(extension.registers + offset);
  }

  #write(extension: LegacyExtension, offset: number, value: number): void {
    this.#kernel.WRITE_REGISTER_ULONG(extension.registers + offset, value);
  }
}

function hex4(value: number): string {
  return value.toString(16).toUpperCase().padStart(4, "0");
}
