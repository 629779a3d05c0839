/**
 * The WDM function driver of the DMA engine ("dmaengsim"). It owns the chip and its channels and
 * offers them to kernel clients through `channels()` (a direct-call interface, see
 * dma-engine-channel.ts); it serves no read or write IRPs of its own. Clients never pick
 * hardware themselves: the offload service (src/offload) asks this driver which channels exist
 * and how busy they are.
 *
 * START_DEVICE: map the registers, connect the interrupt, read CHANNEL_COUNT and MAX_TRANSFER,
 * get a DMA adapter that tells the truth (a 64-bit scatter/gather bus master), allocate one ring
 * per channel as a common buffer and enable the channels. The ISR reads and clears
 * INTERRUPT_STATUS and queues the DpcForIsr, which services the channels whose bit was set.
 * STOP/REMOVE: reset the channels (their copies complete as STATUS_CANCELLED), free the rings,
 * put the adapter back.
 */
import {
  type CM_PARTIAL_RESOURCE_DESCRIPTOR,
  DEVICE_DESCRIPTION_VERSION2,
  type DEVICE_OBJECT,
  type DMA_ADAPTER,
  DO_DEVICE_INITIALIZING,
  type DRIVER_OBJECT,
  type DriverContribution,
  FILE_DEVICE_CONTROLLER,
  FILE_DEVICE_SECURE_OPEN,
  IO_NO_INCREMENT,
  type IRP,
  IRP_MJ_PNP,
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
  PASSIVE_LEVEL,
  PCIBus,
  type PVOID,
  ROUND_TO_PAGES,
  STATUS_INSUFFICIENT_RESOURCES,
  STATUS_NO_SUCH_DEVICE,
  STATUS_SUCCESS,
  zeroedDeviceDescription,
} from "../../src/ddi/index.js";
import {
  DmaEngineChannel,
  RING_DESCRIPTORS,
  type RingBuffer,
  segmentBytesFor,
} from "./dma-engine-channel.js";
import {
  DMAE_DESC_SIZE,
  DMAE_DEVICE_ID,
  DMAE_REG_CHANNEL_COUNT,
  DMAE_REG_INTERRUPT_STATUS,
  DMAE_REG_MAX_TRANSFER,
  DMAE_VENDOR_ID,
} from "./dma-engine-hw.js";

/** The most bytes one pair of scatter/gather lists maps: the adapter's MaximumLength. */
export const SEGMENT_BYTES = 4 * 1024 * 1024;

interface EngineExtension {
  readonly name: string;
  readonly pdo: DEVICE_OBJECT;
  readonly fdo: DEVICE_OBJECT;
  readonly lower: DEVICE_OBJECT;
  registers: PVOID;
  registerLength: number;
  interrupt: KINTERRUPT | undefined;
  adapter: DMA_ADAPTER | undefined;
  channels: DmaEngineChannel[];
  /** INTERRUPT_STATUS bits the ISR collected for the DPC. */
  pendingChannels: number;
  interrupts: number;
}

@injectable()
export class DmaEngineDriver implements DriverContribution {
  readonly serviceName = "dmaengsim";
  readonly hardwareIds = [`PCI\\VEN_${hex4(DMAE_VENDOR_ID)}&DEV_${hex4(DMAE_DEVICE_ID)}`];
  readonly #kernel: Kernel;
  /** Started devices, in start order. */
  readonly #engines: EngineExtension[] = [];
  #instances = 0;

  constructor(@inject(Kernel) kernel: Kernel) {
    this.#kernel = kernel;
  }

  DriverEntry(DriverObject: DRIVER_OBJECT, _RegistryPath: string): NTSTATUS {
    DriverObject.MajorFunction[IRP_MJ_PNP] = (device, irp) => this.#dispatchPnp(device, irp);
    DriverObject.DriverExtension.AddDevice = (driver, pdo) => this.#addDevice(driver, pdo);
    DriverObject.DriverUnload = () => {};
    return STATUS_SUCCESS;
  }

  /** Every running channel of every started engine, engine by engine, channel by channel. */
  channels(): readonly DmaEngineChannel[] {
    return this.#engines.flatMap((engine) => engine.channels.filter((channel) => channel.running));
  }

  /** Interrupts the ISR claimed for the device behind `DeviceObject` (its FDO). */
  interruptCount(DeviceObject: DEVICE_OBJECT): number {
    return (DeviceObject.DeviceExtension as EngineExtension).interrupts;
  }

  #addDevice(DriverObject: DRIVER_OBJECT, PhysicalDeviceObject: DEVICE_OBJECT): NTSTATUS {
    const k = this.#kernel;
    const name = `\\Device\\DmaEngine${this.#instances++}`;
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
    const extension: EngineExtension = {
      name,
      pdo: PhysicalDeviceObject,
      fdo,
      lower,
      registers: 0,
      registerLength: 0,
      interrupt: undefined,
      adapter: undefined,
      channels: [],
      pendingChannels: 0,
      interrupts: 0,
    };
    fdo.DeviceExtension = extension;
    fdo.Flags &= ~DO_DEVICE_INITIALIZING;
    return STATUS_SUCCESS;
  }

  #dispatchPnp(DeviceObject: DEVICE_OBJECT, Irp: IRP): NTSTATUS {
    const k = this.#kernel;
    const extension = DeviceObject.DeviceExtension as EngineExtension;
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

  #start(extension: EngineExtension, resources: readonly CM_PARTIAL_RESOURCE_DESCRIPTOR[]): NTSTATUS {
    const k = this.#kernel;
    for (const resource of resources) {
      if (resource.Type === "CmResourceTypeMemory") {
        extension.registers = k.MmMapIoSpace(resource.Start, resource.Length, MmNonCached);
        extension.registerLength = resource.Length;
      } else {
        const connected = k.IoConnectInterrupt(
          (interrupt, context) => this.#isr(interrupt, context as EngineExtension),
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
    const channelCount = this.#read(extension, DMAE_REG_CHANNEL_COUNT);
    const maxTransfer = this.#read(extension, DMAE_REG_MAX_TRANSFER);
    if (channelCount === 0 || maxTransfer === 0) return STATUS_NO_SUCH_DEVICE;

    // The truth about the chip: a 64-bit bus master that follows scatter/gather lists.
    const description = zeroedDeviceDescription();
    description.Version = DEVICE_DESCRIPTION_VERSION2;
    description.Master = true;
    description.ScatterGather = true;
    description.Dma64BitAddresses = true;
    description.InterfaceType = PCIBus;
    description.MaximumLength = SEGMENT_BYTES;
    const { Adapter, NumberOfMapRegisters } = k.IoGetDmaAdapter(extension.pdo, description);
    if (Adapter === undefined || NumberOfMapRegisters < 2) return STATUS_INSUFFICIENT_RESOURCES;
    extension.adapter = Adapter;
    const host = {
      kernel: k,
      adapter: Adapter,
      deviceObject: extension.fdo,
      registers: extension.registers,
      maxTransfer,
      segmentBytes: segmentBytesFor(SEGMENT_BYTES, NumberOfMapRegisters),
    };
    for (let index = 0; index < channelCount; index++) {
      const ring = this.#allocateRing(Adapter);
      if (ring === undefined) return STATUS_INSUFFICIENT_RESOURCES;
      extension.channels.push(new DmaEngineChannel(host, extension.name, index, ring));
    }
    k.IoInitializeDpcRequest(extension.fdo, (dpc, device) => this.#dpcForIsr(dpc, device));
    this.#write(extension, DMAE_REG_INTERRUPT_STATUS, 0xffffffff);
    for (const channel of extension.channels) {
      if (!channel.start()) return STATUS_INSUFFICIENT_RESOURCES;
    }
    this.#engines.push(extension);
    return STATUS_SUCCESS;
  }

  /** STOP, SURPRISE_REMOVAL, REMOVE or a failed START: quiesce the chip and give everything back. */
  #release(extension: EngineExtension): void {
    const k = this.#kernel;
    const index = this.#engines.indexOf(extension);
    if (index >= 0) this.#engines.splice(index, 1);
    for (const channel of extension.channels) channel.stop();
    if (extension.interrupt !== undefined) k.IoDisconnectInterrupt(extension.interrupt);
    extension.interrupt = undefined;
    const adapter = extension.adapter;
    if (adapter !== undefined) {
      for (const { ring } of extension.channels) {
        adapter.DmaOperations.FreeCommonBuffer(
          adapter,
          ring.Length,
          ring.LogicalAddress,
          ring.VirtualAddress,
          false,
        );
      }
      adapter.DmaOperations.PutDmaAdapter(adapter);
    }
    extension.channels = [];
    extension.adapter = undefined;
    if (extension.registers !== 0) k.MmUnmapIoSpace(extension.registers, extension.registerLength);
    extension.registers = 0;
  }

  #allocateRing(adapter: DMA_ADAPTER): RingBuffer | undefined {
    const k = this.#kernel;
    if (k.KeGetCurrentIrql() !== PASSIVE_LEVEL) return undefined;
    const length = RING_DESCRIPTORS * DMAE_DESC_SIZE;
    const { VirtualAddress, LogicalAddress } = adapter.DmaOperations.AllocateCommonBuffer(
      adapter,
      length,
      false,
    );
    if (VirtualAddress === 0) return undefined;
    k.RtlZeroMemory(VirtualAddress, ROUND_TO_PAGES(length));
    return { VirtualAddress, LogicalAddress, Length: length };
  }

  /** KSERVICE_ROUTINE at DIRQL: collect and clear the channel bits, leave the work to the DPC. */
  #isr(_interrupt: KINTERRUPT, extension: EngineExtension): boolean {
    const bits = this.#read(extension, DMAE_REG_INTERRUPT_STATUS);
    if (bits === 0) return false;
    this.#write(extension, DMAE_REG_INTERRUPT_STATUS, bits);
    extension.pendingChannels |= bits;
    extension.interrupts++;
    this.#kernel.IoRequestDpc(extension.fdo, undefined, undefined);
    return true;
  }

  #dpcForIsr(_dpc: KDPC, DeviceObject: DEVICE_OBJECT): void {
    const extension = DeviceObject.DeviceExtension as EngineExtension;
    const interrupt = extension.interrupt;
    if (interrupt === undefined) return;
    const taken = { bits: 0 };
    this.#kernel.KeSynchronizeExecution(
      interrupt,
      (context) => {
        (context as { bits: number }).bits = extension.pendingChannels;
        extension.pendingChannels = 0;
        return true;
      },
      taken,
    );
    for (const channel of extension.channels) {
      if ((taken.bits & (1 << channel.index)) !== 0) channel.service();
    }
  }

  #read(extension: EngineExtension, offset: number): number {
    return this.#kernel.READ_REGISTER_ULONG(extension.registers + offset);
  }

  #write(extension: EngineExtension, offset: number, value: number): void {
    this.#kernel.WRITE_REGISTER_ULONG(extension.registers + offset, value);
  }
}

function hex4(value: number): string {
  return value.toString(16).toUpperCase().padStart(4, "0");
}
