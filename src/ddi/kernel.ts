/**
 * The Kernel: the one object a driver talks to (`@inject(Kernel) kernel: Kernel`), with the
 * ntoskrnl and HAL routines of wdm.h under their Windows names and parameter orders.
 *
 * How C maps to TypeScript is the convention of src/hal/wdm/dma-operations.ts, applied here too:
 * memory pointers are numbers (0 is NULL), object pointers are objects (NULL is undefined), and a
 * routine with out-parameters returns a record of its return value and each out-parameter
 * (IoConnectInterrupt -> { Status, InterruptObject }); a routine whose only result is one
 * out-parameter returns it (KeRaiseIrql -> OldIrql). Caller-allocated structures (KDPC,
 * KSPIN_LOCK, KAPC_STATE) are `new`-ed by the driver and passed in, as in C. Routines that raise an
 * exception in C (MmProbeAndLockPages) return the exception's status instead: a driver has no
 * __try here. ReadMemory/WriteMemory/RtlCopyMemory/RtlZeroMemory stand for C pointer access
 * (`*p`, `memcpy`), the only way a driver reaches memory.
 *
 * Every routine first checks the IRQL its WDK page requires, then validates its input: bad input
 * returns the documented NTSTATUS (or NULL), or throws a BugCheck where Windows would crash. A
 * PlatformError from the layers below never escapes.
 */
import { inject, injectable, optional } from "inversify";
import { Hal } from "../hal/hal.js";
import { IommuInterface } from "../hal/iommu-interface/iommu-interface.js";
import { BugCheck, IRQL_NOT_LESS_OR_EQUAL } from "../hal/wdm/bug-check.js";
import type { DEVICE_DESCRIPTION } from "../hal/wdm/device-description.js";
import type { DEVICE_OBJECT, DRIVER_OBJECT, IO_STACK_LOCATION, IRP, MDL } from "../hal/wdm/device-object.js";
import type { IoGetDmaAdapterResult, PHYSICAL_ADDRESS, PVOID } from "../hal/wdm/dma-operations.js";
import { type MEMORY_CACHING_TYPE, MmCached } from "../hal/wdm/dma-v3-types.js";
import type { DMA_IOMMU_INTERFACE, DMA_IOMMU_INTERFACE_EX } from "../hal/wdm/iommu-interface.js";
import { APC_LEVEL, DISPATCH_LEVEL, type KIRQL, PASSIVE_LEVEL } from "../hal/wdm/irql.js";
import {
  type NTSTATUS,
  STATUS_ACCESS_VIOLATION,
  STATUS_INSUFFICIENT_RESOURCES,
  STATUS_INVALID_PARAMETER,
  STATUS_NOT_SUPPORTED,
  STATUS_OBJECT_NAME_INVALID,
  STATUS_SUCCESS,
} from "../hal/wdm/ntstatus.js";
import { CpuMemory } from "../platform/cpu-memory.js";
import { isKernelAddress, KernelMemory } from "../platform/kernel-memory.js";
import { type LockOperation, Mdl } from "../platform/mdl.js";
import { MAX_MDL_LENGTH, MemoryManager } from "../platform/memory-manager.js";
import { formatAddress, PAGE_SIZE } from "../platform/page.js";
import { PciBus } from "../platform/pci-bus.js";
import { ProcessAddressSpace } from "../platform/process-address-space.js";
import { MAX_INTERRUPT_LINE, Scheduler } from "../platform/scheduler.js";
import { Counters } from "../trace/counters.js";
import {
  BAD_POOL_CALLER,
  BadPoolCaller,
  bugCheck,
  DRIVER_VERIFIER_IOMANAGER_VIOLATION,
  IoRule,
  IRQL_NOT_GREATER_OR_EQUAL,
  KMODE_EXCEPTION_NOT_HANDLED,
  MEMORY_MANAGEMENT,
  MmRule,
  MULTIPLE_IRP_COMPLETE_REQUESTS,
  PAGE_FAULT_IN_NONPAGED_AREA,
  PROCESS_HAS_LOCKED_PAGES,
  SPIN_LOCK_ALREADY_OWNED,
  SPIN_LOCK_NOT_OWNED,
} from "./bug-check-codes.js";
import { CpuAccess } from "./cpu-access.js";
import {
  addressParameter,
  callDriverRoutine,
  convertingPlatformErrors,
  irqlName,
  irqlParameter,
  isAddress,
  isCacheType,
  isCount,
  isIrql,
  isPowerOfTwo,
} from "./ddi-arguments.js";
import { DeviceObject } from "./device-object.js";
import { DriverObject } from "./driver-object.js";
import { IoManager } from "./io-manager.js";
import { IoSpace } from "./io-space.js";
import { Irp } from "./irp.js";
import { KAPC_STATE, type PEPROCESS } from "./kapc-state.js";
import { type KDEFERRED_ROUTINE, KDPC } from "./kdpc.js";
import { KINTERRUPT, type KSERVICE_ROUTINE, type KSYNCHRONIZE_ROUTINE } from "./kinterrupt.js";
import { KSPIN_LOCK } from "./kspin-lock.js";
import {
  IoModifyAccess,
  IoReadAccess,
  IoWriteAccess,
  KernelMode,
  type KPROCESSOR_MODE,
  type LOCK_OPERATION,
  UserMode,
} from "./mm-constants.js";
import { PoolAllocator } from "./pool-allocator.js";
import {
  NonPagedPool,
  NonPagedPoolNx,
  PagedPool,
  POOL_FLAG_CACHE_ALIGNED,
  POOL_FLAG_NON_PAGED,
  POOL_FLAG_NON_PAGED_EXECUTE,
  POOL_FLAG_PAGED,
  POOL_FLAG_RAISE_ON_FAILURE,
  POOL_FLAG_UNINITIALIZED,
  POOL_FLAG_USE_QUOTA,
  type POOL_FLAGS,
  type POOL_TAG,
  type POOL_TYPE,
} from "./pool-type.js";

/** IO_DPC_ROUTINE: the DpcForIsr of IoInitializeDpcRequest. */
export type IO_DPC_ROUTINE = (
  Dpc: KDPC,
  DeviceObject: DEVICE_OBJECT,
  Irp: IRP | undefined,
  Context: unknown,
) => void;

const NULL_ADAPTER: IoGetDmaAdapterResult = Object.freeze({ Adapter: undefined, NumberOfMapRegisters: 0 });
const KNOWN_POOL_FLAGS =
  POOL_FLAG_USE_QUOTA |
  POOL_FLAG_UNINITIALIZED |
  POOL_FLAG_CACHE_ALIGNED |
  POOL_FLAG_RAISE_ON_FAILURE |
  POOL_FLAG_NON_PAGED |
  POOL_FLAG_NON_PAGED_EXECUTE |
  POOL_FLAG_PAGED;

@injectable()
export class Kernel {
  readonly #io: IoManager;
  readonly #hal: Hal;
  readonly #mm: MemoryManager;
  readonly #memory: KernelMemory;
  readonly #cpu: CpuMemory;
  readonly #scheduler: Scheduler;
  readonly #pci: PciBus;
  readonly #ioSpace: IoSpace;
  readonly #pool: PoolAllocator;
  readonly #cpuAccess: CpuAccess;
  readonly #counters: Counters;
  readonly #iommuInterface: IommuInterface | undefined;
  readonly #interrupts = new Map<KINTERRUPT, () => void>();
  #nextDpcTicket = 1;

  constructor(
    @inject(IoManager) io: IoManager,
    @inject(Hal) hal: Hal,
    @inject(MemoryManager) mm: MemoryManager,
    @inject(KernelMemory) memory: KernelMemory,
    @inject(CpuMemory) cpu: CpuMemory,
    @inject(Scheduler) scheduler: Scheduler,
    @inject(PciBus) pci: PciBus,
    @inject(IoSpace) ioSpace: IoSpace,
    @inject(PoolAllocator) pool: PoolAllocator,
    @inject(CpuAccess) cpuAccess: CpuAccess,
    @inject(Counters) counters: Counters,
    @inject(IommuInterface) @optional() iommuInterface: IommuInterface | undefined,
  ) {
    this.#io = io;
    this.#hal = hal;
    this.#mm = mm;
    this.#memory = memory;
    this.#cpu = cpu;
    this.#scheduler = scheduler;
    this.#pci = pci;
    this.#ioSpace = ioSpace;
    this.#pool = pool;
    this.#cpuAccess = cpuAccess;
    this.#counters = counters;
    this.#iommuInterface = iommuInterface;
  }

  // ---- DMA adapter ----

  /** IoGetDmaAdapter, PASSIVE_LEVEL: NULL (Adapter undefined) when the PDO or description is refused. */
  IoGetDmaAdapter(
    PhysicalDeviceObject: DEVICE_OBJECT,
    DeviceDescription: DEVICE_DESCRIPTION,
  ): IoGetDmaAdapterResult {
    this.#atMost(PASSIVE_LEVEL, "IoGetDmaAdapter");
    const pdo = PhysicalDeviceObject;
    if (
      !(pdo instanceof DeviceObject) ||
      pdo.deleted ||
      pdo.DeviceObjectExtension.requesterId === undefined
    ) {
      return NULL_ADAPTER;
    }
    if (typeof DeviceDescription !== "object" || DeviceDescription === null) return NULL_ADAPTER;
    return convertingPlatformErrors(
      () => this.#hal.getDmaAdapter(pdo, DeviceDescription),
      () => NULL_ADAPTER,
    );
  }

  // ---- IOMMU interface ----

  /**
   * IoGetIommuInterface, PASSIVE_LEVEL (deprecated): DMA_IOMMU_INTERFACE, the V1 routines.
   * STATUS_NOT_SUPPORTED without DMA remapping (or when the HAL does not provide the interface).
   */
  IoGetIommuInterface(Version: number): { Status: NTSTATUS; InterfaceOut: DMA_IOMMU_INTERFACE | undefined } {
    this.#atMost(PASSIVE_LEVEL, "IoGetIommuInterface");
    if (this.#iommuInterface === undefined) return { Status: STATUS_NOT_SUPPORTED, InterfaceOut: undefined };
    return this.#iommuInterface.getInterface(Version);
  }

  /** IoGetIommuInterfaceEx, PASSIVE_LEVEL: DMA_IOMMU_INTERFACE_EX of Version 1 or 2; Flags must be 0. */
  IoGetIommuInterfaceEx(
    Version: number,
    Flags: number,
  ): { Status: NTSTATUS; InterfaceOut: DMA_IOMMU_INTERFACE_EX | undefined } {
    this.#atMost(PASSIVE_LEVEL, "IoGetIommuInterfaceEx");
    if (this.#iommuInterface === undefined) return { Status: STATUS_NOT_SUPPORTED, InterfaceOut: undefined };
    return this.#iommuInterface.getInterfaceEx(Version, Flags);
  }

  // ---- IRQL ----

  KeGetCurrentIrql(): KIRQL {
    return this.#scheduler.irql;
  }

  /** KeRaiseIrql: returns OldIrql. Raising to a lower level is IRQL_NOT_GREATER_OR_EQUAL. */
  KeRaiseIrql(NewIrql: KIRQL): KIRQL {
    const current = this.#scheduler.irql;
    if (!isIrql(NewIrql) || NewIrql < current) {
      throw bugCheck(
        IRQL_NOT_GREATER_OR_EQUAL,
        [current, irqlParameter(NewIrql), 0, 0],
        `KeRaiseIrql(${String(NewIrql)}) from IRQL ${current}`,
      );
    }
    return this.#scheduler.raiseIrql(NewIrql);
  }

  KeRaiseIrqlToDpcLevel(): KIRQL {
    return this.KeRaiseIrql(DISPATCH_LEVEL);
  }

  /** KeLowerIrql: dropping below DISPATCH_LEVEL runs the queued DPCs first. */
  KeLowerIrql(NewIrql: KIRQL): void {
    const current = this.#scheduler.irql;
    if (!isIrql(NewIrql) || NewIrql > current) {
      throw new BugCheck(
        IRQL_NOT_LESS_OR_EQUAL,
        [0, current, irqlParameter(NewIrql), 0],
        `KeLowerIrql(${String(NewIrql)}) from IRQL ${current}: a lower must not raise`,
      );
    }
    this.#scheduler.lowerIrql(NewIrql);
  }

  // ---- Spin locks ----

  KeInitializeSpinLock(SpinLock: KSPIN_LOCK): void {
    this.#spinLock(SpinLock, "KeInitializeSpinLock").held = false;
  }

  /** KeAcquireSpinLock: raises to DISPATCH_LEVEL and returns OldIrql. */
  KeAcquireSpinLock(SpinLock: KSPIN_LOCK): KIRQL {
    this.#atMost(DISPATCH_LEVEL, "KeAcquireSpinLock");
    const lock = this.#acquirable(SpinLock, "KeAcquireSpinLock");
    const old = this.#scheduler.raiseIrql(DISPATCH_LEVEL);
    lock.held = true;
    return old;
  }

  /** KeReleaseSpinLock: releases, then lowers to NewIrql (the OldIrql of the acquire). */
  KeReleaseSpinLock(SpinLock: KSPIN_LOCK, NewIrql: KIRQL): void {
    this.#exactly(DISPATCH_LEVEL, "KeReleaseSpinLock");
    this.#held(SpinLock, "KeReleaseSpinLock").held = false;
    this.KeLowerIrql(NewIrql);
  }

  KeAcquireSpinLockAtDpcLevel(SpinLock: KSPIN_LOCK): void {
    this.#exactly(DISPATCH_LEVEL, "KeAcquireSpinLockAtDpcLevel");
    this.#acquirable(SpinLock, "KeAcquireSpinLockAtDpcLevel").held = true;
  }

  KeReleaseSpinLockFromDpcLevel(SpinLock: KSPIN_LOCK): void {
    this.#exactly(DISPATCH_LEVEL, "KeReleaseSpinLockFromDpcLevel");
    this.#held(SpinLock, "KeReleaseSpinLockFromDpcLevel").held = false;
  }

  // ---- DPCs ----

  /** KeInitializeDpc, any IRQL. */
  KeInitializeDpc(Dpc: KDPC, DeferredRoutine: KDEFERRED_ROUTINE, DeferredContext: unknown): void {
    this.#object(Dpc, KDPC, "KeInitializeDpc", "Dpc");
    if (typeof DeferredRoutine !== "function")
      this.#badPointer("KeInitializeDpc", "DeferredRoutine is not a routine");
    Dpc.DeferredRoutine = DeferredRoutine;
    Dpc.DeferredContext = DeferredContext;
    Dpc.DpcData = 0;
  }

  /**
   * KeInsertQueueDpc, any IRQL: false if the DPC is already queued. The routine runs at
   * DISPATCH_LEVEL as soon as the IRQL drops below it, in queue order.
   */
  KeInsertQueueDpc(Dpc: KDPC, SystemArgument1: unknown, SystemArgument2: unknown): boolean {
    this.#object(Dpc, KDPC, "KeInsertQueueDpc", "Dpc");
    const routine = Dpc.DeferredRoutine;
    if (routine === undefined)
      this.#badPointer("KeInsertQueueDpc", "the KDPC was not initialized by KeInitializeDpc");
    if (Dpc.DpcData !== 0) return false;
    const ticket = this.#nextDpcTicket++;
    Dpc.DpcData = ticket;
    Dpc.SystemArgument1 = SystemArgument1;
    Dpc.SystemArgument2 = SystemArgument2;
    this.#scheduler.queueDpc(() => {
      if (Dpc.DpcData !== ticket) return;
      Dpc.DpcData = 0;
      callDriverRoutine(this.#scheduler, "DPC routine", () =>
        routine(Dpc, Dpc.DeferredContext, Dpc.SystemArgument1, Dpc.SystemArgument2),
      );
    }, "KDPC");
    return true;
  }

  /** KeRemoveQueueDpc: true if the DPC was queued and now will not run. */
  KeRemoveQueueDpc(Dpc: KDPC): boolean {
    this.#object(Dpc, KDPC, "KeRemoveQueueDpc", "Dpc");
    if (Dpc.DpcData === 0) return false;
    Dpc.DpcData = 0;
    return true;
  }

  /** IoInitializeDpcRequest: the device object's DpcForIsr, queued later by IoRequestDpc. */
  IoInitializeDpcRequest(DeviceObject: DEVICE_OBJECT, DpcRoutine: IO_DPC_ROUTINE): void {
    const device = this.#deviceObject(DeviceObject, "IoInitializeDpcRequest");
    const dpc = new KDPC();
    this.KeInitializeDpc(dpc, DpcRoutine as KDEFERRED_ROUTINE, device);
    device.dpcForIsr = dpc;
  }

  /** IoRequestDpc, from an ISR: queues DpcForIsr(Dpc, DeviceObject, Irp, Context). */
  IoRequestDpc(DeviceObject: DEVICE_OBJECT, Irp: IRP | undefined, Context: unknown): void {
    const device = this.#deviceObject(DeviceObject, "IoRequestDpc");
    if (device.dpcForIsr === undefined) {
      throw bugCheck(
        DRIVER_VERIFIER_IOMANAGER_VIOLATION,
        [IoRule.dpcNotInitialized, device.id, 0, 0],
        `IoRequestDpc on ${device} before IoInitializeDpcRequest`,
      );
    }
    this.KeInsertQueueDpc(device.dpcForIsr, Irp, Context);
  }

  // ---- Interrupts ----

  /**
   * IoConnectInterrupt, PASSIVE_LEVEL: ServiceRoutine runs at Irql (the device IRQL of the
   * CmResourceTypeInterrupt descriptor) when line Vector fires, and returns TRUE if its device
   * interrupted. STATUS_INVALID_PARAMETER for a bad vector or level, no processor, or a vector
   * already connected without sharing.
   */
  IoConnectInterrupt(
    ServiceRoutine: KSERVICE_ROUTINE,
    ServiceContext: unknown,
    SpinLock: KSPIN_LOCK | undefined,
    Vector: number,
    Irql: KIRQL,
    SynchronizeIrql: KIRQL,
    InterruptMode: number,
    ShareVector: boolean,
    ProcessorEnableMask: number,
    FloatingSave: boolean,
  ): { readonly Status: NTSTATUS; readonly InterruptObject: KINTERRUPT | undefined } {
    this.#atMost(PASSIVE_LEVEL, "IoConnectInterrupt");
    const invalid = { Status: STATUS_INVALID_PARAMETER, InterruptObject: undefined };
    if (
      typeof ServiceRoutine !== "function" ||
      (SpinLock !== undefined && !(SpinLock instanceof KSPIN_LOCK)) ||
      !Number.isInteger(Vector) ||
      Vector < 0 ||
      Vector > MAX_INTERRUPT_LINE ||
      !isIrql(Irql) ||
      Irql <= DISPATCH_LEVEL ||
      !isIrql(SynchronizeIrql) ||
      SynchronizeIrql < Irql ||
      (InterruptMode !== 0 && InterruptMode !== 1) ||
      !Number.isInteger(ProcessorEnableMask) ||
      ProcessorEnableMask === 0 ||
      typeof FloatingSave !== "boolean"
    ) {
      return invalid;
    }
    for (const other of this.#interrupts.keys()) {
      if (other.Vector === Vector && !(other.ShareVector && ShareVector)) return invalid;
    }
    const interrupt = new KINTERRUPT(Vector, Irql, SynchronizeIrql, ShareVector === true);
    const disconnect = this.#scheduler.connectInterrupt(
      Vector,
      () =>
        callDriverRoutine(
          this.#scheduler,
          "interrupt service routine",
          () => ServiceRoutine(interrupt, ServiceContext) === true,
        ),
      Irql,
    );
    this.#interrupts.set(interrupt, disconnect);
    return { Status: STATUS_SUCCESS, InterruptObject: interrupt };
  }

  /** IoDisconnectInterrupt, PASSIVE_LEVEL. */
  IoDisconnectInterrupt(InterruptObject: KINTERRUPT): void {
    this.#atMost(PASSIVE_LEVEL, "IoDisconnectInterrupt");
    const disconnect = this.#interrupts.get(InterruptObject);
    if (disconnect === undefined) {
      throw bugCheck(
        DRIVER_VERIFIER_IOMANAGER_VIOLATION,
        [IoRule.disconnectUnknown, 0, 0, 0],
        "IoDisconnectInterrupt of an interrupt object that is not connected",
      );
    }
    this.#interrupts.delete(InterruptObject);
    disconnect();
  }

  /** KeSynchronizeExecution: runs the routine at the interrupt's SynchronizeIrql, as the ISR would. */
  KeSynchronizeExecution(
    Interrupt: KINTERRUPT,
    SynchronizeRoutine: KSYNCHRONIZE_ROUTINE,
    SynchronizeContext: unknown,
  ): boolean {
    this.#object(Interrupt, KINTERRUPT, "KeSynchronizeExecution", "Interrupt");
    if (typeof SynchronizeRoutine !== "function")
      this.#badPointer("KeSynchronizeExecution", "SynchronizeRoutine is not a routine");
    this.#atMost(Interrupt.SynchronizeIrql, "KeSynchronizeExecution");
    return this.#scheduler.runAtIrql(
      Interrupt.SynchronizeIrql,
      () => SynchronizeRoutine(SynchronizeContext) === true,
    );
  }

  // ---- Device registers ----

  /** MmMapIoSpace, <= DISPATCH_LEVEL: a system address for a device's registers; NULL if no BAR decodes the range. */
  MmMapIoSpace(
    PhysicalAddress: PHYSICAL_ADDRESS,
    NumberOfBytes: number,
    CacheType: MEMORY_CACHING_TYPE,
  ): PVOID {
    this.#atMost(DISPATCH_LEVEL, "MmMapIoSpace");
    if (
      !isAddress(PhysicalAddress) ||
      !isCount(NumberOfBytes) ||
      NumberOfBytes === 0 ||
      !isCacheType(CacheType)
    )
      return 0;
    const device = convertingPlatformErrors(
      () => this.#pci.deviceAt(PhysicalAddress),
      () => undefined,
    );
    if (device === undefined || PhysicalAddress + NumberOfBytes > device.barAddress + device.barSize)
      return 0;
    return this.#ioSpace.map(PhysicalAddress, NumberOfBytes) ?? 0;
  }

  /** MmUnmapIoSpace, <= DISPATCH_LEVEL: BaseAddress and NumberOfBytes must be those of the mapping. */
  MmUnmapIoSpace(BaseAddress: PVOID, NumberOfBytes: number): void {
    this.#atMost(DISPATCH_LEVEL, "MmUnmapIoSpace");
    if (!this.#ioSpace.unmap(BaseAddress, NumberOfBytes)) {
      throw bugCheck(
        MEMORY_MANAGEMENT,
        [MmRule.notIoSpace, addressParameter(BaseAddress), isCount(NumberOfBytes) ? NumberOfBytes : 0, 0],
        `MmUnmapIoSpace(${formatAddress(BaseAddress)}, ${String(NumberOfBytes)}) is not a mapping MmMapIoSpace made`,
      );
    }
  }

  /**
   * READ_REGISTER_ULONG: a 32-bit MMIO load through a MmMapIoSpace address. A register the bus
   * no longer decodes (device unplugged, decoding off) reads as all ones, as a master abort does.
   */
  READ_REGISTER_ULONG(Register: PVOID): number {
    const pa = this.#register(Register, false);
    return convertingPlatformErrors(
      () => this.#pci.mmioRead32(pa),
      () => {
        this.#counters.add("ddi.mmio.master-abort");
        return 0xffffffff;
      },
    );
  }

  /** WRITE_REGISTER_ULONG: a 32-bit MMIO store; the value is taken as a ULONG (low 32 bits). */
  WRITE_REGISTER_ULONG(Register: PVOID, Value: number): void {
    const pa = this.#register(Register, true);
    if (!Number.isSafeInteger(Value))
      this.#badPointer("WRITE_REGISTER_ULONG", `Value ${String(Value)} is not an integer`);
    convertingPlatformErrors(
      () => this.#pci.mmioWrite32(pa, Value >>> 0),
      () => this.#counters.add("ddi.mmio.master-abort"),
    );
  }

  // ---- Device objects and IRPs ----

  /** IoCreateDevice, PASSIVE_LEVEL. The new device has DO_DEVICE_INITIALIZING set until AddDevice clears it. */
  IoCreateDevice(
    DriverObject: DRIVER_OBJECT,
    DeviceExtensionSize: number,
    DeviceName: string | undefined,
    DeviceType: number,
    DeviceCharacteristics: number,
    Exclusive: boolean,
  ): { readonly Status: NTSTATUS; readonly DeviceObject: DEVICE_OBJECT | undefined } {
    this.#atMost(PASSIVE_LEVEL, "IoCreateDevice");
    const driver = this.#driverObject(DriverObject, "IoCreateDevice");
    if (!isCount(DeviceExtensionSize) || !isCount(DeviceType) || !isCount(DeviceCharacteristics)) {
      return { Status: STATUS_INVALID_PARAMETER, DeviceObject: undefined };
    }
    if (DeviceName !== undefined && (typeof DeviceName !== "string" || !/^\\[^\\]/.test(DeviceName))) {
      return { Status: STATUS_OBJECT_NAME_INVALID, DeviceObject: undefined };
    }
    const { status, device } = this.#io.createDevice(
      driver,
      DeviceName,
      DeviceType,
      DeviceCharacteristics,
      Exclusive === true,
    );
    return { Status: status, DeviceObject: device };
  }

  /** IoDeleteDevice, PASSIVE_LEVEL: the device must have been detached (IoDetachDevice) first. */
  IoDeleteDevice(DeviceObject: DEVICE_OBJECT): void {
    this.#atMost(PASSIVE_LEVEL, "IoDeleteDevice");
    this.#notDeletedTwice(DeviceObject);
    const device = this.#deviceObject(DeviceObject, "IoDeleteDevice");
    if (device.DriverObject.contribution === undefined) {
      throw bugCheck(
        DRIVER_VERIFIER_IOMANAGER_VIOLATION,
        [IoRule.deleteBusDevice, device.id, 0, 0],
        `IoDeleteDevice of ${device}: a function driver must not delete the bus driver's PDO`,
      );
    }
    this.#io.deleteDevice(device);
  }

  /**
   * IoAttachDeviceToDeviceStack, <= DISPATCH_LEVEL: attaches SourceDevice on top of TargetDevice's
   * stack and returns the device it attached to (to send IRPs down to), or NULL.
   */
  IoAttachDeviceToDeviceStack(
    SourceDevice: DEVICE_OBJECT,
    TargetDevice: DEVICE_OBJECT,
  ): DEVICE_OBJECT | undefined {
    this.#atMost(DISPATCH_LEVEL, "IoAttachDeviceToDeviceStack");
    const source = this.#deviceObject(SourceDevice, "IoAttachDeviceToDeviceStack");
    const target = this.#deviceObject(TargetDevice, "IoAttachDeviceToDeviceStack");
    return this.#io.attachDevice(source, target);
  }

  /** IoDetachDevice, PASSIVE_LEVEL: detaches whatever is attached on top of TargetDevice. */
  IoDetachDevice(TargetDevice: DEVICE_OBJECT): void {
    this.#atMost(PASSIVE_LEVEL, "IoDetachDevice");
    this.#io.detachDevice(this.#deviceObject(TargetDevice, "IoDetachDevice"));
  }

  /** IoGetCurrentIrpStackLocation, any IRQL. */
  IoGetCurrentIrpStackLocation(Irp: IRP): IO_STACK_LOCATION {
    return this.#irp(Irp, "IoGetCurrentIrpStackLocation").CurrentStackLocation;
  }

  /** IoMarkIrpPending: the dispatch routine will return STATUS_PENDING and complete the IRP later. */
  IoMarkIrpPending(Irp: IRP): void {
    this.#irp(Irp, "IoMarkIrpPending").markedPending = true;
  }

  /** IoCompleteRequest, <= DISPATCH_LEVEL: completing an IRP twice is MULTIPLE_IRP_COMPLETE_REQUESTS. */
  IoCompleteRequest(Irp: IRP, PriorityBoost: number): void {
    this.#atMost(DISPATCH_LEVEL, "IoCompleteRequest");
    const irp = this.#irp(Irp, "IoCompleteRequest");
    if (irp.completed) {
      throw bugCheck(MULTIPLE_IRP_COMPLETE_REQUESTS, [irp.id, 0, 0, 0], `IRP ${irp.id} completed twice`);
    }
    if (!isCount(PriorityBoost))
      this.#badPointer("IoCompleteRequest", `PriorityBoost ${String(PriorityBoost)} is not a CCHAR`);
    irp.complete();
  }

  /**
   * IoStartPacket, <= DISPATCH_LEVEL: calls DriverStartIo at DISPATCH_LEVEL now if the device is
   * idle, else queues the IRP (by Key when given). Cancellation is not modelled: CancelFunction
   * is accepted and never called.
   */
  IoStartPacket(
    DeviceObject: DEVICE_OBJECT,
    Irp: IRP,
    Key: number | undefined,
    CancelFunction: unknown,
  ): void {
    this.#atMost(DISPATCH_LEVEL, "IoStartPacket");
    const device = this.#deviceObject(DeviceObject, "IoStartPacket");
    const irp = this.#irp(Irp, "IoStartPacket");
    if (Key !== undefined && !isCount(Key))
      this.#badPointer("IoStartPacket", `Key ${String(Key)} is not a ULONG`);
    if (CancelFunction !== undefined && typeof CancelFunction !== "function")
      this.#badPointer("IoStartPacket", "CancelFunction is not a routine");
    this.#io.startPacket(device, irp, Key);
  }

  /** IoStartNextPacket, DISPATCH_LEVEL: the next queued IRP (if any) becomes CurrentIrp and goes to StartIo. */
  IoStartNextPacket(DeviceObject: DEVICE_OBJECT, Cancelable: boolean): void {
    this.#exactly(DISPATCH_LEVEL, "IoStartNextPacket");
    if (typeof Cancelable !== "boolean") this.#badPointer("IoStartNextPacket", "Cancelable is not a BOOLEAN");
    this.#io.startNextPacket(this.#deviceObject(DeviceObject, "IoStartNextPacket"));
  }

  // ---- MDLs ----

  /**
   * IoAllocateMdl, <= DISPATCH_LEVEL: NULL for a zero or too long Length, or a user address with
   * no process attached. With an Irp: the first MDL becomes Irp->MdlAddress; SecondaryBuffer
   * chains it after the IRP's MDLs instead.
   */
  IoAllocateMdl(
    VirtualAddress: PVOID,
    Length: number,
    SecondaryBuffer: boolean,
    ChargeQuota: boolean,
    Irp: IRP | undefined,
  ): MDL | undefined {
    this.#atMost(DISPATCH_LEVEL, "IoAllocateMdl");
    const irp = Irp === undefined ? undefined : this.#irp(Irp, "IoAllocateMdl");
    if (
      !isAddress(VirtualAddress) ||
      !isCount(Length) ||
      Length === 0 ||
      Length > MAX_MDL_LENGTH ||
      typeof ChargeQuota !== "boolean"
    ) {
      return undefined;
    }
    const process = isKernelAddress(VirtualAddress) ? undefined : this.#cpuAccess.currentProcess;
    if (!isKernelAddress(VirtualAddress) && process === undefined) return undefined;
    const chainTo = SecondaryBuffer === true ? irp?.MdlAddress : undefined;
    const mdl = convertingPlatformErrors(
      () =>
        this.#mm.allocateMdl(VirtualAddress, Length, {
          ...(process === undefined ? {} : { process }),
          ...(chainTo === undefined ? {} : { chainTo }),
        }),
      () => undefined,
    );
    if (mdl !== undefined && irp !== undefined && chainTo === undefined) irp.MdlAddress = mdl;
    return mdl;
  }

  /** IoFreeMdl, <= DISPATCH_LEVEL: the pages must have been unlocked (MmUnlockPages) first. */
  IoFreeMdl(Mdl: MDL): void {
    this.#atMost(DISPATCH_LEVEL, "IoFreeMdl");
    const mdl = this.#mdl(Mdl, "IoFreeMdl");
    if (mdl.locked) {
      throw bugCheck(
        MEMORY_MANAGEMENT,
        [MmRule.freeLocked, mdl.id, 0, 0],
        `IoFreeMdl of MDL ${mdl.id} whose pages are still locked: MmUnlockPages first`,
      );
    }
    this.#mm.freeMdl(mdl);
  }

  /** MmBuildMdlForNonPagedPool, <= DISPATCH_LEVEL: the buffer must be nonpaged kernel memory. */
  MmBuildMdlForNonPagedPool(MemoryDescriptorList: MDL): void {
    this.#atMost(DISPATCH_LEVEL, "MmBuildMdlForNonPagedPool");
    const mdl = this.#mdl(MemoryDescriptorList, "MmBuildMdlForNonPagedPool");
    if (mdl.resident) this.#alreadyResident(mdl, "MmBuildMdlForNonPagedPool");
    if (mdl.process !== undefined || !this.#memory.isMapped(mdl.virtualAddress, mdl.byteCount)) {
      throw bugCheck(
        PAGE_FAULT_IN_NONPAGED_AREA,
        [addressParameter(mdl.virtualAddress), 0, 0, 2],
        `MmBuildMdlForNonPagedPool: MDL ${mdl.id} buffer ${formatAddress(mdl.virtualAddress)} is not nonpaged kernel memory`,
      );
    }
    this.#mm.buildForNonPagedPool(mdl);
  }

  /**
   * MmProbeAndLockPages: makes the buffer resident and locks it for the device. In C a bad buffer
   * raises STATUS_ACCESS_VIOLATION; here that status is returned (STATUS_SUCCESS otherwise, and
   * STATUS_INSUFFICIENT_RESOURCES past the process's locked-memory limit). IRQL: <= APC_LEVEL for
   * user (pageable) buffers, <= DISPATCH_LEVEL for nonpaged ones.
   */
  MmProbeAndLockPages(
    MemoryDescriptorList: MDL,
    AccessMode: KPROCESSOR_MODE,
    Operation: LOCK_OPERATION,
  ): NTSTATUS {
    const mdl = this.#mdl(MemoryDescriptorList, "MmProbeAndLockPages");
    this.#atMost(mdl.process === undefined ? DISPATCH_LEVEL : APC_LEVEL, "MmProbeAndLockPages");
    if (mdl.resident) this.#alreadyResident(mdl, "MmProbeAndLockPages");
    const operation = lockOperation(Operation);
    if (operation === undefined || (AccessMode !== KernelMode && AccessMode !== UserMode))
      return STATUS_INVALID_PARAMETER;
    if (AccessMode === UserMode && mdl.process === undefined) return STATUS_ACCESS_VIOLATION;
    return convertingPlatformErrors(
      () => {
        this.#mm.probeAndLock(mdl, operation);
        return STATUS_SUCCESS;
      },
      (error) => (error.code === "no-memory" ? STATUS_INSUFFICIENT_RESOURCES : STATUS_ACCESS_VIOLATION),
    );
  }

  /** MmUnlockPages, <= DISPATCH_LEVEL: also removes a system mapping made for the MDL. */
  MmUnlockPages(MemoryDescriptorList: MDL): void {
    this.#atMost(DISPATCH_LEVEL, "MmUnlockPages");
    const mdl = this.#mdl(MemoryDescriptorList, "MmUnlockPages");
    if (!mdl.locked) {
      throw bugCheck(
        MEMORY_MANAGEMENT,
        [MmRule.unlockNotLocked, mdl.id, 0, 0],
        `MmUnlockPages of MDL ${mdl.id}, which MmProbeAndLockPages did not lock`,
      );
    }
    if (mdl.process?.destroyed) {
      throw bugCheck(
        PROCESS_HAS_LOCKED_PAGES,
        [0, mdl.process.id, mdl.pageCount, 0],
        `process ${mdl.process.id} (${mdl.process.name}) exited with the pages of MDL ${mdl.id} still locked`,
      );
    }
    this.#mm.unlock(mdl);
  }

  MmGetMdlVirtualAddress(Mdl: MDL): PVOID {
    return this.#mdl(Mdl, "MmGetMdlVirtualAddress").virtualAddress;
  }

  MmGetMdlByteCount(Mdl: MDL): number {
    return this.#mdl(Mdl, "MmGetMdlByteCount").byteCount;
  }

  MmGetMdlByteOffset(Mdl: MDL): number {
    return this.#mdl(Mdl, "MmGetMdlByteOffset").byteOffset;
  }

  /**
   * MmGetSystemAddressForMdlSafe, <= DISPATCH_LEVEL: the buffer's system address (user pages get
   * mapped into system space); NULL when no system PTEs are left. The MDL must be locked or built.
   */
  MmGetSystemAddressForMdlSafe(Mdl: MDL, Priority: number): PVOID {
    this.#atMost(DISPATCH_LEVEL, "MmGetSystemAddressForMdlSafe");
    const mdl = this.#mdl(Mdl, "MmGetSystemAddressForMdlSafe");
    if (!isCount(Priority)) return 0;
    if (!mdl.resident) {
      throw bugCheck(
        MEMORY_MANAGEMENT,
        [MmRule.notResident, mdl.id, 0, 0],
        `MmGetSystemAddressForMdlSafe of MDL ${mdl.id}, which is neither locked nor built for nonpaged pool`,
      );
    }
    return convertingPlatformErrors(
      () => this.#mm.systemAddress(mdl),
      () => 0,
    );
  }

  /**
   * MmGetPhysicalAddress, any IRQL: the physical address behind a mapped virtual address, 0 when
   * nothing is mapped there. A driver that gives this to its device bypasses the DMA adapter.
   */
  MmGetPhysicalAddress(BaseAddress: PVOID): PHYSICAL_ADDRESS {
    return this.#cpuAccess.physicalAddress(BaseAddress);
  }

  /**
   * KeFlushIoBuffers, <= DISPATCH_LEVEL: before a DMA, writes the MDL's dirty cache lines back
   * (ReadOperation FALSE: the device reads memory) or invalidates them (TRUE: the device writes
   * memory, and stale lines must neither hide nor overwrite its data). Free on a coherent
   * machine, essential on a non-coherent one. One call per MDL of a chain.
   */
  KeFlushIoBuffers(Mdl: MDL, ReadOperation: boolean, DmaOperation: boolean): void {
    this.#atMost(DISPATCH_LEVEL, "KeFlushIoBuffers");
    const mdl = this.#mdl(Mdl, "KeFlushIoBuffers");
    if (typeof ReadOperation !== "boolean" || typeof DmaOperation !== "boolean") {
      this.#badPointer("KeFlushIoBuffers", "ReadOperation and DmaOperation are BOOLEANs");
    }
    if (!mdl.resident) {
      throw bugCheck(
        MEMORY_MANAGEMENT,
        [MmRule.notResident, mdl.id, 0, 0],
        `KeFlushIoBuffers of MDL ${mdl.id}, which is neither locked nor built`,
      );
    }
    this.#counters.add("ddi.KeFlushIoBuffers");
    this.#mm.physicalRuns(mdl, 0, mdl.byteCount, (pa, length) => {
      if (ReadOperation) this.#cpu.invalidate(pa, length);
      else this.#cpu.flush(pa, length);
      return true;
    });
  }

  // ---- Pool and contiguous memory ----

  /**
   * ExAllocatePoolWithTag: nonpaged memory (PagedPool is accepted at <= APC_LEVEL and is resident
   * too). Returns NULL for zero bytes, an unknown pool type or tag, or when memory is short.
   * Contents are not initialised.
   */
  ExAllocatePoolWithTag(PoolType: POOL_TYPE, NumberOfBytes: number, Tag: POOL_TAG): PVOID {
    this.#atMost(PoolType === PagedPool ? APC_LEVEL : DISPATCH_LEVEL, "ExAllocatePoolWithTag");
    const tag = PoolAllocator.tagOf(Tag);
    const known = PoolType === NonPagedPool || PoolType === NonPagedPoolNx || PoolType === PagedPool;
    return known && tag !== undefined ? this.#pool.allocate(NumberOfBytes, tag, false) : 0;
  }

  /**
   * ExAllocatePool2: exactly one of POOL_FLAG_NON_PAGED, _NON_PAGED_EXECUTE and _PAGED; zeroed
   * unless POOL_FLAG_UNINITIALIZED. A zero tag is BAD_POOL_CALLER 0x9B, as on Windows; other bad
   * flags, sizes or no memory give NULL.
   */
  ExAllocatePool2(Flags: POOL_FLAGS, NumberOfBytes: number, Tag: POOL_TAG): PVOID {
    const paged = isCount(Flags) && (Flags & POOL_FLAG_PAGED) !== 0;
    this.#atMost(paged ? APC_LEVEL : DISPATCH_LEVEL, "ExAllocatePool2");
    const tag = PoolAllocator.tagOf(Tag);
    if (tag === "") {
      throw bugCheck(
        BAD_POOL_CALLER,
        [BadPoolCaller.zeroTag, 0, isCount(NumberOfBytes) ? NumberOfBytes : 0, 0],
        "ExAllocatePool2 with a pool tag of zero",
      );
    }
    if (!isCount(Flags) || (Flags & ~KNOWN_POOL_FLAGS) !== 0 || tag === undefined) return 0;
    const kinds = [POOL_FLAG_NON_PAGED, POOL_FLAG_NON_PAGED_EXECUTE, POOL_FLAG_PAGED].filter(
      (f) => (Flags & f) !== 0,
    );
    if (kinds.length !== 1) return 0;
    return this.#pool.allocate(NumberOfBytes, tag, (Flags & POOL_FLAG_UNINITIALIZED) === 0);
  }

  /**
   * ExFreePoolWithTag, <= DISPATCH_LEVEL. BAD_POOL_CALLER for an address that is not a pool
   * block (0x46), a block freed already (0x07) or a Tag other than the allocation's (0x0A; Tag 0
   * skips the check, as ExFreePool does).
   */
  ExFreePoolWithTag(P: PVOID, Tag: POOL_TAG): void {
    this.#atMost(DISPATCH_LEVEL, "ExFreePoolWithTag");
    this.#pool.free(P, Tag, "ExFreePoolWithTag");
  }

  ExFreePool(P: PVOID): void {
    this.ExFreePoolWithTag(P, 0);
  }

  /** MmAllocateContiguousMemory, <= DISPATCH_LEVEL: cached, below HighestAcceptableAddress (inclusive). */
  MmAllocateContiguousMemory(NumberOfBytes: number, HighestAcceptableAddress: PHYSICAL_ADDRESS): PVOID {
    return this.MmAllocateContiguousMemorySpecifyCache(
      NumberOfBytes,
      0,
      HighestAcceptableAddress,
      0,
      MmCached,
    );
  }

  /**
   * MmAllocateContiguousMemorySpecifyCache, <= DISPATCH_LEVEL: one physically contiguous run in
   * [Lowest, Highest], not crossing a BoundaryAddressMultiple (0, or a power-of-two number of
   * pages). NULL when the request is malformed or no run is free. MmNonCached and
   * MmWriteCombined memory bypasses the CPU cache of a non-coherent machine (see docs/memory.md).
   */
  MmAllocateContiguousMemorySpecifyCache(
    NumberOfBytes: number,
    LowestAcceptableAddress: PHYSICAL_ADDRESS,
    HighestAcceptableAddress: PHYSICAL_ADDRESS,
    BoundaryAddressMultiple: PHYSICAL_ADDRESS,
    CacheType: MEMORY_CACHING_TYPE,
  ): PVOID {
    this.#atMost(DISPATCH_LEVEL, "MmAllocateContiguousMemorySpecifyCache");
    const boundary = BoundaryAddressMultiple;
    const boundaryOk =
      boundary === 0 ||
      (isCount(boundary) &&
        boundary % PAGE_SIZE === 0 &&
        isPowerOfTwo(boundary / PAGE_SIZE) &&
        boundary >= NumberOfBytes);
    if (
      !isCount(NumberOfBytes) ||
      NumberOfBytes === 0 ||
      !isAddress(LowestAcceptableAddress) ||
      !isAddress(HighestAcceptableAddress) ||
      HighestAcceptableAddress < LowestAcceptableAddress ||
      !boundaryOk ||
      !isCacheType(CacheType)
    ) {
      return 0;
    }
    return this.#pool.allocateContiguous(NumberOfBytes, {
      lowest: LowestAcceptableAddress,
      highest: HighestAcceptableAddress,
      boundary,
      cached: CacheType === MmCached,
    });
  }

  /** MmFreeContiguousMemory, <= DISPATCH_LEVEL: BaseAddress must be what the allocation returned. */
  MmFreeContiguousMemory(BaseAddress: PVOID): void {
    this.#atMost(DISPATCH_LEVEL, "MmFreeContiguousMemory");
    this.#pool.freeContiguous(BaseAddress, undefined, "MmFreeContiguousMemory");
  }

  /** MmFreeContiguousMemorySpecifyCache: NumberOfBytes must be the allocation's. */
  MmFreeContiguousMemorySpecifyCache(
    BaseAddress: PVOID,
    NumberOfBytes: number,
    CacheType: MEMORY_CACHING_TYPE,
  ): void {
    this.#atMost(DISPATCH_LEVEL, "MmFreeContiguousMemorySpecifyCache");
    if (!isCacheType(CacheType))
      this.#badPointer("MmFreeContiguousMemorySpecifyCache", "CacheType is not a MEMORY_CACHING_TYPE");
    this.#pool.freeContiguous(BaseAddress, NumberOfBytes, "MmFreeContiguousMemorySpecifyCache");
  }

  // ---- Memory access (C pointer dereference) ----

  /**
   * `memcpy(out, (void*)VirtualAddress, Length)`: a CPU load, through the cache when the machine
   * is not coherent. An unmapped address is PAGE_FAULT_IN_NONPAGED_AREA; a user address needs an
   * attached process and IRQL <= APC_LEVEL (user memory is pageable: IRQL_NOT_LESS_OR_EQUAL).
   */
  ReadMemory(VirtualAddress: PVOID, Length: number): Uint8Array {
    if (!isCount(Length)) this.#badPointer("ReadMemory", `Length ${String(Length)} is not a byte count`);
    const out = new Uint8Array(Length);
    this.#cpuAccess.read(VirtualAddress, out);
    return out;
  }

  /** `memcpy((void*)VirtualAddress, Buffer, Buffer.length)`: a CPU store, with ReadMemory's rules. */
  WriteMemory(VirtualAddress: PVOID, Buffer: Uint8Array): void {
    if (!(Buffer instanceof Uint8Array)) this.#badPointer("WriteMemory", "Buffer is not a Uint8Array");
    this.#cpuAccess.write(VirtualAddress, Buffer);
  }

  /** RtlCopyMemory(Destination, Source, Length) between two mapped ranges. */
  RtlCopyMemory(Destination: PVOID, Source: PVOID, Length: number): void {
    this.WriteMemory(Destination, this.ReadMemory(Source, Length));
  }

  /** RtlZeroMemory(Destination, Length). */
  RtlZeroMemory(Destination: PVOID, Length: number): void {
    if (!isCount(Length)) this.#badPointer("RtlZeroMemory", `Length ${String(Length)} is not a byte count`);
    this.#cpuAccess.zero(Destination, Length);
  }

  // ---- Process context ----

  /**
   * KeStackAttachProcess, <= APC_LEVEL: user addresses of PROCESS become reachable (IoAllocateMdl,
   * ReadMemory, MmGetPhysicalAddress) until KeUnstackDetachProcess with the same ApcState.
   */
  KeStackAttachProcess(PROCESS: PEPROCESS, ApcState: KAPC_STATE): void {
    this.#atMost(APC_LEVEL, "KeStackAttachProcess");
    this.#object(PROCESS, ProcessAddressSpace, "KeStackAttachProcess", "PROCESS");
    this.#cpuAccess.attach(PROCESS, this.#object(ApcState, KAPC_STATE, "KeStackAttachProcess", "ApcState"));
  }

  KeUnstackDetachProcess(ApcState: KAPC_STATE): void {
    this.#atMost(APC_LEVEL, "KeUnstackDetachProcess");
    this.#cpuAccess.detach(ApcState);
  }

  // ---- Checks ----

  #register(va: PVOID, write: boolean): number {
    const pa = isAddress(va) ? this.#ioSpace.physicalAddress(va, 4) : undefined;
    if (pa === undefined) {
      throw bugCheck(
        PAGE_FAULT_IN_NONPAGED_AREA,
        [addressParameter(va), write ? 1 : 0, 0, 2],
        `${write ? "WRITE" : "READ"}_REGISTER_ULONG(${formatAddress(va)}): not a register address from MmMapIoSpace`,
      );
    }
    return pa;
  }

  #atMost(level: KIRQL, routine: string): void {
    const irql = this.#scheduler.irql;
    if (irql > level) {
      throw new BugCheck(
        IRQL_NOT_LESS_OR_EQUAL,
        [0, irql, 0, 0],
        `${routine} called at IRQL ${irql}; it requires <= ${irqlName(level)}`,
      );
    }
  }

  #exactly(level: KIRQL, routine: string): void {
    this.#atMost(level, routine);
    const irql = this.#scheduler.irql;
    if (irql < level) {
      throw bugCheck(
        IRQL_NOT_GREATER_OR_EQUAL,
        [irql, level, 0, 0],
        `${routine} called at IRQL ${irql}; it requires ${irqlName(level)}`,
      );
    }
  }

  #spinLock(lock: KSPIN_LOCK, routine: string): KSPIN_LOCK {
    return this.#object(lock, KSPIN_LOCK, routine, "SpinLock");
  }

  #acquirable(lock: KSPIN_LOCK, routine: string): KSPIN_LOCK {
    if (this.#spinLock(lock, routine).held) {
      throw bugCheck(
        SPIN_LOCK_ALREADY_OWNED,
        [0, 0, 0, 0],
        `${routine}: the lock is already held (it would spin forever)`,
      );
    }
    return lock;
  }

  #held(lock: KSPIN_LOCK, routine: string): KSPIN_LOCK {
    if (!this.#spinLock(lock, routine).held)
      throw bugCheck(SPIN_LOCK_NOT_OWNED, [0, 0, 0, 0], `${routine}: the lock is not held`);
    return lock;
  }

  #deviceObject(device: DEVICE_OBJECT, routine: string): DeviceObject {
    if (!(device instanceof DeviceObject) || device.deleted)
      this.#badPointer(routine, "not a live DEVICE_OBJECT");
    return device;
  }

  #driverObject(driver: DRIVER_OBJECT, routine: string): DriverObject {
    if (!(driver instanceof DriverObject) || !driver.loaded)
      this.#badPointer(routine, "DriverObject is not a loaded driver's object");
    return driver;
  }

  #notDeletedTwice(device: DEVICE_OBJECT): void {
    if (device instanceof DeviceObject && device.deleted) {
      throw bugCheck(
        DRIVER_VERIFIER_IOMANAGER_VIOLATION,
        [IoRule.deleteTwice, device.id, 0, 0],
        `IoDeleteDevice of ${device}, already deleted`,
      );
    }
  }

  #irp(irp: IRP, routine: string): Irp {
    return this.#object(irp as Irp, Irp, routine, "Irp");
  }

  #mdl(mdl: MDL, routine: string): Mdl {
    this.#object(mdl, Mdl, routine, "Mdl");
    if (mdl.freed) {
      throw bugCheck(
        MEMORY_MANAGEMENT,
        [MmRule.freeTwice, mdl.id, 0, 0],
        `${routine}: MDL ${mdl.id} was freed by IoFreeMdl`,
      );
    }
    return mdl;
  }

  #alreadyResident(mdl: Mdl, routine: string): never {
    throw bugCheck(
      MEMORY_MANAGEMENT,
      [MmRule.alreadyResident, mdl.id, 0, 0],
      `${routine}: MDL ${mdl.id} is already ${mdl.locked ? "locked" : "built for nonpaged pool"}`,
    );
  }

  #object<T>(value: T, type: abstract new (...args: never[]) => T, routine: string, parameter: string): T {
    if (!(value instanceof type)) this.#badPointer(routine, `${parameter} is not a ${type.name}`);
    return value;
  }

  /** What a bad pointer does in C: an unhandled access violation in kernel mode. */
  #badPointer(routine: string, what: string): never {
    throw bugCheck(KMODE_EXCEPTION_NOT_HANDLED, [STATUS_ACCESS_VIOLATION, 0, 0, 0], `${routine}: ${what}`);
  }
}

function lockOperation(operation: LOCK_OPERATION): LockOperation | undefined {
  if (operation === IoReadAccess) return "read";
  if (operation === IoWriteAccess) return "write";
  if (operation === IoModifyAccess) return "modify";
  return undefined;
}
