/**
 * attacknic: a correct, well-behaved WDM driver for the attack lab's NIC, the driver side of
 * Thunderclap's setting (perf-security-anchors §8): the DRIVER does everything by the book
 * (every device address comes from GetScatterGatherList or AllocateCommonBuffer, every transfer
 * ends with PutScatterGatherList) and the DEVICE is the attacker. What the IOMMU and the HAL's
 * policies then let the device reach is what the lab measures.
 *
 * - IRP_MJ_WRITE transmits the IRP's buffer (the device reads it), IRP_MJ_READ receives into it
 *   (the device writes it). StartIo maps the buffer with GetScatterGatherList and programs one
 *   element at a time; the DpcForIsr programs the next or ends the transfer.
 * - IOCTL_ATTACK_NIC_RESET is the port's reset after a completion timeout (NDIS calls
 *   MiniportResetEx when MiniportCheckForHangEx, every ~2 s, reports a hang; Linux's dev_watchdog
 *   calls ndo_tx_timeout): the driver abandons the transfer, and PutScatterGatherList revokes the
 *   device's mapping whatever the device does with its reset register. The revoked request
 *   completes with STATUS_IO_TIMEOUT.
 * - Two switches a test or the lab sets before the driver starts (an INF's parameters, in effect):
 *   `ringBytes` gives every device a receive ring in a common buffer, and `shareDomains` makes
 *   every device after the first JoinDmaDomain the first one's domain (one I/O page table for all,
 *   as Windows 10 VBS and macOS did, Thunderclap Table II).
 */
import {
  type CM_PARTIAL_RESOURCE_DESCRIPTOR,
  DEVICE_DESCRIPTION_VERSION3,
  type DEVICE_OBJECT,
  type DMA_ADAPTER,
  DO_DEVICE_INITIALIZING,
  DO_DIRECT_IO,
  type DRIVER_OBJECT,
  type DriverContribution,
  FILE_DEVICE_NETWORK,
  FILE_DEVICE_SECURE_OPEN,
  IO_NO_INCREMENT,
  type IRP,
  IRP_MJ_DEVICE_CONTROL,
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
  NT_SUCCESS,
  type NTSTATUS,
  PCIBus,
  type PVOID,
  type SCATTER_GATHER_LIST,
  STATUS_DEVICE_DATA_ERROR,
  STATUS_INSUFFICIENT_RESOURCES,
  STATUS_INVALID_DEVICE_REQUEST,
  STATUS_NO_SUCH_DEVICE,
  STATUS_PENDING,
  STATUS_SUCCESS,
  zeroedDeviceDescription,
} from "../../src/ddi/index.js";
import {
  ATTACK_NIC_DEVICE_ID,
  ATTACK_NIC_ID_VALUE,
  ATTACK_NIC_VENDOR_ID,
  IOCTL_ATTACK_NIC_RESET,
  NIC_CONTROL_START,
  NIC_CONTROL_TO_MEMORY,
  NIC_MAX_TRANSFER,
  NIC_REG_ADDRESS_HIGH,
  NIC_REG_ADDRESS_LOW,
  NIC_REG_CONTROL,
  NIC_REG_ID,
  NIC_REG_LENGTH,
  NIC_REG_RESET,
  NIC_REG_RING_HIGH,
  NIC_REG_RING_LENGTH,
  NIC_REG_RING_LOW,
  NIC_REG_STATUS,
  NIC_STATUS_DONE,
  NIC_STATUS_ERROR,
  STATUS_IO_TIMEOUT,
} from "./attack-nic-hw.js";

const TWO_POW_32 = 2 ** 32;

export interface AttackNicStatistics {
  transfers: number;
  resets: number;
  /** Requests the reset revoked (completed with STATUS_IO_TIMEOUT). */
  revoked: number;
  /** Logical address of the receive ring, 0 without one. */
  ringLogicalAddress: number;
  /** JoinDmaDomain's status when the device joined another's domain. */
  joinStatus: NTSTATUS | undefined;
}

interface NicExtension {
  readonly pdo: DEVICE_OBJECT;
  readonly fdo: DEVICE_OBJECT;
  readonly lower: DEVICE_OBJECT;
  registers: PVOID;
  registerLength: number;
  interrupt: KINTERRUPT | undefined;
  adapter: DMA_ADAPTER | undefined;
  ring: { readonly va: PVOID; readonly logical: number; readonly length: number } | undefined;
  /** The transfer in flight: its list, the next element to program, its direction. */
  list: SCATTER_GATHER_LIST | undefined;
  element: number;
  writeToDevice: boolean;
  readonly stats: AttackNicStatistics;
}

function hex4(value: number): string {
  return value.toString(16).toUpperCase().padStart(4, "0");
}

@injectable()
export class AttackNicDriver implements DriverContribution {
  readonly serviceName = "attacknic";
  readonly hardwareIds = [`PCI\\VEN_${hex4(ATTACK_NIC_VENDOR_ID)}&DEV_${hex4(ATTACK_NIC_DEVICE_ID)}`];
  /** Bytes of the receive ring each device gets at START (0: none). */
  ringBytes = 0;
  /** Every device after the first joins the first one's DMA domain. */
  shareDomains = false;
  readonly #kernel: Kernel;
  #instances = 0;
  #firstAdapter: DMA_ADAPTER | undefined;

  constructor(@inject(Kernel) kernel: Kernel) {
    this.#kernel = kernel;
  }

  DriverEntry(DriverObject: DRIVER_OBJECT, _RegistryPath: string): NTSTATUS {
    DriverObject.MajorFunction[IRP_MJ_PNP] = (device, irp) => this.#dispatchPnp(device, irp);
    DriverObject.MajorFunction[IRP_MJ_READ] = (device, irp) => this.#dispatchTransfer(device, irp);
    DriverObject.MajorFunction[IRP_MJ_WRITE] = (device, irp) => this.#dispatchTransfer(device, irp);
    DriverObject.MajorFunction[IRP_MJ_DEVICE_CONTROL] = (device, irp) => this.#dispatchControl(device, irp);
    DriverObject.DriverExtension.AddDevice = (driver, pdo) => this.#addDevice(driver, pdo);
    DriverObject.DriverStartIo = (device, irp) => this.#startIo(device, irp);
    DriverObject.DriverUnload = () => {
      this.#firstAdapter = undefined;
    };
    return STATUS_SUCCESS;
  }

  statistics(DeviceObject: DEVICE_OBJECT): Readonly<AttackNicStatistics> {
    return (DeviceObject.DeviceExtension as NicExtension).stats;
  }

  #addDevice(DriverObject: DRIVER_OBJECT, PhysicalDeviceObject: DEVICE_OBJECT): NTSTATUS {
    const k = this.#kernel;
    const created = k.IoCreateDevice(
      DriverObject,
      0,
      `\\Device\\AttackNic${this.#instances++}`,
      FILE_DEVICE_NETWORK,
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
    const extension: NicExtension = {
      pdo: PhysicalDeviceObject,
      fdo,
      lower,
      registers: 0,
      registerLength: 0,
      interrupt: undefined,
      adapter: undefined,
      ring: undefined,
      list: undefined,
      element: 0,
      writeToDevice: false,
      stats: { transfers: 0, resets: 0, revoked: 0, ringLogicalAddress: 0, joinStatus: undefined },
    };
    fdo.DeviceExtension = extension;
    fdo.Flags |= DO_DIRECT_IO;
    fdo.Flags &= ~DO_DEVICE_INITIALIZING;
    return STATUS_SUCCESS;
  }

  #dispatchPnp(DeviceObject: DEVICE_OBJECT, Irp: IRP): NTSTATUS {
    const k = this.#kernel;
    const extension = DeviceObject.DeviceExtension as NicExtension;
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

  #start(extension: NicExtension, resources: readonly CM_PARTIAL_RESOURCE_DESCRIPTOR[]): NTSTATUS {
    const k = this.#kernel;
    for (const resource of resources) {
      if (resource.Type === "CmResourceTypeMemory") {
        extension.registers = k.MmMapIoSpace(resource.Start, resource.Length, MmNonCached);
        extension.registerLength = resource.Length;
      } else {
        const connected = k.IoConnectInterrupt(
          (_interrupt, context) => this.#isr(context as NicExtension),
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
    if (k.READ_REGISTER_ULONG(extension.registers + NIC_REG_ID) !== ATTACK_NIC_ID_VALUE)
      return STATUS_NO_SUCH_DEVICE;
    const description = zeroedDeviceDescription();
    description.Version = DEVICE_DESCRIPTION_VERSION3;
    description.Master = true;
    description.ScatterGather = true;
    description.Dma64BitAddresses = true;
    description.DmaAddressWidth = 64;
    description.InterfaceType = PCIBus;
    description.MaximumLength = NIC_MAX_TRANSFER;
    const { Adapter } = k.IoGetDmaAdapter(extension.pdo, description);
    if (Adapter === undefined) return STATUS_INSUFFICIENT_RESOURCES;
    extension.adapter = Adapter;
    if (this.shareDomains && this.#firstAdapter !== undefined) {
      const domain = this.#firstAdapter.DmaOperations.GetDmaDomain(this.#firstAdapter);
      if (domain !== undefined)
        extension.stats.joinStatus = Adapter.DmaOperations.JoinDmaDomain(Adapter, domain);
    }
    this.#firstAdapter ??= Adapter;
    if (this.ringBytes > 0) {
      const ring = Adapter.DmaOperations.AllocateCommonBuffer(Adapter, this.ringBytes, true);
      if (ring.VirtualAddress === 0) return STATUS_INSUFFICIENT_RESOURCES;
      extension.ring = { va: ring.VirtualAddress, logical: ring.LogicalAddress, length: this.ringBytes };
      extension.stats.ringLogicalAddress = ring.LogicalAddress;
      k.WRITE_REGISTER_ULONG(extension.registers + NIC_REG_RING_LOW, ring.LogicalAddress % TWO_POW_32);
      k.WRITE_REGISTER_ULONG(
        extension.registers + NIC_REG_RING_HIGH,
        Math.floor(ring.LogicalAddress / TWO_POW_32),
      );
      k.WRITE_REGISTER_ULONG(extension.registers + NIC_REG_RING_LENGTH, this.ringBytes);
    }
    k.IoInitializeDpcRequest(extension.fdo, (dpc, device, irp, context) =>
      this.#dpcForIsr(dpc, device, irp, context as number),
    );
    return STATUS_SUCCESS;
  }

  #release(extension: NicExtension): void {
    const k = this.#kernel;
    const adapter = extension.adapter;
    if (extension.registers !== 0) k.WRITE_REGISTER_ULONG(extension.registers + NIC_REG_RESET, 1);
    if (adapter !== undefined) {
      const ring = extension.ring;
      if (ring !== undefined)
        adapter.DmaOperations.FreeCommonBuffer(adapter, ring.length, ring.logical, ring.va, true);
      if (this.#firstAdapter === adapter) this.#firstAdapter = undefined;
      adapter.DmaOperations.PutDmaAdapter(adapter);
    }
    if (extension.interrupt !== undefined) k.IoDisconnectInterrupt(extension.interrupt);
    if (extension.registers !== 0) k.MmUnmapIoSpace(extension.registers, extension.registerLength);
    extension.ring = undefined;
    extension.adapter = undefined;
    extension.interrupt = undefined;
    extension.registers = 0;
  }

  #dispatchTransfer(DeviceObject: DEVICE_OBJECT, Irp: IRP): NTSTATUS {
    const k = this.#kernel;
    const extension = DeviceObject.DeviceExtension as NicExtension;
    if (extension.adapter === undefined || Irp.MdlAddress === undefined) {
      Irp.IoStatus.Status = STATUS_INVALID_DEVICE_REQUEST;
      k.IoCompleteRequest(Irp, IO_NO_INCREMENT);
      return STATUS_INVALID_DEVICE_REQUEST;
    }
    k.IoMarkIrpPending(Irp);
    k.IoStartPacket(DeviceObject, Irp, undefined, undefined);
    return STATUS_PENDING;
  }

  /** The port's reset: stop the device, then revoke the transfer's mapping and fail its request. */
  #dispatchControl(DeviceObject: DEVICE_OBJECT, Irp: IRP): NTSTATUS {
    const k = this.#kernel;
    const extension = DeviceObject.DeviceExtension as NicExtension;
    const code = k.IoGetCurrentIrpStackLocation(Irp).Parameters.DeviceIoControl?.IoControlCode;
    let status: NTSTATUS = STATUS_INVALID_DEVICE_REQUEST;
    if (code === IOCTL_ATTACK_NIC_RESET && extension.registers !== 0) {
      extension.stats.resets++;
      k.WRITE_REGISTER_ULONG(extension.registers + NIC_REG_RESET, 1);
      const pending = extension.fdo.CurrentIrp;
      if (extension.list !== undefined && pending !== undefined) {
        const old = k.KeRaiseIrqlToDpcLevel();
        extension.stats.revoked++;
        this.#finish(extension, pending, STATUS_IO_TIMEOUT, 0);
        k.KeLowerIrql(old);
      }
      status = STATUS_SUCCESS;
    }
    Irp.IoStatus.Status = status;
    k.IoCompleteRequest(Irp, IO_NO_INCREMENT);
    return status;
  }

  /** StartIo, at DISPATCH_LEVEL: map the buffer, program the first element from the list callback. */
  #startIo(DeviceObject: DEVICE_OBJECT, Irp: IRP): void {
    const k = this.#kernel;
    const extension = DeviceObject.DeviceExtension as NicExtension;
    const adapter = extension.adapter!;
    const mdl = Irp.MdlAddress!;
    const writeToDevice = k.IoGetCurrentIrpStackLocation(Irp).MajorFunction === IRP_MJ_WRITE;
    const status = adapter.DmaOperations.GetScatterGatherList(
      adapter,
      DeviceObject,
      mdl,
      k.MmGetMdlVirtualAddress(mdl),
      k.MmGetMdlByteCount(mdl),
      (_device, _irp, list) => {
        extension.list = list;
        extension.element = 0;
        extension.writeToDevice = writeToDevice;
        this.#program(extension);
      },
      Irp,
      writeToDevice,
    );
    if (!NT_SUCCESS(status)) {
      Irp.IoStatus.Status = status;
      k.IoStartNextPacket(DeviceObject, false);
      k.IoCompleteRequest(Irp, IO_NO_INCREMENT);
    }
  }

  #program(extension: NicExtension): void {
    const k = this.#kernel;
    const element = extension.list!.Elements[extension.element]!;
    const registers = extension.registers;
    k.WRITE_REGISTER_ULONG(registers + NIC_REG_ADDRESS_LOW, element.Address % TWO_POW_32);
    k.WRITE_REGISTER_ULONG(registers + NIC_REG_ADDRESS_HIGH, Math.floor(element.Address / TWO_POW_32));
    k.WRITE_REGISTER_ULONG(registers + NIC_REG_LENGTH, element.Length);
    k.WRITE_REGISTER_ULONG(
      registers + NIC_REG_CONTROL,
      NIC_CONTROL_START | (extension.writeToDevice ? 0 : NIC_CONTROL_TO_MEMORY),
    );
  }

  #isr(extension: NicExtension): boolean {
    const k = this.#kernel;
    const status = k.READ_REGISTER_ULONG(extension.registers + NIC_REG_STATUS);
    if ((status & (NIC_STATUS_DONE | NIC_STATUS_ERROR)) === 0) return false;
    k.WRITE_REGISTER_ULONG(extension.registers + NIC_REG_STATUS, status);
    k.IoRequestDpc(extension.fdo, extension.fdo.CurrentIrp, status);
    return true;
  }

  #dpcForIsr(_dpc: KDPC, DeviceObject: DEVICE_OBJECT, Irp: IRP | undefined, status: number): void {
    const extension = DeviceObject.DeviceExtension as NicExtension;
    const list = extension.list;
    if (list === undefined || Irp === undefined) return;
    if ((status & NIC_STATUS_ERROR) !== 0) {
      this.#finish(extension, Irp, STATUS_DEVICE_DATA_ERROR, 0);
      return;
    }
    extension.element++;
    if (extension.element < list.NumberOfElements) {
      this.#program(extension);
      return;
    }
    extension.stats.transfers++;
    this.#finish(extension, Irp, STATUS_SUCCESS, this.#kernel.MmGetMdlByteCount(Irp.MdlAddress!));
  }

  /** At DISPATCH_LEVEL: unmap, start the next request, complete this one. */
  #finish(extension: NicExtension, Irp: IRP, status: NTSTATUS, information: number): void {
    const k = this.#kernel;
    const adapter = extension.adapter!;
    adapter.DmaOperations.PutScatterGatherList(adapter, extension.list!, extension.writeToDevice);
    extension.list = undefined;
    Irp.IoStatus.Status = status;
    Irp.IoStatus.Information = information;
    k.IoStartNextPacket(extension.fdo, false);
    k.IoCompleteRequest(Irp, IO_NO_INCREMENT);
  }
}
