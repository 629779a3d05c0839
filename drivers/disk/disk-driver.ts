/**
 * A WDM function driver for the NVMe-like disk: IRP_MJ_READ and IRP_MJ_WRITE of whole sectors,
 * through StartIo, one command at a time. Shaped like a StorPort miniport that owns its buffers
 * (StorPortBuildScatterGatherList, reference section 8) and like KMDF's scatter/gather profile:
 *
 * - At START the driver sizes ONE scatter/gather list buffer with CalculateScatterGatherList for
 *   the largest transfer its map registers allow, as KMDF's DMA enabler does for its lookaside
 *   list (Mdl NULL, Length = NumberOfMapRegisters pages), so no I/O ever allocates a list.
 * - A request longer than (NumberOfMapRegisters - 1) pages is split into transfers of at most
 *   that size (KMDF's fragment length; WDK "Splitting DMA transfer requests"), each mapped with
 *   BuildScatterGatherList into that buffer and released with PutScatterGatherList in the DPC.
 * - Each list becomes PRP entries (NVMe 1.4 section 4.3): PRP1, PRP2, or a PRP list in a common
 *   buffer. The queues are common buffers too.
 * - The ISR checks the phase tag of the next completion entry, masks the controller's interrupt
 *   and queues the DpcForIsr, which consumes the completions, rings the head doorbell, puts the
 *   list, starts the next transfer or completes the IRP, and unmasks.
 */
import {
  type CM_PARTIAL_RESOURCE_DESCRIPTOR,
  DEVICE_DESCRIPTION_VERSION2,
  type DEVICE_OBJECT,
  DISPATCH_LEVEL,
  type DMA_ADAPTER,
  DO_DEVICE_INITIALIZING,
  DO_DIRECT_IO,
  type DRIVER_OBJECT,
  type DriverContribution,
  FILE_DEVICE_DISK,
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
  type MDL,
  MmNonCached,
  NT_SUCCESS,
  type NTSTATUS,
  PAGE_SIZE,
  PCIBus,
  POOL_FLAG_NON_PAGED,
  type PVOID,
  type SCATTER_GATHER_LIST,
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
  NVME_CC_EN,
  NVME_CC_IOCQES_16,
  NVME_CC_IOSQES_64,
  NVME_CMD_READ,
  NVME_CMD_WRITE,
  NVME_CQE_DW3,
  NVME_CQE_PHASE,
  NVME_CQE_SC_MASK,
  NVME_CQE_SIZE,
  NVME_CQE_STATUS_SHIFT,
  NVME_CSTS_CFS,
  NVME_CSTS_RDY,
  NVME_DEVICE_ID,
  NVME_MAX_TRANSFER,
  NVME_NAMESPACE_ID,
  NVME_PAGE_SIZE,
  NVME_REG_ACQ,
  NVME_REG_AQA,
  NVME_REG_ASQ,
  NVME_REG_CC,
  NVME_REG_CQ0HDBL,
  NVME_REG_CSTS,
  NVME_REG_INTMC,
  NVME_REG_INTMS,
  NVME_REG_SQ0TDBL,
  NVME_SC_SUCCESS,
  NVME_SECTOR_SIZE,
  NVME_SQE_CDW0,
  NVME_SQE_CDW12,
  NVME_SQE_NSID,
  NVME_SQE_PRP1,
  NVME_SQE_PRP2,
  NVME_SQE_SIZE,
  NVME_SQE_SLBA,
  NVME_VENDOR_ID,
} from "./disk-hw.js";

/** One page of each queue: 64 submission entries, 256 completion entries. */
const SQ_ENTRIES = PAGE_SIZE / NVME_SQE_SIZE;
const CQ_ENTRIES = PAGE_SIZE / NVME_CQE_SIZE;
/** The largest transfer the driver asks the HAL to map at once (DEVICE_DESCRIPTION.MaximumLength). */
const MAXIMUM_LENGTH = 64 * 1024;
const TWO_POW_32 = 2 ** 32;
/** FILE_LONG_ALIGNMENT: PRP1 must be dword aligned. */
const FILE_LONG_ALIGNMENT = 3;

interface CommonBuffer {
  readonly VirtualAddress: PVOID;
  readonly LogicalAddress: number;
  readonly Length: number;
}

/** The IRP StartIo is working on, and where its current transfer stands. */
interface Request {
  readonly irp: IRP;
  readonly mdl: MDL;
  readonly va: PVOID;
  readonly length: number;
  readonly write: boolean;
  readonly lba: number;
  /** Bytes completed by earlier transfers. */
  done: number;
  /** Bytes of the transfer in flight, and its list (until PutScatterGatherList). */
  piece: number;
  list: SCATTER_GATHER_LIST | undefined;
}

export interface DiskStatistics {
  requests: number;
  /** Commands sent: more than requests when requests were split. */
  transfers: number;
  interrupts: number;
  dpcs: number;
  failures: number;
}

interface DiskExtension {
  readonly pdo: DEVICE_OBJECT;
  readonly fdo: DEVICE_OBJECT;
  readonly lower: DEVICE_OBJECT;
  registers: PVOID;
  registerLength: number;
  interrupt: KINTERRUPT | undefined;
  adapter: DMA_ADAPTER | undefined;
  numberOfMapRegisters: number;
  /** Longest transfer: (NumberOfMapRegisters - 1) pages, at most MaximumLength. */
  maxTransfer: number;
  sglBuffer: PVOID;
  sglBufferLength: number;
  sq: CommonBuffer | undefined;
  cq: CommonBuffer | undefined;
  prpList: CommonBuffer | undefined;
  sqTail: number;
  cqHead: number;
  /** The phase tag the next new completion entry carries. */
  phase: number;
  nextCommandId: number;
  /** CSTS.CFS seen: the controller stopped. */
  fatal: boolean;
  current: Request | undefined;
  readonly sqe: Uint8Array;
  readonly sqeView: DataView;
  readonly stats: DiskStatistics;
}

@injectable()
export class DiskDriver implements DriverContribution {
  readonly serviceName = "nvmesim";
  readonly hardwareIds = [`PCI\\VEN_${hex4(NVME_VENDOR_ID)}&DEV_${hex4(NVME_DEVICE_ID)}`];
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

  statistics(DeviceObject: DEVICE_OBJECT): Readonly<DiskStatistics> {
    return (DeviceObject.DeviceExtension as DiskExtension).stats;
  }

  /** The largest transfer one command carries on this device (after IRP_MN_START_DEVICE). */
  maximumTransfer(DeviceObject: DEVICE_OBJECT): number {
    return (DeviceObject.DeviceExtension as DiskExtension).maxTransfer;
  }

  #addDevice(DriverObject: DRIVER_OBJECT, PhysicalDeviceObject: DEVICE_OBJECT): NTSTATUS {
    const k = this.#kernel;
    const name = `\\Device\\NvmeSim${this.#instances++}`;
    const created = k.IoCreateDevice(DriverObject, 0, name, FILE_DEVICE_DISK, FILE_DEVICE_SECURE_OPEN, false);
    if (!NT_SUCCESS(created.Status)) return created.Status;
    const fdo = created.DeviceObject!;
    const lower = k.IoAttachDeviceToDeviceStack(fdo, PhysicalDeviceObject);
    if (lower === undefined) {
      k.IoDeleteDevice(fdo);
      return STATUS_NO_SUCH_DEVICE;
    }
    const sqe = new Uint8Array(NVME_SQE_SIZE);
    const extension: DiskExtension = {
      pdo: PhysicalDeviceObject,
      fdo,
      lower,
      registers: 0,
      registerLength: 0,
      interrupt: undefined,
      adapter: undefined,
      numberOfMapRegisters: 0,
      maxTransfer: 0,
      sglBuffer: 0,
      sglBufferLength: 0,
      sq: undefined,
      cq: undefined,
      prpList: undefined,
      sqTail: 0,
      cqHead: 0,
      phase: 1,
      nextCommandId: 1,
      fatal: false,
      current: undefined,
      sqe,
      sqeView: new DataView(sqe.buffer),
      stats: { requests: 0, transfers: 0, interrupts: 0, dpcs: 0, failures: 0 },
    };
    fdo.DeviceExtension = extension;
    fdo.AlignmentRequirement = FILE_LONG_ALIGNMENT;
    fdo.Flags |= DO_DIRECT_IO;
    fdo.Flags &= ~DO_DEVICE_INITIALIZING;
    return STATUS_SUCCESS;
  }

  #dispatchPnp(DeviceObject: DEVICE_OBJECT, Irp: IRP): NTSTATUS {
    const k = this.#kernel;
    const extension = DeviceObject.DeviceExtension as DiskExtension;
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

  #start(extension: DiskExtension, resources: readonly CM_PARTIAL_RESOURCE_DESCRIPTOR[]): NTSTATUS {
    const k = this.#kernel;
    for (const resource of resources) {
      if (resource.Type === "CmResourceTypeMemory") {
        extension.registers = k.MmMapIoSpace(resource.Start, resource.Length, MmNonCached);
        extension.registerLength = resource.Length;
      } else {
        const connected = k.IoConnectInterrupt(
          (interrupt, context) => this.#isr(interrupt, context as DiskExtension),
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
    // Mask the interrupt and disable the controller (CC.EN 1 -> 0 resets it) before setting it up.
    this.#write(extension, NVME_REG_INTMS, 1);
    this.#write(extension, NVME_REG_CC, 0);

    const description = zeroedDeviceDescription();
    description.Version = DEVICE_DESCRIPTION_VERSION2;
    description.Master = true;
    description.ScatterGather = true;
    description.Dma64BitAddresses = true;
    description.InterfaceType = PCIBus;
    description.MaximumLength = MAXIMUM_LENGTH;
    const { Adapter, NumberOfMapRegisters } = k.IoGetDmaAdapter(extension.pdo, description);
    if (Adapter === undefined || NumberOfMapRegisters < 2) return STATUS_INSUFFICIENT_RESOURCES;
    extension.adapter = Adapter;
    extension.numberOfMapRegisters = NumberOfMapRegisters;
    extension.maxTransfer = Math.min(
      MAXIMUM_LENGTH,
      NVME_MAX_TRANSFER,
      (NumberOfMapRegisters - 1) * PAGE_SIZE,
    );

    // One list buffer for the largest transfer, sized the way KMDF sizes its lookaside list.
    const calculated = Adapter.DmaOperations.CalculateScatterGatherList(
      Adapter,
      undefined,
      0,
      NumberOfMapRegisters * PAGE_SIZE,
    );
    if (!NT_SUCCESS(calculated.Status)) return calculated.Status;
    extension.sglBuffer = k.ExAllocatePool2(POOL_FLAG_NON_PAGED, calculated.ScatterGatherListSize, "NvSg");
    extension.sglBufferLength = calculated.ScatterGatherListSize;
    if (extension.sglBuffer === 0) return STATUS_INSUFFICIENT_RESOURCES;

    extension.sq = this.#allocateCommonBuffer(Adapter, PAGE_SIZE);
    extension.cq = this.#allocateCommonBuffer(Adapter, PAGE_SIZE);
    extension.prpList = this.#allocateCommonBuffer(Adapter, PAGE_SIZE);
    if (extension.sq === undefined || extension.cq === undefined || extension.prpList === undefined) {
      return STATUS_INSUFFICIENT_RESOURCES;
    }
    extension.sqTail = 0;
    extension.cqHead = 0;
    extension.phase = 1;
    extension.fatal = false;
    this.#write(extension, NVME_REG_AQA, ((CQ_ENTRIES - 1) << 16) | (SQ_ENTRIES - 1));
    this.#write64(extension, NVME_REG_ASQ, extension.sq.LogicalAddress);
    this.#write64(extension, NVME_REG_ACQ, extension.cq.LogicalAddress);
    this.#write(extension, NVME_REG_CC, NVME_CC_EN | NVME_CC_IOSQES_64 | NVME_CC_IOCQES_16);
    const csts = this.#read(extension, NVME_REG_CSTS);
    if ((csts & NVME_CSTS_RDY) === 0 || (csts & NVME_CSTS_CFS) !== 0) return STATUS_DEVICE_NOT_READY;

    k.IoInitializeDpcRequest(extension.fdo, (dpc, device) => this.#dpcForIsr(dpc, device));
    this.#write(extension, NVME_REG_INTMC, 1);
    return STATUS_SUCCESS;
  }

  #release(extension: DiskExtension): void {
    const k = this.#kernel;
    if (extension.registers !== 0) {
      this.#write(extension, NVME_REG_INTMS, 1);
      this.#write(extension, NVME_REG_CC, 0);
    }
    if (extension.interrupt !== undefined) k.IoDisconnectInterrupt(extension.interrupt);
    extension.interrupt = undefined;
    const adapter = extension.adapter;
    if (adapter !== undefined) {
      const current = extension.current;
      if (current !== undefined) {
        const old = k.KeRaiseIrql(DISPATCH_LEVEL);
        this.#finish(extension, STATUS_CANCELLED, current.done);
        k.KeLowerIrql(old);
      }
      for (const buffer of [extension.sq, extension.cq, extension.prpList]) {
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
    if (extension.sglBuffer !== 0) k.ExFreePoolWithTag(extension.sglBuffer, "NvSg");
    extension.sglBuffer = 0;
    extension.sq = undefined;
    extension.cq = undefined;
    extension.prpList = undefined;
    extension.adapter = undefined;
    if (extension.registers !== 0) k.MmUnmapIoSpace(extension.registers, extension.registerLength);
    extension.registers = 0;
  }

  /** IRP_MJ_READ / IRP_MJ_WRITE: whole sectors at a sector offset, queued for StartIo. */
  #dispatchReadWrite(DeviceObject: DEVICE_OBJECT, Irp: IRP): NTSTATUS {
    const k = this.#kernel;
    const extension = DeviceObject.DeviceExtension as DiskExtension;
    const stack = k.IoGetCurrentIrpStackLocation(Irp);
    const parameters = stack.MajorFunction === IRP_MJ_WRITE ? stack.Parameters.Write : stack.Parameters.Read;
    const mdl = Irp.MdlAddress;
    if (extension.adapter === undefined || extension.fatal)
      return this.#completeNow(Irp, STATUS_DEVICE_NOT_READY);
    if (
      parameters === undefined ||
      mdl === undefined ||
      parameters.Length === 0 ||
      parameters.Length !== k.MmGetMdlByteCount(mdl) ||
      parameters.Length % NVME_SECTOR_SIZE !== 0 ||
      parameters.ByteOffset % NVME_SECTOR_SIZE !== 0 ||
      k.MmGetMdlVirtualAddress(mdl) % (DeviceObject.AlignmentRequirement + 1) !== 0
    ) {
      return this.#completeNow(Irp, STATUS_INVALID_PARAMETER);
    }
    k.IoMarkIrpPending(Irp);
    k.IoStartPacket(DeviceObject, Irp, undefined, undefined);
    return STATUS_PENDING;
  }

  /** DRIVER_STARTIO at DISPATCH_LEVEL: the IRP becomes the current request; its first transfer starts. */
  #startIo(DeviceObject: DEVICE_OBJECT, Irp: IRP): void {
    const k = this.#kernel;
    const extension = DeviceObject.DeviceExtension as DiskExtension;
    const stack = k.IoGetCurrentIrpStackLocation(Irp);
    const write = stack.MajorFunction === IRP_MJ_WRITE;
    const parameters = (write ? stack.Parameters.Write : stack.Parameters.Read)!;
    const mdl = Irp.MdlAddress!;
    k.KeFlushIoBuffers(mdl, !write, true);
    extension.stats.requests++;
    extension.current = {
      irp: Irp,
      mdl,
      va: k.MmGetMdlVirtualAddress(mdl),
      length: parameters.Length,
      write,
      lba: parameters.ByteOffset / NVME_SECTOR_SIZE,
      done: 0,
      piece: 0,
      list: undefined,
    };
    this.#startTransfer(extension);
  }

  /** Maps the next piece of the current request into the preallocated list buffer. */
  #startTransfer(extension: DiskExtension): void {
    const adapter = extension.adapter!;
    const request = extension.current!;
    request.piece = Math.min(extension.maxTransfer, request.length - request.done);
    const status = adapter.DmaOperations.BuildScatterGatherList(
      adapter,
      extension.fdo,
      request.mdl,
      request.va + request.done,
      request.piece,
      (_device, _irp, list) => this.#submit(extension, list),
      undefined,
      request.write,
      extension.sglBuffer,
      extension.sglBufferLength,
    );
    if (!NT_SUCCESS(status)) this.#finish(extension, status, request.done);
  }

  /** DRIVER_LIST_CONTROL: the list becomes PRPs and one command on the submission queue. */
  #submit(extension: DiskExtension, list: SCATTER_GATHER_LIST): void {
    const k = this.#kernel;
    const request = extension.current!;
    request.list = list;
    const entries = prpEntries(list);
    if (entries === undefined) {
      this.#finish(extension, STATUS_INVALID_PARAMETER, request.done);
      return;
    }
    let prp2 = 0;
    if (entries.length === 2) {
      prp2 = entries[1]!;
    } else if (entries.length > 2) {
      const prpList = extension.prpList!;
      const table = new Uint8Array((entries.length - 1) * 8);
      const view = new DataView(table.buffer);
      for (let i = 1; i < entries.length; i++) setUint64(view, (i - 1) * 8, entries[i]!);
      k.WriteMemory(prpList.VirtualAddress, table);
      prp2 = prpList.LogicalAddress;
    }
    const commandId = extension.nextCommandId;
    extension.nextCommandId = (commandId % 0xffff) + 1;
    const { sqe, sqeView } = extension;
    sqe.fill(0);
    sqeView.setUint32(
      NVME_SQE_CDW0,
      ((request.write ? NVME_CMD_WRITE : NVME_CMD_READ) | (commandId << 16)) >>> 0,
      true,
    );
    sqeView.setUint32(NVME_SQE_NSID, NVME_NAMESPACE_ID, true);
    setUint64(sqeView, NVME_SQE_PRP1, entries[0]!);
    setUint64(sqeView, NVME_SQE_PRP2, prp2);
    setUint64(sqeView, NVME_SQE_SLBA, request.lba + request.done / NVME_SECTOR_SIZE);
    sqeView.setUint32(NVME_SQE_CDW12, request.piece / NVME_SECTOR_SIZE - 1, true);
    k.WriteMemory(extension.sq!.VirtualAddress + extension.sqTail * NVME_SQE_SIZE, sqe);
    extension.sqTail = (extension.sqTail + 1) % SQ_ENTRIES;
    extension.stats.transfers++;
    this.#write(extension, NVME_REG_SQ0TDBL, extension.sqTail);
  }

  /** KSERVICE_ROUTINE: ours if a completion entry is new or the controller failed. */
  #isr(_interrupt: KINTERRUPT, extension: DiskExtension): boolean {
    if ((this.#read(extension, NVME_REG_CSTS) & NVME_CSTS_CFS) !== 0) {
      extension.fatal = true;
    } else if (this.#nextCompletion(extension) === undefined) {
      return false;
    }
    this.#write(extension, NVME_REG_INTMS, 1);
    extension.stats.interrupts++;
    this.#kernel.IoRequestDpc(extension.fdo, extension.fdo.CurrentIrp, undefined);
    return true;
  }

  #dpcForIsr(_dpc: KDPC, DeviceObject: DEVICE_OBJECT): void {
    const extension = DeviceObject.DeviceExtension as DiskExtension;
    if (extension.adapter === undefined) return;
    extension.stats.dpcs++;
    if (extension.fatal) {
      if (extension.current !== undefined)
        this.#finish(extension, STATUS_IO_DEVICE_ERROR, extension.current.done);
      return;
    }
    for (
      let dw3 = this.#nextCompletion(extension);
      dw3 !== undefined;
      dw3 = this.#nextCompletion(extension)
    ) {
      extension.cqHead = (extension.cqHead + 1) % CQ_ENTRIES;
      if (extension.cqHead === 0) extension.phase ^= 1;
      this.#write(extension, NVME_REG_CQ0HDBL, extension.cqHead);
      this.#transferDone(extension, (dw3 >>> NVME_CQE_STATUS_SHIFT) & NVME_CQE_SC_MASK);
    }
    this.#write(extension, NVME_REG_INTMC, 1);
  }

  /** One command completed: put its list, then the next transfer or the IRP's completion. */
  #transferDone(extension: DiskExtension, statusCode: number): void {
    const request = extension.current;
    if (request === undefined) return;
    const adapter = extension.adapter!;
    if (request.list !== undefined)
      adapter.DmaOperations.PutScatterGatherList(adapter, request.list, request.write);
    request.list = undefined;
    if (statusCode !== NVME_SC_SUCCESS) {
      this.#finish(extension, STATUS_IO_DEVICE_ERROR, request.done);
      return;
    }
    request.done += request.piece;
    if (request.done < request.length) this.#startTransfer(extension);
    else this.#finish(extension, STATUS_SUCCESS, request.length);
  }

  /** Completes the current request (its list put back first) and starts the next queued IRP. */
  #finish(extension: DiskExtension, status: NTSTATUS, information: number): void {
    const k = this.#kernel;
    const request = extension.current!;
    const adapter = extension.adapter!;
    if (request.list !== undefined)
      adapter.DmaOperations.PutScatterGatherList(adapter, request.list, request.write);
    extension.current = undefined;
    if (!NT_SUCCESS(status)) extension.stats.failures++;
    request.irp.IoStatus.Status = status;
    request.irp.IoStatus.Information = information;
    k.IoStartNextPacket(extension.fdo, false);
    k.IoCompleteRequest(request.irp, IO_NO_INCREMENT);
  }

  /** DW3 of the completion entry at the head if its phase tag says it is new. */
  #nextCompletion(extension: DiskExtension): number | undefined {
    const cq = extension.cq;
    if (cq === undefined) return undefined;
    const raw = this.#kernel.ReadMemory(
      cq.VirtualAddress + extension.cqHead * NVME_CQE_SIZE + NVME_CQE_DW3,
      4,
    );
    const dw3 = new DataView(raw.buffer).getUint32(0, true);
    return ((dw3 & NVME_CQE_PHASE) !== 0 ? 1 : 0) === extension.phase ? dw3 : undefined;
  }

  #allocateCommonBuffer(adapter: DMA_ADAPTER, length: number): CommonBuffer | undefined {
    const { VirtualAddress, LogicalAddress } = adapter.DmaOperations.AllocateCommonBuffer(
      adapter,
      length,
      false,
    );
    if (VirtualAddress === 0) return undefined;
    if (LogicalAddress % NVME_PAGE_SIZE !== 0) {
      adapter.DmaOperations.FreeCommonBuffer(adapter, length, LogicalAddress, VirtualAddress, false);
      return undefined;
    }
    this.#kernel.RtlZeroMemory(VirtualAddress, length);
    return { VirtualAddress, LogicalAddress, Length: length };
  }

  #completeNow(Irp: IRP, status: NTSTATUS): NTSTATUS {
    Irp.IoStatus.Status = status;
    Irp.IoStatus.Information = 0;
    this.#kernel.IoCompleteRequest(Irp, IO_NO_INCREMENT);
    return status;
  }

  #read(extension: DiskExtension, offset: number): number {
    return this.#kernel.READ_REGISTER_ULONG(extension.registers + offset);
  }

  #write(extension: DiskExtension, offset: number, value: number): void {
    this.#kernel.WRITE_REGISTER_ULONG(extension.registers + offset, value);
  }

  #write64(extension: DiskExtension, offset: number, value: number): void {
    this.#write(extension, offset, value % TWO_POW_32);
    this.#write(extension, offset + 4, Math.floor(value / TWO_POW_32));
  }
}

/**
 * The PRP entries of a list (NVMe 1.4 section 4.3): the first may start inside a page (dword
 * aligned), every later one is a page address. A list whose elements leave a hole inside a page
 * cannot be expressed: undefined.
 */
export function prpEntries(list: SCATTER_GATHER_LIST): number[] | undefined {
  const entries: number[] = [];
  const count = list.NumberOfElements;
  for (let i = 0; i < count; i++) {
    const { Address, Length } = list.Elements[i]!;
    const end = Address + Length;
    if ((i > 0 && Address % NVME_PAGE_SIZE !== 0) || (i < count - 1 && end % NVME_PAGE_SIZE !== 0))
      return undefined;
    if (i === 0 && Address % 4 !== 0) return undefined;
    entries.push(Address);
    for (
      let page = Address - (Address % NVME_PAGE_SIZE) + NVME_PAGE_SIZE;
      page < end;
      page += NVME_PAGE_SIZE
    ) {
      entries.push(page);
    }
  }
  return entries.length === 0 ? undefined : entries;
}

function setUint64(view: DataView, offset: number, value: number): void {
  view.setUint32(offset, value % TWO_POW_32, true);
  view.setUint32(offset + 4, Math.floor(value / TWO_POW_32), true);
}

function hex4(value: number): string {
  return value.toString(16).toUpperCase().padStart(4, "0");
}
