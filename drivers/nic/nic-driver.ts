/**
 * A WDM function driver for the e1000-like NIC, shaped like an NDIS scatter/gather miniport
 * (reference section 8) with a TAP-style interface on top: IRP_MJ_WRITE sends the MDL's bytes as
 * one Ethernet frame, IRP_MJ_READ completes with the next frame received.
 *
 * - Rings and receive buffers are common buffers (AllocateCommonBuffer): the chip reads its
 *   descriptors and writes received frames there for as long as the device runs.
 * - Send: GetScatterGatherList per frame (NdisMAllocateNetBufferSGList does exactly this); each
 *   SCATTER_GATHER_ELEMENT becomes one transmit descriptor, the last with EOP and RS. A list
 *   that finds the ring full waits in a backlog until the DPC frees descriptors.
 * - Receive: every descriptor is pre-posted with its own 2 KiB slice of the receive common
 *   buffer; a frame longer than that spans several descriptors up to EOP.
 * - The ISR only reads ICR (which clears it) and queues the DpcForIsr. The DPC reclaims sent
 *   frames, calling PutScatterGatherList before completing their IRPs, and hands received
 *   frames to pending reads. ITR moderates the interrupt rate (manual 13.4.18).
 */
import {
  ADDRESS_AND_SIZE_TO_SPAN_PAGES,
  type CM_PARTIAL_RESOURCE_DESCRIPTOR,
  DEVICE_DESCRIPTION_VERSION2,
  type DEVICE_OBJECT,
  DISPATCH_LEVEL,
  type DMA_ADAPTER,
  DO_DEVICE_INITIALIZING,
  DO_DIRECT_IO,
  type DRIVER_OBJECT,
  type DriverContribution,
  FILE_DEVICE_NETWORK,
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
  KSPIN_LOCK,
  LevelSensitive,
  MmNonCached,
  NormalPagePriority,
  NT_SUCCESS,
  type NTSTATUS,
  PAGE_SIZE,
  PCIBus,
  type PVOID,
  type SCATTER_GATHER_LIST,
  STATUS_BUFFER_TOO_SMALL,
  STATUS_CANCELLED,
  STATUS_DEVICE_NOT_READY,
  STATUS_INSUFFICIENT_RESOURCES,
  STATUS_INVALID_PARAMETER,
  STATUS_NO_SUCH_DEVICE,
  STATUS_PENDING,
  STATUS_SUCCESS,
  zeroedDeviceDescription,
} from "../../src/ddi/index.js";
import {
  E1000_CTRL,
  E1000_CTRL_RST,
  E1000_CTRL_SLU,
  E1000_DESC_ADDR,
  E1000_DESC_LENGTH,
  E1000_DESC_SIZE,
  E1000_DEV_ID_82540EM,
  E1000_ICR,
  E1000_ICR_DMAERR,
  E1000_ICR_LSC,
  E1000_ICR_RXO,
  E1000_ICR_RXT0,
  E1000_ICR_TXDW,
  E1000_ICR_TXQE,
  E1000_IMC,
  E1000_IMS,
  E1000_ITR,
  E1000_ITR_UNIT_NS,
  E1000_MAX_FRAME,
  E1000_RCTL,
  E1000_RCTL_BAM,
  E1000_RCTL_EN,
  E1000_RCTL_SECRC,
  E1000_RCTL_SZ_2048,
  E1000_RDBAH,
  E1000_RDBAL,
  E1000_RDH,
  E1000_RDLEN,
  E1000_RDT,
  E1000_RX_BUFFER_SIZE,
  E1000_RXD_STAT_DD,
  E1000_RXD_STAT_EOP,
  E1000_RXD_STATUS,
  E1000_TCTL,
  E1000_TCTL_EN,
  E1000_TCTL_PSP,
  E1000_TDBAH,
  E1000_TDBAL,
  E1000_TDH,
  E1000_TDLEN,
  E1000_TDT,
  E1000_TXD_CMD,
  E1000_TXD_CMD_EOP,
  E1000_TXD_CMD_IFCS,
  E1000_TXD_CMD_RS,
  E1000_TXD_STAT_DD,
  E1000_TXD_STATUS,
  E1000_VENDOR_ID,
} from "./nic-hw.js";

const TX_DESCRIPTORS = 64;
const RX_DESCRIPTORS = 64;
/** Interrupt moderation: at most one interrupt per 20 µs (Linux e1000 "dynamic" starts near this). */
const ITR_INTERVAL_NS = 20_000;
/** Received frames kept while no read is pending; more are dropped, as a full socket buffer does. */
const MAX_QUEUED_FRAMES = 64;
const INTERRUPT_CAUSES =
  E1000_ICR_TXDW | E1000_ICR_TXQE | E1000_ICR_RXT0 | E1000_ICR_RXO | E1000_ICR_DMAERR | E1000_ICR_LSC;
const TWO_POW_32 = 2 ** 32;
/** Ethernet header: the shortest frame the driver accepts to send. */
const MIN_SEND_BYTES = 14;

interface CommonBuffer {
  readonly VirtualAddress: PVOID;
  readonly LogicalAddress: number;
  readonly Length: number;
}

/** A frame handed to the chip: its IRP, its list, and the descriptors it occupies. */
interface TxFrame {
  readonly irp: IRP;
  readonly list: SCATTER_GATHER_LIST;
  readonly first: number;
  readonly last: number;
  readonly count: number;
}

export interface NicStatistics {
  framesSent: number;
  framesReceived: number;
  /** Frames the chip dropped for want of a receive descriptor (ICR.RXO). */
  receiveOverruns: number;
  /** Frames dropped because no read was pending and the queue was full. */
  framesDropped: number;
  interrupts: number;
  dpcs: number;
  dmaErrors: number;
}

interface NicExtension {
  readonly pdo: DEVICE_OBJECT;
  readonly fdo: DEVICE_OBJECT;
  readonly lower: DEVICE_OBJECT;
  readonly lock: KSPIN_LOCK;
  registers: PVOID;
  registerLength: number;
  interrupt: KINTERRUPT | undefined;
  adapter: DMA_ADAPTER | undefined;
  txRing: CommonBuffer | undefined;
  rxRing: CommonBuffer | undefined;
  rxBuffers: CommonBuffer | undefined;
  /** Transmit ring bookkeeping: frames by first descriptor, next free slot, next to reclaim. */
  readonly txFrames: (TxFrame | undefined)[];
  txNextToUse: number;
  txNextToClean: number;
  txFree: number;
  /** Lists whose frame did not fit in the ring yet, oldest first. */
  readonly txBacklog: { irp: IRP; list: SCATTER_GATHER_LIST }[];
  rxNextToClean: number;
  /** Pieces of a frame spanning several receive descriptors, until its EOP. */
  readonly rxPieces: Uint8Array[];
  readonly pendingReads: IRP[];
  readonly receivedFrames: Uint8Array[];
  /** ICR causes the ISR collected for the DPC (read under KeSynchronizeExecution). */
  pendingIcr: number;
  /** One descriptor image, reused for every descriptor write. */
  readonly descriptor: Uint8Array;
  readonly descriptorView: DataView;
  readonly stats: NicStatistics;
}

@injectable()
export class NicDriver implements DriverContribution {
  readonly serviceName = "e1000sim";
  readonly hardwareIds = [`PCI\\VEN_${hex4(E1000_VENDOR_ID)}&DEV_${hex4(E1000_DEV_ID_82540EM)}`];
  readonly #kernel: Kernel;
  #instances = 0;

  constructor(@inject(Kernel) kernel: Kernel) {
    this.#kernel = kernel;
  }

  DriverEntry(DriverObject: DRIVER_OBJECT, _RegistryPath: string): NTSTATUS {
    DriverObject.MajorFunction[IRP_MJ_PNP] = (device, irp) => this.#dispatchPnp(device, irp);
    DriverObject.MajorFunction[IRP_MJ_WRITE] = (device, irp) => this.#dispatchWrite(device, irp);
    DriverObject.MajorFunction[IRP_MJ_READ] = (device, irp) => this.#dispatchRead(device, irp);
    DriverObject.DriverExtension.AddDevice = (driver, pdo) => this.#addDevice(driver, pdo);
    DriverObject.DriverUnload = () => {};
    return STATUS_SUCCESS;
  }

  /** The statistics of a device this driver runs (its FDO's extension), for tools and tests. */
  statistics(DeviceObject: DEVICE_OBJECT): Readonly<NicStatistics> {
    return (DeviceObject.DeviceExtension as NicExtension).stats;
  }

  #addDevice(DriverObject: DRIVER_OBJECT, PhysicalDeviceObject: DEVICE_OBJECT): NTSTATUS {
    const k = this.#kernel;
    const name = `\\Device\\E1000Sim${this.#instances++}`;
    const created = k.IoCreateDevice(
      DriverObject,
      0,
      name,
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
    const lock = new KSPIN_LOCK();
    const descriptor = new Uint8Array(E1000_DESC_SIZE);
    k.KeInitializeSpinLock(lock);
    const extension: NicExtension = {
      pdo: PhysicalDeviceObject,
      fdo,
      lower,
      lock,
      registers: 0,
      registerLength: 0,
      interrupt: undefined,
      adapter: undefined,
      txRing: undefined,
      rxRing: undefined,
      rxBuffers: undefined,
      txFrames: new Array<TxFrame | undefined>(TX_DESCRIPTORS).fill(undefined),
      txNextToUse: 0,
      txNextToClean: 0,
      txFree: TX_DESCRIPTORS - 1,
      txBacklog: [],
      rxNextToClean: 0,
      rxPieces: [],
      pendingReads: [],
      receivedFrames: [],
      pendingIcr: 0,
      descriptor,
      descriptorView: new DataView(descriptor.buffer),
      stats: {
        framesSent: 0,
        framesReceived: 0,
        receiveOverruns: 0,
        framesDropped: 0,
        interrupts: 0,
        dpcs: 0,
        dmaErrors: 0,
      },
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

  /** IRP_MN_START_DEVICE: registers, interrupt, adapter, rings; then the chip is enabled. */
  #start(extension: NicExtension, resources: readonly CM_PARTIAL_RESOURCE_DESCRIPTOR[]): NTSTATUS {
    const k = this.#kernel;
    for (const resource of resources) {
      if (resource.Type === "CmResourceTypeMemory") {
        extension.registers = k.MmMapIoSpace(resource.Start, resource.Length, MmNonCached);
        extension.registerLength = resource.Length;
      } else {
        const connected = k.IoConnectInterrupt(
          (interrupt, context) => this.#isr(interrupt, context as NicExtension),
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

    // Reset the chip, then mask and acknowledge every cause before anything can interrupt.
    this.#write(extension, E1000_CTRL, E1000_CTRL_RST);
    this.#write(extension, E1000_CTRL, E1000_CTRL_SLU);
    this.#write(extension, E1000_IMC, 0xffffffff);
    this.#read(extension, E1000_ICR);

    const description = zeroedDeviceDescription();
    description.Version = DEVICE_DESCRIPTION_VERSION2;
    description.Master = true;
    description.ScatterGather = true;
    description.Dma64BitAddresses = true;
    description.InterfaceType = PCIBus;
    description.MaximumLength = E1000_MAX_FRAME;
    const { Adapter } = k.IoGetDmaAdapter(extension.pdo, description);
    if (Adapter === undefined) return STATUS_INSUFFICIENT_RESOURCES;
    extension.adapter = Adapter;

    extension.txRing = this.#allocateCommonBuffer(Adapter, TX_DESCRIPTORS * E1000_DESC_SIZE);
    extension.rxRing = this.#allocateCommonBuffer(Adapter, RX_DESCRIPTORS * E1000_DESC_SIZE);
    extension.rxBuffers = this.#allocateCommonBuffer(Adapter, RX_DESCRIPTORS * E1000_RX_BUFFER_SIZE);
    if (
      extension.txRing === undefined ||
      extension.rxRing === undefined ||
      extension.rxBuffers === undefined
    ) {
      return STATUS_INSUFFICIENT_RESOURCES;
    }
    for (let slot = 0; slot < RX_DESCRIPTORS; slot++) this.#postReceive(extension, slot);

    this.#write64(extension, E1000_TDBAL, E1000_TDBAH, extension.txRing.LogicalAddress);
    this.#write(extension, E1000_TDLEN, extension.txRing.Length);
    this.#write(extension, E1000_TDH, 0);
    this.#write(extension, E1000_TDT, 0);
    this.#write64(extension, E1000_RDBAL, E1000_RDBAH, extension.rxRing.LogicalAddress);
    this.#write(extension, E1000_RDLEN, extension.rxRing.Length);
    this.#write(extension, E1000_RDH, 0);
    // The chip owns RDH up to RDT (exclusive): one descriptor stays back so that a full ring
    // is not mistaken for an empty one.
    this.#write(extension, E1000_RDT, RX_DESCRIPTORS - 1);

    k.IoInitializeDpcRequest(extension.fdo, (dpc, device) => this.#dpcForIsr(dpc, device));
    this.#write(extension, E1000_ITR, Math.round(ITR_INTERVAL_NS / E1000_ITR_UNIT_NS));
    this.#write(extension, E1000_IMS, INTERRUPT_CAUSES);
    this.#write(
      extension,
      E1000_RCTL,
      E1000_RCTL_EN | E1000_RCTL_BAM | E1000_RCTL_SECRC | E1000_RCTL_SZ_2048,
    );
    this.#write(extension, E1000_TCTL, E1000_TCTL_EN | E1000_TCTL_PSP);
    return STATUS_SUCCESS;
  }

  /** STOP, SURPRISE_REMOVAL, REMOVE or a failed START: quiesce the chip and give everything back. */
  #release(extension: NicExtension): void {
    const k = this.#kernel;
    if (extension.registers !== 0) {
      this.#write(extension, E1000_IMC, 0xffffffff);
      this.#write(extension, E1000_RCTL, 0);
      this.#write(extension, E1000_TCTL, 0);
      this.#write(extension, E1000_CTRL, E1000_CTRL_RST);
    }
    if (extension.interrupt !== undefined) k.IoDisconnectInterrupt(extension.interrupt);
    extension.interrupt = undefined;
    const adapter = extension.adapter;
    if (adapter !== undefined) {
      // Frames the chip will never send: their lists go back before their IRPs complete.
      const old = k.KeRaiseIrql(DISPATCH_LEVEL);
      for (const frame of extension.txFrames) {
        if (frame === undefined) continue;
        adapter.DmaOperations.PutScatterGatherList(adapter, frame.list, true);
        this.#complete(frame.irp, STATUS_CANCELLED, 0);
      }
      for (const waiting of extension.txBacklog.splice(0)) {
        adapter.DmaOperations.PutScatterGatherList(adapter, waiting.list, true);
        this.#complete(waiting.irp, STATUS_CANCELLED, 0);
      }
      for (const read of extension.pendingReads.splice(0)) this.#complete(read, STATUS_CANCELLED, 0);
      k.KeLowerIrql(old);
      extension.txFrames.fill(undefined);
      extension.txNextToUse = 0;
      extension.txNextToClean = 0;
      extension.txFree = TX_DESCRIPTORS - 1;
      extension.rxNextToClean = 0;
      extension.rxPieces.length = 0;
      for (const buffer of [extension.txRing, extension.rxRing, extension.rxBuffers]) {
        if (buffer !== undefined) {
          adapter.DmaOperations.FreeCommonBuffer(
            adapter,
            buffer.Length,
            buffer.LogicalAddress,
            buffer.VirtualAddress,
            false,
          );
        }
      }
      adapter.DmaOperations.PutDmaAdapter(adapter);
    }
    extension.txRing = undefined;
    extension.rxRing = undefined;
    extension.rxBuffers = undefined;
    extension.adapter = undefined;
    if (extension.registers !== 0) k.MmUnmapIoSpace(extension.registers, extension.registerLength);
    extension.registers = 0;
  }

  /** IRP_MJ_WRITE: send the buffer as one frame. The list callback may run before this returns. */
  #dispatchWrite(DeviceObject: DEVICE_OBJECT, Irp: IRP): NTSTATUS {
    const k = this.#kernel;
    const extension = DeviceObject.DeviceExtension as NicExtension;
    const adapter = extension.adapter;
    const mdl = Irp.MdlAddress;
    if (adapter === undefined) return this.#complete(Irp, STATUS_DEVICE_NOT_READY, 0);
    if (mdl === undefined) return this.#complete(Irp, STATUS_INVALID_PARAMETER, 0);
    const length = k.MmGetMdlByteCount(mdl);
    const va = k.MmGetMdlVirtualAddress(mdl);
    if (
      length < MIN_SEND_BYTES ||
      length > E1000_MAX_FRAME ||
      ADDRESS_AND_SIZE_TO_SPAN_PAGES(va, length) > TX_DESCRIPTORS / 2
    ) {
      return this.#complete(Irp, STATUS_INVALID_PARAMETER, 0);
    }
    k.IoMarkIrpPending(Irp);
    // A VERSION2 adapter leaves the caches to the driver: the frame's dirty lines must reach
    // memory before the chip reads it (a no-op on a coherent machine; reference section 5).
    k.KeFlushIoBuffers(mdl, false, true);
    const old = k.KeRaiseIrql(DISPATCH_LEVEL);
    const status = adapter.DmaOperations.GetScatterGatherList(
      adapter,
      DeviceObject,
      mdl,
      va,
      length,
      (_device, _irp, list, context) => this.#transmit(extension, context as IRP, list),
      Irp,
      true,
    );
    if (!NT_SUCCESS(status)) this.#complete(Irp, status, 0);
    k.KeLowerIrql(old);
    return STATUS_PENDING;
  }

  /** IRP_MJ_READ: the next received frame, now if one is queued, else when it arrives. */
  #dispatchRead(DeviceObject: DEVICE_OBJECT, Irp: IRP): NTSTATUS {
    const k = this.#kernel;
    const extension = DeviceObject.DeviceExtension as NicExtension;
    if (extension.adapter === undefined) return this.#complete(Irp, STATUS_DEVICE_NOT_READY, 0);
    if (Irp.MdlAddress === undefined) return this.#complete(Irp, STATUS_INVALID_PARAMETER, 0);
    k.IoMarkIrpPending(Irp);
    const old = k.KeAcquireSpinLock(extension.lock);
    const frame = extension.receivedFrames.shift();
    if (frame === undefined) extension.pendingReads.push(Irp);
    else this.#deliver(Irp, frame);
    k.KeReleaseSpinLock(extension.lock, old);
    return STATUS_PENDING;
  }

  /** DRIVER_LIST_CONTROL of a send, at DISPATCH_LEVEL: queue the list for the ring. */
  #transmit(extension: NicExtension, irp: IRP, list: SCATTER_GATHER_LIST): void {
    const k = this.#kernel;
    k.KeAcquireSpinLockAtDpcLevel(extension.lock);
    extension.txBacklog.push({ irp, list });
    this.#fillTxRing(extension);
    k.KeReleaseSpinLockFromDpcLevel(extension.lock);
  }

  /** Moves backlogged lists into free descriptors, one descriptor per element; then TDT. */
  #fillTxRing(extension: NicExtension): void {
    const ring = extension.txRing!;
    const { descriptor, descriptorView: view } = extension;
    let queued = false;
    while (extension.txBacklog.length > 0) {
      const { irp, list } = extension.txBacklog[0]!;
      const count = list.NumberOfElements;
      if (count > extension.txFree) break;
      extension.txBacklog.shift();
      const first = extension.txNextToUse;
      let slot = first;
      for (let i = 0; i < count; i++) {
        const element = list.Elements[i]!;
        const last = i === count - 1;
        descriptor.fill(0);
        view.setUint32(E1000_DESC_ADDR, element.Address % TWO_POW_32, true);
        view.setUint32(E1000_DESC_ADDR + 4, Math.floor(element.Address / TWO_POW_32), true);
        view.setUint16(E1000_DESC_LENGTH, element.Length, true);
        view.setUint8(
          E1000_TXD_CMD,
          last ? E1000_TXD_CMD_EOP | E1000_TXD_CMD_IFCS | E1000_TXD_CMD_RS : E1000_TXD_CMD_IFCS,
        );
        this.#kernel.WriteMemory(ring.VirtualAddress + slot * E1000_DESC_SIZE, descriptor);
        if (!last) slot = (slot + 1) % TX_DESCRIPTORS;
      }
      extension.txFrames[first] = { irp, list, first, last: slot, count };
      extension.txNextToUse = (slot + 1) % TX_DESCRIPTORS;
      extension.txFree -= count;
      queued = true;
    }
    if (queued) this.#write(extension, E1000_TDT, extension.txNextToUse);
  }

  /** KSERVICE_ROUTINE at DIRQL: read (and so clear) the causes, leave the work to the DPC. */
  #isr(_interrupt: KINTERRUPT, extension: NicExtension): boolean {
    const icr = this.#read(extension, E1000_ICR);
    if (icr === 0) return false;
    extension.pendingIcr |= icr;
    extension.stats.interrupts++;
    this.#kernel.IoRequestDpc(extension.fdo, undefined, undefined);
    return true;
  }

  #dpcForIsr(_dpc: KDPC, DeviceObject: DEVICE_OBJECT): void {
    const k = this.#kernel;
    const extension = DeviceObject.DeviceExtension as NicExtension;
    if (extension.interrupt === undefined || extension.adapter === undefined) return;
    const taken = { icr: 0 };
    k.KeSynchronizeExecution(
      extension.interrupt,
      (context) => {
        (context as { icr: number }).icr = extension.pendingIcr;
        extension.pendingIcr = 0;
        return true;
      },
      taken,
    );
    extension.stats.dpcs++;
    k.KeAcquireSpinLockAtDpcLevel(extension.lock);
    if ((taken.icr & (E1000_ICR_TXDW | E1000_ICR_TXQE)) !== 0) this.#reclaimTx(extension);
    if ((taken.icr & (E1000_ICR_RXT0 | E1000_ICR_RXO)) !== 0) this.#receive(extension);
    if ((taken.icr & E1000_ICR_RXO) !== 0) extension.stats.receiveOverruns++;
    if ((taken.icr & E1000_ICR_DMAERR) !== 0) extension.stats.dmaErrors++;
    k.KeReleaseSpinLockFromDpcLevel(extension.lock);
  }

  /** Sent frames: PutScatterGatherList, then complete the IRP; then refill from the backlog. */
  #reclaimTx(extension: NicExtension): void {
    const adapter = extension.adapter!;
    const ring = extension.txRing!;
    for (;;) {
      const frame = extension.txFrames[extension.txNextToClean];
      if (frame === undefined) break;
      const status = this.#kernel.ReadMemory(
        ring.VirtualAddress + frame.last * E1000_DESC_SIZE + E1000_TXD_STATUS,
        1,
      )[0]!;
      if ((status & E1000_TXD_STAT_DD) === 0) break;
      extension.txFrames[frame.first] = undefined;
      extension.txNextToClean = (frame.last + 1) % TX_DESCRIPTORS;
      extension.txFree += frame.count;
      adapter.DmaOperations.PutScatterGatherList(adapter, frame.list, true);
      extension.stats.framesSent++;
      this.#complete(frame.irp, STATUS_SUCCESS, this.#kernel.MmGetMdlByteCount(frame.irp.MdlAddress!));
    }
    this.#fillTxRing(extension);
  }

  /** Received descriptors: copy each frame out of its buffers, give the descriptors back. */
  #receive(extension: NicExtension): void {
    const k = this.#kernel;
    const ring = extension.rxRing!;
    const buffers = extension.rxBuffers!;
    let cleaned = false;
    for (;;) {
      const slot = extension.rxNextToClean;
      const raw = k.ReadMemory(ring.VirtualAddress + slot * E1000_DESC_SIZE, E1000_DESC_SIZE);
      const view = new DataView(raw.buffer);
      const status = view.getUint8(E1000_RXD_STATUS);
      if ((status & E1000_RXD_STAT_DD) === 0) break;
      const length = view.getUint16(E1000_DESC_LENGTH, true);
      extension.rxPieces.push(k.ReadMemory(buffers.VirtualAddress + slot * E1000_RX_BUFFER_SIZE, length));
      this.#postReceive(extension, slot);
      extension.rxNextToClean = (slot + 1) % RX_DESCRIPTORS;
      cleaned = true;
      if ((status & E1000_RXD_STAT_EOP) !== 0)
        this.#frameReceived(extension, concat(extension.rxPieces.splice(0)));
    }
    // Hand the cleaned descriptors back, still keeping one: the chip owns RDH..RDT-1.
    if (cleaned)
      this.#write(extension, E1000_RDT, (extension.rxNextToClean + RX_DESCRIPTORS - 1) % RX_DESCRIPTORS);
  }

  #frameReceived(extension: NicExtension, frame: Uint8Array): void {
    extension.stats.framesReceived++;
    const read = extension.pendingReads.shift();
    if (read !== undefined) {
      this.#deliver(read, frame);
    } else if (extension.receivedFrames.length < MAX_QUEUED_FRAMES) {
      extension.receivedFrames.push(frame);
    } else {
      extension.stats.framesDropped++;
    }
  }

  /** Copies a frame into a read IRP's buffer and completes it. */
  #deliver(Irp: IRP, frame: Uint8Array): void {
    const k = this.#kernel;
    const mdl = Irp.MdlAddress!;
    if (frame.length > k.MmGetMdlByteCount(mdl)) {
      this.#complete(Irp, STATUS_BUFFER_TOO_SMALL, 0);
      return;
    }
    const va = k.MmGetSystemAddressForMdlSafe(mdl, NormalPagePriority);
    if (va === 0) {
      this.#complete(Irp, STATUS_INSUFFICIENT_RESOURCES, 0);
      return;
    }
    k.WriteMemory(va, frame);
    this.#complete(Irp, STATUS_SUCCESS, frame.length);
  }

  /** Gives receive descriptor `slot` its buffer back, status cleared. */
  #postReceive(extension: NicExtension, slot: number): void {
    const { descriptor, descriptorView: view } = extension;
    const address = extension.rxBuffers!.LogicalAddress + slot * E1000_RX_BUFFER_SIZE;
    descriptor.fill(0);
    view.setUint32(E1000_DESC_ADDR, address % TWO_POW_32, true);
    view.setUint32(E1000_DESC_ADDR + 4, Math.floor(address / TWO_POW_32), true);
    this.#kernel.WriteMemory(extension.rxRing!.VirtualAddress + slot * E1000_DESC_SIZE, descriptor);
  }

  #allocateCommonBuffer(adapter: DMA_ADAPTER, length: number): CommonBuffer | undefined {
    const k = this.#kernel;
    const { VirtualAddress, LogicalAddress } = adapter.DmaOperations.AllocateCommonBuffer(
      adapter,
      length,
      false,
    );
    if (VirtualAddress === 0) return undefined;
    k.RtlZeroMemory(VirtualAddress, Math.ceil(length / PAGE_SIZE) * PAGE_SIZE);
    return { VirtualAddress, LogicalAddress, Length: length };
  }

  #complete(Irp: IRP, status: NTSTATUS, information: number): NTSTATUS {
    Irp.IoStatus.Status = status;
    Irp.IoStatus.Information = information;
    this.#kernel.IoCompleteRequest(Irp, IO_NO_INCREMENT);
    return status;
  }

  #read(extension: NicExtension, offset: number): number {
    return this.#kernel.READ_REGISTER_ULONG(extension.registers + offset);
  }

  #write(extension: NicExtension, offset: number, value: number): void {
    this.#kernel.WRITE_REGISTER_ULONG(extension.registers + offset, value);
  }

  #write64(extension: NicExtension, low: number, high: number, value: number): void {
    this.#write(extension, low, value % TWO_POW_32);
    this.#write(extension, high, Math.floor(value / TWO_POW_32));
  }
}

function concat(pieces: readonly Uint8Array[]): Uint8Array {
  if (pieces.length === 1) return pieces[0]!;
  const out = new Uint8Array(pieces.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const piece of pieces) {
    out.set(piece, offset);
    offset += piece.length;
  }
  return out;
}

function hex4(value: number): string {
  return value.toString(16).toUpperCase().padStart(4, "0");
}
