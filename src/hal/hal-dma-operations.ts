/**
 * DMA_OPERATIONS: the 39 members a driver reaches through its adapter, with Windows names,
 * statuses and IRQL rules (reference sections 1-5; the table in docs/hal.md). This class is the
 * generic half of the HAL, as Linux's dma-mapping.c is in front of its dma_map_ops: it validates,
 * checks the IRQL, queues requests (DmaArbiter), builds scatter/gather lists and keeps the books
 * of what every adapter holds; the adapter's mapping strategy (DirectMapping or RemapMapping)
 * only turns MDL pages into logical addresses.
 *
 * Every member, in this order:
 * 1. the adapter: NULL -> DRIVER_VERIFIER_DMA_VIOLATION 0x19, released -> 0x18, not an adapter of
 *    this machine or a member beyond its table version -> 0xE6/0x00 with a HAL rule;
 * 2. the IRQL its WDK page requires -> 0xE6/0x13 otherwise (Windows checks this only under
 *    Driver Verifier; the simulator always does);
 * 3. the arguments: where Windows returns an NTSTATUS, a bad argument returns the status its page
 *    lists (STATUS_INVALID_PARAMETER when the page lists none for it); where the member returns
 *    nothing, a bad argument is the bug check the verifier would raise, with the reason.
 * PlatformErrors from the layers below are turned into statuses or bug checks here and never
 * escape. Validation comes before any change, so a refused call leaves every structure as it was.
 *
 * Fields are TypeScript `private`, not `#`: tsx lowers #-members of decorated classes to WeakMap
 * helpers, which would sit on every MapTransfer.
 */
import { inject, injectable } from "inversify";
import { CpuMemory } from "../platform/cpu-memory.js";
import { FrameAllocator } from "../platform/frame-allocator.js";
import { KernelMemory } from "../platform/kernel-memory.js";
import { Mdl } from "../platform/mdl.js";
import { MemoryManager } from "../platform/memory-manager.js";
import { formatAddress, PAGE_SIZE, spanPages } from "../platform/page.js";
import { PlatformError } from "../platform/platform-error.js";
import { Scheduler } from "../platform/scheduler.js";
import { type CounterCell, Counters } from "../trace/counters.js";
import { EventBus, type ListenerFlag } from "../trace/event-bus.js";
import { AdapterObject } from "./adapter-object.js";
import { CommonBufferVector, vectorLayout } from "./common-buffer-vector.js";
import { DmaArbiter } from "./dma-arbiter.js";
import type {
  CommonBuffer,
  CommonBufferRequest,
  MappedPiece,
  MapRegisterFile,
  MdlCommonBufferRequest,
} from "./dma-mapping-strategy.js";
import {
  DMA_OPERATION_MEMBERS,
  type DmaOperationMember,
  type DmaOperationName,
} from "./dma-operation-members.js";
import {
  checkIrql,
  DmaViolation,
  dmaViolation,
  HalRule,
  halViolation,
  PAGE_FAULT_IN_NONPAGED_AREA,
  VectorError,
  vectorError,
} from "./hal-bug-checks.js";
import "./hal-events.js";
import { hiddenReference } from "./hidden-reference.js";
import { type MapRegisterGrant, MapRegisterGrants } from "./map-register-grant.js";
import { chainLength, chainMapRegisters, chainSegments, type MdlSegment } from "./mdl-chain.js";
import { RemapMapping } from "./remap-mapping.js";
import {
  appendElement,
  scatterGatherList,
  scatterGatherListSize,
  writeScatterGatherList,
} from "./scatter-gather-builder.js";
import { TransferContextState, transferContextState } from "./transfer-context.js";
import { WaitBlock } from "./wait-block.js";
import { BugCheck } from "./wdm/bug-check.js";
import type { DEVICE_OBJECT, IRP, MDL } from "./wdm/device-object.js";
import type {
  CommonBufferResult,
  DMA_ADAPTER,
  DMA_COMPLETION_ROUTINE,
  DMA_OPERATIONS,
  DRIVER_CONTROL,
  DRIVER_LIST_CONTROL,
  PHYSICAL_ADDRESS,
  PVOID,
} from "./wdm/dma-operations.js";
import { DMA_OPERATIONS_SIZE_V3 } from "./wdm/dma-operations.js";
import {
  CommonBufferConfigTypeHardwareAccessPermissions,
  CommonBufferConfigTypeLogicalAddressLimits,
  CommonBufferConfigTypeSubSection,
  CommonBufferHardwareAccessReadOnly,
  CommonBufferHardwareAccessReadWrite,
  CommonBufferHardwareAccessWriteOnly,
  type DMA_ADAPTER_INFO,
  DMA_ADAPTER_INFO_VERSION1,
  type DMA_COMMON_BUFFER_EXTENDED_CONFIGURATION,
  type DMA_COMMON_BUFFER_VECTOR,
  type DMA_DOMAIN,
  DMA_SYNCHRONOUS_CALLBACK,
  DMA_TRANSFER_CONTEXT,
  type DMA_TRANSFER_INFO,
  DMA_TRANSFER_INFO_VERSION1,
  DMA_TRANSFER_INFO_VERSION2,
  DOMAIN_COMMON_BUFFER_LARGE_PAGE,
  type MAP_REGISTER_BASE,
  type MEMORY_CACHING_TYPE,
  MmCached,
  MmNonCached,
  MmWriteCombined,
  type NODE_REQUIREMENT,
} from "./wdm/dma-v3-types.js";
import {
  DeallocateObject,
  DeallocateObjectKeepRegisters,
  type IO_ALLOCATION_ACTION,
  KeepObject,
} from "./wdm/io-allocation-action.js";
import {
  type NTSTATUS,
  STATUS_BUFFER_TOO_SMALL,
  STATUS_CANCELLED,
  STATUS_INSUFFICIENT_RESOURCES,
  STATUS_INVALID_PARAMETER,
  STATUS_NONE_MAPPED,
  STATUS_NOT_IMPLEMENTED,
  STATUS_NOT_SUPPORTED,
  STATUS_SUCCESS,
} from "./wdm/ntstatus.js";
import {
  type SCATTER_GATHER_ELEMENT,
  SCATTER_GATHER_ELEMENT_SIZE,
  type SCATTER_GATHER_LIST,
  SCATTER_GATHER_LIST_HEADER_SIZE,
} from "./wdm/scatter-gather-list.js";

/** MAXULONG + 1. */
const ULONG_LIMIT = 2 ** 32;
const NULL_COMMON_BUFFER: CommonBufferResult = Object.freeze({ VirtualAddress: 0, LogicalAddress: 0 });
const MEMBERS = Object.fromEntries(DMA_OPERATION_MEMBERS.map((member) => [member.name, member])) as Readonly<
  Record<DmaOperationName, DmaOperationMember>
>;
export const SCATTER_GATHER_OWNER = "hal.sglist";

/**
 * A scatter/gather list request, and then the record of the list it built. As a request it is
 * its own wait context block (reference section 3), carrying what the dispatcher's one list
 * routine needs, so queueing it creates no closure. Once the routine ran, the list carries it as
 * a hidden reference: PutScatterGatherList finds it at once, and still recognises the list after
 * it was put back.
 */
class ListRequest extends WaitBlock {
  /** The list the routine built (the Ex forms return it when it ran at once). */
  list: SCATTER_GATHER_LIST | undefined = undefined;
  /** The registers the list holds until Put. */
  grant: MapRegisterGrant | undefined = undefined;
  /** PutScatterGatherList was called: a second put is a double free. */
  put = false;
  /** Index in the dispatcher's array of live lists while handed out. */
  slot = -1;
  /** BuildMdlFromScatterGatherList was called (a second call is STATUS_NONE_MAPPED). */
  mdlBuilt = false;
  /** The MDL and system mapping BuildMdlFromScatterGatherList made over bounce pages. */
  target: { readonly mdl: Mdl; readonly va: number } | undefined = undefined;
  readonly #brand = true;

  constructor(
    /** The dispatcher it belongs to: a list of another machine is a foreign handle. */
    readonly dispatcher: HalDmaOperations,
    adapter: AdapterObject,
    registers: number,
    routine: WaitBlock["routine"],
    readonly args: ListArguments,
    /** The range's part of each MDL of the chain; undefined when it lies in the first MDL. */
    readonly segments: readonly MdlSegment[] | undefined,
    readonly irp: IRP | undefined,
    /** Where the list lives: the caller's buffer (Build) or pool the HAL allocated (Get). */
    readonly va: number,
    readonly poolVa: number | undefined,
    readonly poolSize: number,
  ) {
    super(adapter, "list", registers, routine);
  }

  /** `instanceof`, by private name (see AdapterObject.is). */
  static is(value: unknown): value is ListRequest {
    return typeof value === "object" && value !== null && #brand in value;
  }

  /** The range as MDL segments (a one-segment range makes its array only here, off the hot path). */
  allSegments(): readonly MdlSegment[] {
    const { mdl, offset, length } = this.args;
    return this.segments ?? [{ mdl, currentVa: mdl.virtualAddress + offset, length }];
  }
}

/** A common buffer handed out and not yet freed. */
interface CommonBufferRecord {
  readonly buffer: CommonBuffer;
  /** Length and CacheEnabled as the driver asked, which FreeCommonBuffer must repeat. */
  readonly length: number;
  readonly cacheEnabled: boolean;
  /** Made from a driver's MDL: CacheEnabled is not part of it. */
  readonly fromMdl: boolean;
}

/** What a scatter/gather request asks for, for Get/Build and their Ex forms. */
interface ListArguments {
  readonly deviceObject: DEVICE_OBJECT;
  readonly mdl: Mdl;
  readonly offset: number;
  readonly length: number;
  readonly executionRoutine: DRIVER_LIST_CONTROL | undefined;
  readonly context: unknown;
  readonly writeToDevice: boolean;
  /** Caller's buffer (Build); undefined: the HAL allocates the list (Get). */
  readonly buffer: { readonly va: number; readonly length: number } | undefined;
  readonly synchronous: boolean;
  readonly transferContext: TransferContextState | undefined;
  readonly v3: boolean;
}

/** What the HAL holds right now, for a teardown check. */
export interface DispatcherResources {
  readonly scatterGatherLists: number;
  readonly queuedRequests: number;
  readonly channelsHeld: number;
  readonly mapRegisterGrants: number;
  readonly commonBufferVectors: number;
}

@injectable()
export class HalDmaOperations implements DMA_OPERATIONS {
  /** The full table; each adapter's view of it carries the Size of its version. */
  readonly Size = DMA_OPERATIONS_SIZE_V3;
  private readonly scheduler: Scheduler;
  private readonly cpu: CpuMemory;
  private readonly kernel: KernelMemory;
  private readonly mm: MemoryManager;
  private readonly remap: RemapMapping;
  private readonly events: EventBus;
  private readonly counters: Counters;
  private readonly grants = new MapRegisterGrants();
  private readonly arbiter: DmaArbiter;
  private readonly listOwner: number;
  private readonly mapPieces: CounterCell;
  private readonly mapBytes: CounterCell;
  private readonly listsGot: CounterCell;
  private readonly listsPutBack: CounterCell;
  private readonly listListened: ListenerFlag;
  /** Adapters handed out and not released; released ones are only remembered for bug check 0x18. */
  private readonly adapters = new Set<AdapterObject>();
  private readonly releasedAdapters = new WeakSet<AdapterObject>();
  /** Lists handed out and not put back, in any order (swap-remove through ListRequest.slot). */
  private readonly lists: ListRequest[] = [];
  /** The routine and cleanup of every list request (ListRequest carries the request's data). */
  private readonly listRoutine = (
    grant: MapRegisterGrant | undefined,
    wait: WaitBlock,
  ): IO_ALLOCATION_ACTION => this.runListRequest(wait as ListRequest, grant);
  private readonly listCleanup = (wait: WaitBlock): void => this.dropListRequest(wait as ListRequest);
  private readonly commonBuffers = new Map<number, CommonBufferRecord>();
  private readonly commonBuffersFreed = new Set<number>();
  private readonly vectors = new Set<CommonBufferVector>();
  /** The request in each device object's embedded wait block (AllocateAdapterChannel). */
  private readonly deviceRequests = new WeakMap<DEVICE_OBJECT, WaitBlock>();
  private nextListId = 1;

  constructor(
    @inject(Scheduler) scheduler: Scheduler,
    @inject(CpuMemory) cpu: CpuMemory,
    @inject(KernelMemory) kernel: KernelMemory,
    @inject(MemoryManager) mm: MemoryManager,
    @inject(FrameAllocator) frames: FrameAllocator,
    @inject(RemapMapping) remap: RemapMapping,
    @inject(EventBus) events: EventBus,
    @inject(Counters) counters: Counters,
  ) {
    this.scheduler = scheduler;
    this.cpu = cpu;
    this.kernel = kernel;
    this.mm = mm;
    this.remap = remap;
    this.events = events;
    this.counters = counters;
    this.arbiter = new DmaArbiter(scheduler, this.grants, events, counters);
    this.listOwner = frames.registerOwner(SCATTER_GATHER_OWNER);
    this.mapPieces = counters.cell("hal.map.pieces");
    this.mapBytes = counters.cell("hal.map.bytes");
    this.listsGot = counters.cell("hal.sglist.get");
    this.listsPutBack = counters.cell("hal.sglist.put");
    this.listListened = events.listenerFlag("dma.sglist");
  }

  // ------------------------------------------------------------------ for the Hal

  /** IoGetDmaAdapter's last step: the strategy sets the adapter up (throws PlatformError if it cannot). */
  registerAdapter(adapter: AdapterObject): void {
    adapter.strategy.openAdapter(adapter);
    this.adapters.add(adapter);
    this.arbiter.open(adapter);
    this.counters.add("hal.adapter.open");
    this.announceAdapter(adapter, "open", 0);
  }

  /** Adapters handed out and not yet released. */
  get openAdapters(): number {
    return this.adapters.size;
  }

  resources(): DispatcherResources {
    return {
      scatterGatherLists: this.lists.length,
      queuedRequests: this.arbiter.queuedRequests,
      channelsHeld: this.arbiter.channelsHeld,
      mapRegisterGrants: this.grants.size,
      commonBufferVectors: this.vectors.size,
    };
  }

  // ------------------------------------------------------------------ version 1

  /**
   * PutDmaAdapter. With map registers, lists, common buffers or a channel still held, Windows
   * releases the adapter anyway and they leak (the verifier stops with 0x07-0x0A); so does the
   * HAL: they stay counted in Hal.resources(). Requests still queued are dropped, never run.
   */
  PutDmaAdapter(DmaAdapter: DMA_ADAPTER): void {
    const adapter = this.enter(DmaAdapter, MEMBERS.PutDmaAdapter);
    const dropped = this.arbiter.close(adapter);
    for (const request of dropped) request.cleanup?.(request);
    for (const va of adapter.listLookaside.close()) this.kernel.free(va);
    const leaked = this.outstanding(adapter);
    adapter.released = true;
    this.adapters.delete(adapter);
    this.releasedAdapters.add(adapter);
    if (leaked === 0) this.lower(() => adapter.strategy.closeAdapter(adapter), "PutDmaAdapter");
    else this.counters.add("hal.adapter.leaked", leaked);
    this.counters.add("hal.adapter.close");
    this.announceAdapter(adapter, "close", leaked + dropped.length);
  }

  AllocateCommonBuffer(DmaAdapter: DMA_ADAPTER, Length: number, CacheEnabled: boolean): CommonBufferResult {
    const adapter = this.enter(DmaAdapter, MEMBERS.AllocateCommonBuffer);
    if (!isUlong(Length) || Length === 0) return NULL_COMMON_BUFFER;
    return this.allocateCommon(adapter, {
      length: Length,
      minimumLogical: 0,
      maximumLogical: adapter.capabilities.addressLimit,
      cacheEnabled: Boolean(CacheEnabled),
      largePage: false,
    });
  }

  FreeCommonBuffer(
    DmaAdapter: DMA_ADAPTER,
    Length: number,
    LogicalAddress: PHYSICAL_ADDRESS,
    VirtualAddress: PVOID,
    CacheEnabled: boolean,
  ): void {
    const adapter = this.enter(DmaAdapter, MEMBERS.FreeCommonBuffer);
    const record = this.commonBuffers.get(VirtualAddress);
    if (record === undefined) {
      if (this.commonBuffersFreed.has(VirtualAddress)) {
        throw dmaViolation(
          DmaViolation.commonBufferDoubleFree,
          1,
          VirtualAddress,
          0,
          `common buffer ${formatAddress(VirtualAddress)} freed twice`,
        );
      }
      throw halViolation(
        HalRule.foreignHandle,
        number(VirtualAddress),
        adapter.id,
        `${formatAddress(VirtualAddress)} is not a common buffer of any adapter`,
      );
    }
    const { buffer } = record;
    if (buffer.adapter !== adapter) {
      throw halViolation(
        HalRule.foreignHandle,
        VirtualAddress,
        adapter.id,
        `common buffer ${formatAddress(VirtualAddress)} belongs to adapter ${buffer.adapter.id}, not ${adapter.id}`,
      );
    }
    if (
      Length !== record.length ||
      LogicalAddress !== buffer.logicalAddress ||
      (!record.fromMdl && Boolean(CacheEnabled) !== record.cacheEnabled)
    ) {
      throw halViolation(
        HalRule.commonBufferMismatch,
        VirtualAddress,
        number(Length),
        `FreeCommonBuffer(${String(Length)}, ${formatAddress(LogicalAddress)}, ${formatAddress(VirtualAddress)}, ${String(CacheEnabled)}) does not match the allocation (${record.length}, ${formatAddress(buffer.logicalAddress)}, ${record.cacheEnabled})`,
      );
    }
    this.lower(() => adapter.strategy.freeCommonBuffer(buffer), "FreeCommonBuffer");
    this.commonBuffers.delete(VirtualAddress);
    this.commonBuffersFreed.add(VirtualAddress);
    this.counters.add("hal.common-buffer.free");
  }

  AllocateAdapterChannel(
    DmaAdapter: DMA_ADAPTER,
    DeviceObject: DEVICE_OBJECT,
    NumberOfMapRegisters: number,
    ExecutionRoutine: DRIVER_CONTROL,
    Context: unknown,
  ): NTSTATUS {
    const adapter = this.enter(DmaAdapter, MEMBERS.AllocateAdapterChannel);
    if (
      !isDeviceObject(DeviceObject) ||
      !isUlong(NumberOfMapRegisters) ||
      typeof ExecutionRoutine !== "function"
    ) {
      return STATUS_INVALID_PARAMETER;
    }
    if (NumberOfMapRegisters > adapter.capabilities.numberOfMapRegisters)
      return this.refuse(adapter, NumberOfMapRegisters);
    const previous = this.deviceRequests.get(DeviceObject);
    if (previous !== undefined && (previous.waiting || previous.state === "running")) {
      throw dmaViolation(
        DmaViolation.secondChannel,
        2,
        adapter.id,
        0,
        "AllocateAdapterChannel while the device object's wait block is still in use (a request is queued or its AdapterControl is running): one per device object",
      );
    }
    const irp = DeviceObject.CurrentIrp;
    const request = new WaitBlock(adapter, "channel", NumberOfMapRegisters, (grant) =>
      ExecutionRoutine(DeviceObject, irp, grant?.handle, Context),
    );
    this.deviceRequests.set(DeviceObject, request);
    this.arbiter.submit(request, false);
    return STATUS_SUCCESS;
  }

  FlushAdapterBuffers(
    DmaAdapter: DMA_ADAPTER,
    Mdl: MDL,
    MapRegisterBase: MAP_REGISTER_BASE | undefined,
    CurrentVa: PVOID,
    Length: number,
    WriteToDevice: boolean,
  ): boolean {
    const adapter = this.enter(DmaAdapter, MEMBERS.FlushAdapterBuffers);
    const mdl = this.residentMdl(Mdl);
    this.checkMdlRange(mdl, CurrentVa, Length, true);
    const grant = this.grantOf(adapter, MapRegisterBase, "FlushAdapterBuffers");
    if (Length === 0) return true;
    const flushed = this.lower(
      () =>
        adapter.strategy.flushAdapterBuffers(
          adapter,
          grant?.file,
          mdl,
          CurrentVa,
          Length,
          Boolean(WriteToDevice),
        ),
      "FlushAdapterBuffers",
    );
    return flushed;
  }

  FreeAdapterChannel(DmaAdapter: DMA_ADAPTER): void {
    const adapter = this.enter(DmaAdapter, MEMBERS.FreeAdapterChannel);
    this.checkChannelOwned(adapter, "FreeAdapterChannel");
    this.arbiter.releaseChannel(adapter, false);
  }

  FreeMapRegisters(
    DmaAdapter: DMA_ADAPTER,
    MapRegisterBase: MAP_REGISTER_BASE | undefined,
    NumberOfMapRegisters: number,
  ): void {
    const adapter = this.enter(DmaAdapter, MEMBERS.FreeMapRegisters);
    if (MapRegisterBase === undefined) return;
    const grant = this.grants.lookup(MapRegisterBase);
    if (grant === undefined) {
      if (this.grants.wasFreed(MapRegisterBase)) {
        throw dmaViolation(
          DmaViolation.mapRegistersDoubleFree,
          number(NumberOfMapRegisters),
          adapter.id,
          0,
          "FreeMapRegisters: these map registers were already freed",
        );
      }
      throw halViolation(
        HalRule.foreignHandle,
        0,
        adapter.id,
        "FreeMapRegisters: MapRegisterBase was not handed out by this HAL",
      );
    }
    if (grant.adapter !== adapter) {
      throw halViolation(
        HalRule.foreignHandle,
        grant.adapter.id,
        adapter.id,
        `FreeMapRegisters: the registers belong to adapter ${grant.adapter.id}`,
      );
    }
    if (grant.owner === "list") {
      throw halViolation(
        HalRule.registersOwnedByList,
        grant.count,
        adapter.id,
        "FreeMapRegisters on a scatter/gather list's registers: PutScatterGatherList frees them",
      );
    }
    if (NumberOfMapRegisters !== grant.count) {
      throw halViolation(
        HalRule.mapRegisterCountMismatch,
        number(NumberOfMapRegisters),
        grant.count,
        `FreeMapRegisters(${String(NumberOfMapRegisters)}) but ${grant.count} were allocated: the count must be AllocateAdapterChannel's`,
      );
    }
    this.arbiter.freeGrant(grant);
  }

  MapTransfer(
    DmaAdapter: DMA_ADAPTER,
    Mdl: MDL,
    MapRegisterBase: MAP_REGISTER_BASE | undefined,
    CurrentVa: PVOID,
    Length: number,
    WriteToDevice: boolean,
  ): { readonly LogicalAddress: PHYSICAL_ADDRESS; readonly Length: number } {
    const adapter = this.enter(DmaAdapter, MEMBERS.MapTransfer);
    const mdl = this.residentMdl(Mdl);
    this.checkMdlRange(mdl, CurrentVa, Length, false);
    const grant = this.grantOf(adapter, MapRegisterBase, "MapTransfer");
    const needed = spanPages(CurrentVa, Length);
    if (grant === undefined && adapter.strategy.needsMapRegisters(adapter)) {
      throw halViolation(
        HalRule.outOfMapRegisters,
        needed,
        0,
        `MapTransfer without map registers: adapter ${adapter.id} needs them (MapRegisterBase is NULL)`,
      );
    }
    const piece = this.mapPiece(
      adapter,
      grant,
      mdl,
      CurrentVa,
      Length,
      Boolean(WriteToDevice),
      "MapTransfer",
    );
    return { LogicalAddress: piece.logicalAddress, Length: piece.length };
  }

  /** GetDmaAlignment: x86/x64 DMA needs no alignment (1; AlignmentRequirement FILE_BYTE_ALIGNMENT). */
  GetDmaAlignment(DmaAdapter: DMA_ADAPTER): number {
    this.enter(DmaAdapter, MEMBERS.GetDmaAlignment);
    return 1;
  }

  /** ReadDmaCounter: only a system DMA controller counts; a bus master has nothing to report (0). */
  ReadDmaCounter(DmaAdapter: DMA_ADAPTER): number {
    this.enter(DmaAdapter, MEMBERS.ReadDmaCounter);
    return 0;
  }

  GetScatterGatherList(
    DmaAdapter: DMA_ADAPTER,
    DeviceObject: DEVICE_OBJECT,
    Mdl: MDL,
    CurrentVa: PVOID,
    Length: number,
    ExecutionRoutine: DRIVER_LIST_CONTROL,
    Context: unknown,
    WriteToDevice: boolean,
  ): NTSTATUS {
    const adapter = this.enter(DmaAdapter, MEMBERS.GetScatterGatherList);
    const mdl = this.residentMdl(Mdl);
    if (typeof ExecutionRoutine !== "function" || !isDeviceObject(DeviceObject))
      return STATUS_INVALID_PARAMETER;
    const offset = this.chainOffset(mdl, CurrentVa, Length);
    const result = this.requestList(adapter, {
      deviceObject: DeviceObject,
      mdl,
      offset,
      length: Length,
      executionRoutine: ExecutionRoutine,
      context: Context,
      writeToDevice: Boolean(WriteToDevice),
      buffer: undefined,
      synchronous: false,
      transferContext: undefined,
      v3: false,
    });
    return typeof result === "number" ? result : STATUS_SUCCESS;
  }

  PutScatterGatherList(
    DmaAdapter: DMA_ADAPTER,
    ScatterGather: SCATTER_GATHER_LIST,
    WriteToDevice: boolean,
  ): void {
    const adapter = this.enter(DmaAdapter, MEMBERS.PutScatterGatherList);
    const record = this.listRecord(ScatterGather);
    if (record === undefined || record.put) {
      if (record !== undefined) {
        throw dmaViolation(
          DmaViolation.scatterGatherDoubleFree,
          0,
          1,
          0,
          "PutScatterGatherList: this list was already put back",
        );
      }
      throw halViolation(
        HalRule.foreignHandle,
        0,
        adapter.id,
        "PutScatterGatherList: not a list this HAL built",
      );
    }
    if (record.adapter !== adapter) {
      throw halViolation(
        HalRule.foreignHandle,
        record.adapter.id,
        adapter.id,
        `PutScatterGatherList: the list belongs to adapter ${record.adapter.id}`,
      );
    }
    const write = Boolean(WriteToDevice);
    const { args, segments } = record;
    if (args.v3 && !write) this.cacheMaintenance(args.mdl, args.offset, args.length, "invalidate");
    const file = record.grant?.file;
    if (segments === undefined) {
      this.flushListPart(adapter, file, args.mdl, args.mdl.virtualAddress + args.offset, args.length, write);
    } else {
      for (const segment of segments)
        this.flushListPart(adapter, file, segment.mdl, segment.currentVa, segment.length, write);
    }
    this.forgetList(record);
    if (record.target !== undefined) {
      this.mm.freeMdl(record.target.mdl);
      this.kernel.unmapPages(record.target.va);
    }
    if (record.poolVa !== undefined) this.releaseListMemory(adapter, record.poolVa, record.poolSize);
    this.listsPutBack.value++;
    this.announceList(adapter, "put", ScatterGather, record.grant);
    if (record.grant !== undefined) this.arbiter.freeGrant(record.grant);
  }

  // ------------------------------------------------------------------ version 2

  CalculateScatterGatherList(
    DmaAdapter: DMA_ADAPTER,
    Mdl: MDL | undefined,
    CurrentVa: PVOID,
    Length: number,
  ): {
    readonly Status: NTSTATUS;
    readonly ScatterGatherListSize: number;
    readonly NumberOfMapRegisters: number;
  } {
    const adapter = this.enter(DmaAdapter, MEMBERS.CalculateScatterGatherList);
    let registers: number;
    if (!isUlong(Length))
      return { Status: STATUS_BUFFER_TOO_SMALL, ScatterGatherListSize: 0, NumberOfMapRegisters: 0 };
    if (Mdl === undefined) {
      // No MDL: the worst case for a buffer at CurrentVa (which need not be dereferenceable).
      if (!Number.isSafeInteger(CurrentVa) || CurrentVa < 0)
        return { Status: STATUS_INVALID_PARAMETER, ScatterGatherListSize: 0, NumberOfMapRegisters: 0 };
      registers = spanPages(CurrentVa, Length);
    } else {
      const mdl = this.residentMdl(Mdl);
      const offset = CurrentVa - mdl.virtualAddress;
      if (!Number.isSafeInteger(offset) || offset < 0 || offset >= mdl.byteCount) {
        throw dmaViolation(
          DmaViolation.addressNotInMdl,
          number(CurrentVa),
          mdl.id,
          0,
          `CurrentVa ${formatAddress(CurrentVa)} is not inside MDL ${mdl.id}`,
        );
      }
      if (offset + Length > chainLength(mdl))
        return { Status: STATUS_BUFFER_TOO_SMALL, ScatterGatherListSize: 0, NumberOfMapRegisters: 0 };
      registers = chainMapRegisters(chainSegments(mdl, offset, Length));
    }
    return {
      Status:
        registers > adapter.capabilities.numberOfMapRegisters
          ? STATUS_INSUFFICIENT_RESOURCES
          : STATUS_SUCCESS,
      ScatterGatherListSize: scatterGatherListSize(registers, registers),
      NumberOfMapRegisters: registers,
    };
  }

  BuildScatterGatherList(
    DmaAdapter: DMA_ADAPTER,
    DeviceObject: DEVICE_OBJECT,
    Mdl: MDL,
    CurrentVa: PVOID,
    Length: number,
    ExecutionRoutine: DRIVER_LIST_CONTROL,
    Context: unknown,
    WriteToDevice: boolean,
    ScatterGatherBuffer: PVOID,
    ScatterGatherLength: number,
  ): NTSTATUS {
    const adapter = this.enter(DmaAdapter, MEMBERS.BuildScatterGatherList);
    const mdl = this.residentMdl(Mdl);
    if (
      typeof ExecutionRoutine !== "function" ||
      !isDeviceObject(DeviceObject) ||
      !isUlong(ScatterGatherLength)
    ) {
      return STATUS_INVALID_PARAMETER;
    }
    const offset = this.chainOffset(mdl, CurrentVa, Length);
    const result = this.requestList(adapter, {
      deviceObject: DeviceObject,
      mdl,
      offset,
      length: Length,
      executionRoutine: ExecutionRoutine,
      context: Context,
      writeToDevice: Boolean(WriteToDevice),
      buffer: { va: ScatterGatherBuffer, length: ScatterGatherLength },
      synchronous: false,
      transferContext: undefined,
      v3: false,
    });
    return typeof result === "number" ? result : STATUS_SUCCESS;
  }

  /**
   * BuildMdlFromScatterGatherList: an MDL for the memory the list really points at. That is the
   * original MDL unless pieces bounced (the HAL's copy lives in bounce pages then); a list whose
   * elements cannot be one virtually contiguous buffer (pieces of a chain that do not end on page
   * boundaries) gets STATUS_INSUFFICIENT_RESOURCES.
   */
  BuildMdlFromScatterGatherList(
    DmaAdapter: DMA_ADAPTER,
    ScatterGather: SCATTER_GATHER_LIST,
    OriginalMdl: MDL | undefined,
  ): { readonly Status: NTSTATUS; readonly TargetMdl: MDL | undefined } {
    const adapter = this.enter(DmaAdapter, MEMBERS.BuildMdlFromScatterGatherList);
    const record = this.listRecord(ScatterGather);
    if (
      OriginalMdl === undefined ||
      record === undefined ||
      record.put ||
      record.adapter !== adapter ||
      OriginalMdl !== record.args.mdl
    ) {
      return { Status: STATUS_INVALID_PARAMETER, TargetMdl: undefined };
    }
    if (record.mdlBuilt) return { Status: STATUS_NONE_MAPPED, TargetMdl: undefined };
    if (adapter.strategy.remapping || sameElements(ScatterGather.Elements, this.physicalElements(record))) {
      record.mdlBuilt = true;
      return { Status: STATUS_SUCCESS, TargetMdl: OriginalMdl };
    }
    const target = this.mdlOverElements(ScatterGather.Elements);
    if (target === undefined) return { Status: STATUS_INSUFFICIENT_RESOURCES, TargetMdl: undefined };
    record.mdlBuilt = true;
    record.target = target;
    return { Status: STATUS_SUCCESS, TargetMdl: target.mdl };
  }

  // ------------------------------------------------------------------ version 3

  GetDmaAdapterInfo(DmaAdapter: DMA_ADAPTER, AdapterInfo: DMA_ADAPTER_INFO): NTSTATUS {
    const adapter = this.enter(DmaAdapter, MEMBERS.GetDmaAdapterInfo);
    if (typeof AdapterInfo !== "object" || AdapterInfo === null) return STATUS_INVALID_PARAMETER;
    if (AdapterInfo.Version !== DMA_ADAPTER_INFO_VERSION1) return STATUS_NOT_SUPPORTED;
    const { scatterGather, numberOfMapRegisters, addressBits } = adapter.capabilities;
    AdapterInfo.V1 = {
      ReadDmaCounterAvailable: false,
      ScatterGatherLimit: scatterGather ? numberOfMapRegisters : 1,
      DmaAddressWidth: addressBits,
      Flags: 0,
      MinimumTransferUnit: 1,
    };
    return STATUS_SUCCESS;
  }

  GetDmaTransferInfo(
    DmaAdapter: DMA_ADAPTER,
    Mdl: MDL,
    Offset: number,
    Length: number,
    _WriteOnly: boolean,
    TransferInfo: DMA_TRANSFER_INFO,
  ): NTSTATUS {
    const adapter = this.enter(DmaAdapter, MEMBERS.GetDmaTransferInfo);
    if (typeof TransferInfo !== "object" || TransferInfo === null) return STATUS_INVALID_PARAMETER;
    const version = TransferInfo.Version;
    if (version !== DMA_TRANSFER_INFO_VERSION1 && version !== DMA_TRANSFER_INFO_VERSION2)
      return STATUS_NOT_SUPPORTED;
    const mdl = this.residentMdl(Mdl);
    if (!this.validChainRange(mdl, Offset, Length)) return STATUS_INVALID_PARAMETER;
    const segments = chainSegments(mdl, Offset, Length);
    const registers = chainMapRegisters(segments);
    const elements = adapter.capabilities.scatterGather ? registers : segments.length;
    const size = scatterGatherListSize(registers, registers);
    if (version === DMA_TRANSFER_INFO_VERSION1) {
      TransferInfo.V1 = {
        MapRegisterCount: registers,
        ScatterGatherElementCount: elements,
        ScatterGatherListSize: size,
      };
    } else {
      TransferInfo.V2 = {
        MapRegisterCount: registers,
        ScatterGatherElementCount: elements,
        ScatterGatherListSize: size,
        LogicalPageCount: registers,
      };
    }
    return STATUS_SUCCESS;
  }

  InitializeDmaTransferContext(DmaAdapter: DMA_ADAPTER, DmaTransferContext: DMA_TRANSFER_CONTEXT): NTSTATUS {
    this.enter(DmaAdapter, MEMBERS.InitializeDmaTransferContext);
    if (!(DmaTransferContext instanceof DMA_TRANSFER_CONTEXT)) return STATUS_INVALID_PARAMETER;
    if (transferContextState(DmaTransferContext)?.phase === "pending") return STATUS_INVALID_PARAMETER;
    DmaTransferContext.Reserved = new TransferContextState();
    return STATUS_SUCCESS;
  }

  AllocateCommonBufferEx(
    DmaAdapter: DMA_ADAPTER,
    MaximumAddress: PHYSICAL_ADDRESS | undefined,
    Length: number,
    CacheEnabled: boolean,
    PreferredNode: NODE_REQUIREMENT,
  ): CommonBufferResult {
    const adapter = this.enter(DmaAdapter, MEMBERS.AllocateCommonBufferEx);
    if (!isUlong(Length) || Length === 0 || !isNode(PreferredNode)) return NULL_COMMON_BUFFER;
    if (MaximumAddress !== undefined && !isAddress(MaximumAddress)) return NULL_COMMON_BUFFER;
    return this.allocateCommon(adapter, {
      length: Length,
      minimumLogical: 0,
      maximumLogical: Math.min(MaximumAddress ?? Number.MAX_SAFE_INTEGER, adapter.capabilities.addressLimit),
      cacheEnabled: Boolean(CacheEnabled),
      largePage: false,
    });
  }

  AllocateAdapterChannelEx(
    DmaAdapter: DMA_ADAPTER,
    DeviceObject: DEVICE_OBJECT,
    DmaTransferContext: DMA_TRANSFER_CONTEXT,
    NumberOfMapRegisters: number,
    Flags: number,
    ExecutionRoutine: DRIVER_CONTROL | undefined,
    ExecutionContext: unknown,
    WantMapRegisterBase: boolean,
  ): { readonly Status: NTSTATUS; readonly MapRegisterBase: MAP_REGISTER_BASE | undefined } {
    const adapter = this.enter(DmaAdapter, MEMBERS.AllocateAdapterChannelEx);
    const failed = (Status: NTSTATUS): { Status: NTSTATUS; MapRegisterBase: undefined } => ({
      Status,
      MapRegisterBase: undefined,
    });
    const context = this.idleTransferContext(DmaTransferContext);
    const synchronous = this.synchronousFlag(Flags);
    if (
      context === undefined ||
      synchronous === undefined ||
      !isDeviceObject(DeviceObject) ||
      !isUlong(NumberOfMapRegisters)
    ) {
      return failed(STATUS_INVALID_PARAMETER);
    }
    if (ExecutionRoutine !== undefined && typeof ExecutionRoutine !== "function")
      return failed(STATUS_INVALID_PARAMETER);
    // The base comes back only from a synchronous request; a request must either run a routine or return it.
    if (
      (Boolean(WantMapRegisterBase) && !synchronous) ||
      (ExecutionRoutine === undefined && !WantMapRegisterBase)
    ) {
      return failed(STATUS_INVALID_PARAMETER);
    }
    if (NumberOfMapRegisters > adapter.capabilities.numberOfMapRegisters)
      return failed(this.refuse(adapter, NumberOfMapRegisters));
    if (this.takePreCancel(context)) return failed(STATUS_CANCELLED);
    const irp = DeviceObject.CurrentIrp;
    let base: MAP_REGISTER_BASE | undefined;
    const request = new WaitBlock(adapter, "channel", NumberOfMapRegisters, (grant) => {
      context.phase = "granted";
      context.request = undefined;
      base = grant?.handle;
      return ExecutionRoutine === undefined
        ? KeepObject
        : ExecutionRoutine(DeviceObject, irp, grant?.handle, ExecutionContext);
    });
    request.cleanup = (): void => resetContext(context);
    const result = this.arbiter.submit(request, synchronous);
    if (result === "refused") return failed(STATUS_INSUFFICIENT_RESOURCES);
    if (result === "queued") this.pend(context, request, DeviceObject);
    return { Status: STATUS_SUCCESS, MapRegisterBase: WantMapRegisterBase ? base : undefined };
  }

  /** ConfigureAdapterChannel: controller functions exist only for system DMA; none is known here. */
  ConfigureAdapterChannel(DmaAdapter: DMA_ADAPTER, _FunctionNumber: number, _Context: unknown): NTSTATUS {
    this.enter(DmaAdapter, MEMBERS.ConfigureAdapterChannel);
    return STATUS_NOT_IMPLEMENTED;
  }

  CancelAdapterChannel(
    DmaAdapter: DMA_ADAPTER,
    DeviceObject: DEVICE_OBJECT,
    DmaTransferContext: DMA_TRANSFER_CONTEXT,
  ): boolean {
    const adapter = this.enter(DmaAdapter, MEMBERS.CancelAdapterChannel);
    const context = transferContextState(DmaTransferContext);
    if (context === undefined) return false;
    if (context.phase === "initialized") {
      context.preCancelled = true;
      return true;
    }
    const request = context.request;
    if (
      context.phase !== "pending" ||
      request === undefined ||
      request.adapter !== adapter ||
      context.deviceObject !== DeviceObject
    ) {
      return false;
    }
    if (!this.arbiter.cancel(request)) return false;
    request.cleanup?.(request);
    this.counters.add("hal.channel.cancelled");
    return true;
  }

  MapTransferEx(
    DmaAdapter: DMA_ADAPTER,
    Mdl: MDL,
    MapRegisterBase: MAP_REGISTER_BASE | undefined,
    Offset: number,
    DeviceOffset: number,
    Length: number,
    WriteToDevice: boolean,
    ScatterGatherBuffer: PVOID,
    ScatterGatherBufferLength: number,
    DmaCompletionRoutine: DMA_COMPLETION_ROUTINE | undefined,
    _CompletionContext: unknown,
  ): {
    readonly Status: NTSTATUS;
    readonly Length: number;
    readonly ScatterGatherList: SCATTER_GATHER_LIST | undefined;
  } {
    const adapter = this.enter(DmaAdapter, MEMBERS.MapTransferEx);
    const failed = (
      Status: NTSTATUS,
    ): { Status: NTSTATUS; Length: number; ScatterGatherList: undefined } => ({
      Status,
      Length: 0,
      ScatterGatherList: undefined,
    });
    // DeviceOffset and a completion routine belong to system DMA: a bus master passes 0 and NULL.
    if (DeviceOffset !== 0 || DmaCompletionRoutine !== undefined) return failed(STATUS_INVALID_PARAMETER);
    const mdl = this.residentMdl(Mdl);
    if (!this.validChainRange(mdl, Offset, Length) || !isUlong(ScatterGatherBufferLength))
      return failed(STATUS_INVALID_PARAMETER);
    const capacity = Math.floor(
      (ScatterGatherBufferLength - SCATTER_GATHER_LIST_HEADER_SIZE) / SCATTER_GATHER_ELEMENT_SIZE,
    );
    if (capacity < 1 || !this.kernel.isMapped(ScatterGatherBuffer, ScatterGatherBufferLength))
      return failed(STATUS_INVALID_PARAMETER);
    const grant = this.grantOf(adapter, MapRegisterBase, "MapTransferEx");
    if (grant === undefined && adapter.strategy.needsMapRegisters(adapter))
      return failed(STATUS_INSUFFICIENT_RESOURCES);
    const write = Boolean(WriteToDevice);
    if (write) this.cacheMaintenance(mdl, Offset, Length, "flush");
    const elements: SCATTER_GATHER_ELEMENT[] = [];
    let mapped = 0;
    mapping: for (const segment of chainSegments(mdl, Offset, Length)) {
      let done = 0;
      while (done < segment.length) {
        const va = segment.currentVa + done;
        const piece = this.tryMapPiece(adapter, grant, segment.mdl, va, segment.length - done, write);
        if (piece === undefined) break mapping;
        const before = elements.length;
        const last = elements[before - 1];
        appendElement(elements, piece);
        if (elements.length > capacity) {
          // The list is full: take the piece back and report what fits (still STATUS_SUCCESS).
          elements.length = before;
          if (last !== undefined) elements[before - 1] = last;
          this.lower(
            () =>
              adapter.strategy.flushAdapterBuffers(adapter, grant?.file, segment.mdl, va, piece.length, true),
            "MapTransferEx",
          );
          break mapping;
        }
        done += piece.length;
        mapped += piece.length;
      }
    }
    if (mapped === 0) return failed(STATUS_INSUFFICIENT_RESOURCES);
    const list = scatterGatherList(elements, 0);
    writeScatterGatherList(this.kernel, ScatterGatherBuffer, list);
    return { Status: STATUS_SUCCESS, Length: mapped, ScatterGatherList: list };
  }

  GetScatterGatherListEx(
    DmaAdapter: DMA_ADAPTER,
    DeviceObject: DEVICE_OBJECT,
    DmaTransferContext: DMA_TRANSFER_CONTEXT,
    Mdl: MDL,
    Offset: number,
    Length: number,
    Flags: number,
    ExecutionRoutine: DRIVER_LIST_CONTROL | undefined,
    Context: unknown,
    WriteToDevice: boolean,
    DmaCompletionRoutine: DMA_COMPLETION_ROUTINE | undefined,
    _CompletionContext: unknown,
    WantScatterGatherList: boolean,
  ): { readonly Status: NTSTATUS; readonly ScatterGatherList: SCATTER_GATHER_LIST | undefined } {
    const adapter = this.enter(DmaAdapter, MEMBERS.GetScatterGatherListEx);
    const result = this.requestListEx(adapter, {
      DeviceObject,
      DmaTransferContext,
      Mdl,
      Offset,
      Length,
      Flags,
      ExecutionRoutine,
      Context,
      WriteToDevice,
      DmaCompletionRoutine,
      WantScatterGatherList,
      buffer: undefined,
    });
    return { Status: result.status, ScatterGatherList: WantScatterGatherList ? result.list : undefined };
  }

  BuildScatterGatherListEx(
    DmaAdapter: DMA_ADAPTER,
    DeviceObject: DEVICE_OBJECT,
    DmaTransferContext: DMA_TRANSFER_CONTEXT,
    Mdl: MDL,
    Offset: number,
    Length: number,
    Flags: number,
    ExecutionRoutine: DRIVER_LIST_CONTROL | undefined,
    Context: unknown,
    WriteToDevice: boolean,
    ScatterGatherBuffer: PVOID,
    ScatterGatherLength: number,
    DmaCompletionRoutine: DMA_COMPLETION_ROUTINE | undefined,
    _CompletionContext: unknown,
  ): { readonly Status: NTSTATUS; readonly ScatterGatherList: SCATTER_GATHER_LIST | undefined } {
    const adapter = this.enter(DmaAdapter, MEMBERS.BuildScatterGatherListEx);
    if (!isUlong(ScatterGatherLength))
      return { Status: STATUS_INVALID_PARAMETER, ScatterGatherList: undefined };
    const result = this.requestListEx(adapter, {
      DeviceObject,
      DmaTransferContext,
      Mdl,
      Offset,
      Length,
      Flags,
      ExecutionRoutine,
      Context,
      WriteToDevice,
      DmaCompletionRoutine,
      WantScatterGatherList: false,
      buffer: { va: ScatterGatherBuffer, length: ScatterGatherLength },
    });
    return { Status: result.status, ScatterGatherList: result.list };
  }

  FlushAdapterBuffersEx(
    DmaAdapter: DMA_ADAPTER,
    Mdl: MDL,
    MapRegisterBase: MAP_REGISTER_BASE | undefined,
    Offset: number,
    Length: number,
    WriteToDevice: boolean,
  ): NTSTATUS {
    const adapter = this.enter(DmaAdapter, MEMBERS.FlushAdapterBuffersEx);
    const mdl = this.residentMdl(Mdl);
    if (!this.validChainRange(mdl, Offset, Length)) return STATUS_INVALID_PARAMETER;
    const grant = this.grantOf(adapter, MapRegisterBase, "FlushAdapterBuffersEx");
    const write = Boolean(WriteToDevice);
    if (!write) this.cacheMaintenance(mdl, Offset, Length, "invalidate");
    for (const segment of chainSegments(mdl, Offset, Length)) {
      this.lower(
        () =>
          adapter.strategy.flushAdapterBuffers(
            adapter,
            grant?.file,
            segment.mdl,
            segment.currentVa,
            segment.length,
            write,
          ),
        "FlushAdapterBuffersEx",
      );
    }
    return STATUS_SUCCESS;
  }

  FreeAdapterObject(DmaAdapter: DMA_ADAPTER, AllocationAction: IO_ALLOCATION_ACTION): void {
    const adapter = this.enter(DmaAdapter, MEMBERS.FreeAdapterObject);
    if (
      AllocationAction !== KeepObject &&
      AllocationAction !== DeallocateObject &&
      AllocationAction !== DeallocateObjectKeepRegisters
    ) {
      throw halViolation(
        HalRule.badAllocationAction,
        number(AllocationAction),
        adapter.id,
        `FreeAdapterObject(${String(AllocationAction)}) is not an IO_ALLOCATION_ACTION`,
      );
    }
    this.checkChannelOwned(adapter, "FreeAdapterObject");
    if (AllocationAction === KeepObject) return;
    this.arbiter.releaseChannel(adapter, AllocationAction === DeallocateObjectKeepRegisters);
  }

  /** CancelMappedTransfer: only a system DMA transfer can be cancelled; a bus master has none. */
  CancelMappedTransfer(DmaAdapter: DMA_ADAPTER, _DmaTransferContext: DMA_TRANSFER_CONTEXT): NTSTATUS {
    this.enter(DmaAdapter, MEMBERS.CancelMappedTransfer);
    return STATUS_NOT_SUPPORTED;
  }

  AllocateDomainCommonBuffer(
    DmaAdapter: DMA_ADAPTER,
    DomainHandle: DMA_DOMAIN,
    MaximumAddress: PHYSICAL_ADDRESS | undefined,
    Length: number,
    Flags: number,
    CacheType: MEMORY_CACHING_TYPE | undefined,
    PreferredNode: NODE_REQUIREMENT,
  ): {
    readonly Status: NTSTATUS;
    readonly LogicalAddress: PHYSICAL_ADDRESS;
    readonly VirtualAddress: PVOID;
  } {
    const adapter = this.enter(DmaAdapter, MEMBERS.AllocateDomainCommonBuffer);
    const failed = (Status: NTSTATUS): { Status: NTSTATUS; LogicalAddress: 0; VirtualAddress: 0 } => ({
      Status,
      LogicalAddress: 0,
      VirtualAddress: 0,
    });
    if (!adapter.strategy.remapping) return failed(STATUS_NOT_SUPPORTED);
    const cacheEnabled = cachingOf(CacheType, false);
    if (
      !isUlong(Length) ||
      Length === 0 ||
      (Flags & ~DOMAIN_COMMON_BUFFER_LARGE_PAGE) !== 0 ||
      cacheEnabled === undefined ||
      !isNode(PreferredNode) ||
      (MaximumAddress !== undefined && !isAddress(MaximumAddress))
    ) {
      return failed(STATUS_INVALID_PARAMETER);
    }
    const request: CommonBufferRequest = {
      length: Length,
      minimumLogical: 0,
      maximumLogical: Math.min(MaximumAddress ?? Number.MAX_SAFE_INTEGER, adapter.capabilities.addressLimit),
      cacheEnabled,
      largePage: (Flags & DOMAIN_COMMON_BUFFER_LARGE_PAGE) !== 0,
    };
    const buffer = this.lowerStatus(() =>
      this.remap.allocateDomainCommonBuffer(adapter, DomainHandle, request),
    );
    if (typeof buffer === "number") return failed(buffer);
    if (buffer === undefined) return failed(STATUS_INSUFFICIENT_RESOURCES);
    this.recordCommonBuffer(buffer, Length, cacheEnabled, false);
    return {
      Status: STATUS_SUCCESS,
      LogicalAddress: buffer.logicalAddress,
      VirtualAddress: buffer.virtualAddress,
    };
  }

  /** FlushDmaBuffer: KeFlushIoBuffers for one adapter; ReadOperation (device writes) invalidates. */
  FlushDmaBuffer(DmaAdapter: DMA_ADAPTER, Mdl: MDL, ReadOperation: boolean): NTSTATUS {
    this.enter(DmaAdapter, MEMBERS.FlushDmaBuffer);
    if (!isLiveMdl(Mdl) || !Mdl.resident) return STATUS_INVALID_PARAMETER;
    this.cacheMaintenance(Mdl, 0, Mdl.byteCount, ReadOperation ? "invalidate" : "flush");
    return STATUS_SUCCESS;
  }

  JoinDmaDomain(DmaAdapter: DMA_ADAPTER, DomainHandle: DMA_DOMAIN): NTSTATUS {
    const adapter = this.enter(DmaAdapter, MEMBERS.JoinDmaDomain);
    if (!adapter.strategy.remapping) return STATUS_NOT_SUPPORTED;
    return this.lowerStatus(() => this.remap.joinDomain(adapter, DomainHandle));
  }

  LeaveDmaDomain(DmaAdapter: DMA_ADAPTER): NTSTATUS {
    const adapter = this.enter(DmaAdapter, MEMBERS.LeaveDmaDomain);
    if (!adapter.strategy.remapping) return STATUS_NOT_SUPPORTED;
    return this.lowerStatus(() => this.remap.leaveDomain(adapter));
  }

  GetDmaDomain(DmaAdapter: DMA_ADAPTER): DMA_DOMAIN | undefined {
    const adapter = this.enter(DmaAdapter, MEMBERS.GetDmaDomain);
    if (!adapter.strategy.remapping) return undefined;
    return this.lower(() => this.remap.getDomain(adapter), "GetDmaDomain");
  }

  AllocateCommonBufferWithBounds(
    DmaAdapter: DMA_ADAPTER,
    MinimumAddress: PHYSICAL_ADDRESS | undefined,
    MaximumAddress: PHYSICAL_ADDRESS | undefined,
    Length: number,
    Flags: number,
    CacheType: MEMORY_CACHING_TYPE | undefined,
    PreferredNode: NODE_REQUIREMENT,
  ): CommonBufferResult {
    const adapter = this.enter(DmaAdapter, MEMBERS.AllocateCommonBufferWithBounds);
    const cacheEnabled = cachingOf(CacheType, true);
    if (
      !isUlong(Length) ||
      Length === 0 ||
      (Flags & ~DOMAIN_COMMON_BUFFER_LARGE_PAGE) !== 0 ||
      cacheEnabled === undefined ||
      !isNode(PreferredNode) ||
      (MinimumAddress !== undefined && !isAddress(MinimumAddress)) ||
      (MaximumAddress !== undefined && !isAddress(MaximumAddress))
    ) {
      return NULL_COMMON_BUFFER;
    }
    const minimumLogical = MinimumAddress ?? 0;
    const maximumLogical = Math.min(
      MaximumAddress ?? Number.MAX_SAFE_INTEGER,
      adapter.capabilities.addressLimit,
    );
    if (minimumLogical > maximumLogical) return NULL_COMMON_BUFFER;
    return this.allocateCommon(adapter, {
      length: Length,
      minimumLogical,
      maximumLogical,
      cacheEnabled,
      largePage: (Flags & DOMAIN_COMMON_BUFFER_LARGE_PAGE) !== 0,
    });
  }

  AllocateCommonBufferVector(
    DmaAdapter: DMA_ADAPTER,
    LowAddress: PHYSICAL_ADDRESS,
    HighAddress: PHYSICAL_ADDRESS,
    CacheType: MEMORY_CACHING_TYPE,
    IdealNode: number,
    Flags: number,
    NumberOfElements: number,
    SizeOfElements: number,
  ): { readonly Status: NTSTATUS; readonly VectorOut: DMA_COMMON_BUFFER_VECTOR | undefined } {
    const adapter = this.enter(DmaAdapter, MEMBERS.AllocateCommonBufferVector, false);
    this.checkVectorIrql("passive", "AllocateCommonBufferVector");
    const cacheEnabled = cachingOf(CacheType, true);
    if (
      !isAddress(LowAddress) ||
      !isAddress(HighAddress) ||
      LowAddress > HighAddress ||
      cacheEnabled === undefined ||
      !isNode(IdealNode) ||
      Flags !== 0 ||
      !isUlong(NumberOfElements) ||
      NumberOfElements === 0 ||
      !isUlong(SizeOfElements) ||
      SizeOfElements === 0
    ) {
      return { Status: STATUS_INVALID_PARAMETER, VectorOut: undefined };
    }
    const { stride, perChunk } = vectorLayout(SizeOfElements);
    const buffers: CommonBuffer[] = [];
    const request = {
      minimumLogical: LowAddress,
      maximumLogical: Math.min(HighAddress, adapter.capabilities.addressLimit),
      cacheEnabled,
      largePage: false,
    };
    for (let first = 0; first < NumberOfElements; first += perChunk) {
      const length = perChunk === 1 ? SizeOfElements : Math.min(perChunk, NumberOfElements - first) * stride;
      const buffer = this.lowerStatus(() =>
        adapter.strategy.allocateCommonBuffer(adapter, { ...request, length }),
      );
      if (typeof buffer === "number" || buffer === undefined) {
        for (const done of buffers)
          this.lower(() => adapter.strategy.freeCommonBuffer(done), "AllocateCommonBufferVector");
        return { Status: STATUS_INSUFFICIENT_RESOURCES, VectorOut: undefined };
      }
      buffers.push(buffer);
    }
    const vector = new CommonBufferVector(adapter, SizeOfElements, NumberOfElements, buffers);
    this.vectors.add(vector);
    this.counters.add("hal.common-buffer-vector.allocate");
    return { Status: STATUS_SUCCESS, VectorOut: vector };
  }

  GetCommonBufferFromVectorByIndex(
    DmaAdapter: DMA_ADAPTER,
    VectorIn: DMA_COMMON_BUFFER_VECTOR,
    Index: number,
  ): { readonly VirtualAddressOut: PVOID; readonly LogicalAddressOut: PHYSICAL_ADDRESS } {
    const adapter = this.enter(DmaAdapter, MEMBERS.GetCommonBufferFromVectorByIndex, false);
    this.checkVectorIrql("at-most-dispatch", "GetCommonBufferFromVectorByIndex");
    const vector = this.vectorElement(adapter, VectorIn, Index);
    const { virtualAddress, logicalAddress } = vector.addresses(Index);
    return { VirtualAddressOut: virtualAddress, LogicalAddressOut: logicalAddress };
  }

  FreeCommonBufferFromVector(
    DmaAdapter: DMA_ADAPTER,
    VectorIn: DMA_COMMON_BUFFER_VECTOR,
    Index: number,
  ): void {
    const adapter = this.enter(DmaAdapter, MEMBERS.FreeCommonBufferFromVector, false);
    this.checkVectorIrql("passive", "FreeCommonBufferFromVector");
    const vector = this.vectorElement(adapter, VectorIn, Index);
    const chunk = vector.free(Index);
    if (chunk !== undefined)
      this.lower(() => adapter.strategy.freeCommonBuffer(chunk), "FreeCommonBufferFromVector");
  }

  FreeCommonBufferVector(DmaAdapter: DMA_ADAPTER, VectorIn: DMA_COMMON_BUFFER_VECTOR): void {
    const adapter = this.enter(DmaAdapter, MEMBERS.FreeCommonBufferVector, false);
    this.checkVectorIrql("passive", "FreeCommonBufferVector");
    const vector = this.vectorOf(adapter, VectorIn);
    const live = vector.firstLive();
    if (live >= 0) {
      const { virtualAddress, logicalAddress } = vector.addresses(live);
      throw vectorError(
        VectorError.notEmpty,
        live,
        virtualAddress,
        logicalAddress,
        `FreeCommonBufferVector: element ${live} of ${vector.count} is still allocated`,
      );
    }
    vector.released = true;
    this.vectors.delete(vector);
  }

  CreateCommonBufferFromMdl(
    DmaAdapter: DMA_ADAPTER,
    Mdl: MDL,
    ExtendedConfigs: readonly DMA_COMMON_BUFFER_EXTENDED_CONFIGURATION[],
  ): { readonly Status: NTSTATUS; readonly LogicalAddress: PHYSICAL_ADDRESS } {
    const adapter = this.enter(DmaAdapter, MEMBERS.CreateCommonBufferFromMdl);
    const failed = (Status: NTSTATUS): { Status: NTSTATUS; LogicalAddress: 0 } => ({
      Status,
      LogicalAddress: 0,
    });
    if (!isLiveMdl(Mdl) || !Mdl.resident || Mdl.systemVa === undefined)
      return failed(STATUS_INVALID_PARAMETER);
    const request = this.mdlCommonBufferRequest(adapter, Mdl, ExtendedConfigs);
    if (typeof request === "number") return failed(request);
    if (!adapter.strategy.remapping && request.access !== "readwrite") return failed(STATUS_NOT_SUPPORTED);
    if (this.commonBuffers.has(Mdl.systemVa + request.offset)) return failed(STATUS_INVALID_PARAMETER);
    const buffer = this.lowerStatus(() => adapter.strategy.createCommonBufferFromMdl(adapter, Mdl, request));
    if (typeof buffer === "number") return failed(buffer);
    if (buffer === undefined) return failed(STATUS_INSUFFICIENT_RESOURCES);
    this.recordCommonBuffer(buffer, request.length, true, true);
    return { Status: STATUS_SUCCESS, LogicalAddress: buffer.logicalAddress };
  }

  // ------------------------------------------------------------------ validation

  /**
   * Steps 1 and 2 of every member: the adapter, its table version, the caller's IRQL. Callers
   * pass `MEMBERS.Name`, a property load each call site resolves once.
   */
  private enter(value: DMA_ADAPTER, member: DmaOperationMember, irql = true): AdapterObject {
    const name = member.name;
    if (value === undefined || value === null) {
      throw dmaViolation(DmaViolation.nullAdapter, 0, 0, 0, `${name}: the DMA_ADAPTER is NULL`);
    }
    if (!AdapterObject.is(value) || !this.adapters.has(value)) {
      if (AdapterObject.is(value) && this.releasedAdapters.has(value)) {
        throw dmaViolation(
          DmaViolation.releasedAdapter,
          value.id,
          0,
          0,
          `${name} on adapter ${value.id}, which PutDmaAdapter released`,
        );
      }
      throw halViolation(
        HalRule.notAnAdapter,
        0,
        0,
        `${name}: the DMA_ADAPTER was not returned by this machine's IoGetDmaAdapter`,
      );
    }
    if (member.version > value.capabilities.tableVersion) {
      throw halViolation(
        HalRule.memberBeyondTable,
        member.version,
        value.capabilities.tableVersion,
        `${name} is a version ${member.version} member; adapter ${value.id} has a version ${value.capabilities.tableVersion} table (DMA_OPERATIONS.Size ${value.DmaOperations.Size}): ask for DEVICE_DESCRIPTION_VERSION${member.version}`,
      );
    }
    if (irql) checkIrql(this.scheduler.irql, member.irql, name);
    return value;
  }

  /** DMA_COMMON_BUFFER_VECTOR_ERROR 0x1: the vector routines report a wrong IRQL under their own code. */
  private checkVectorIrql(requirement: "passive" | "at-most-dispatch", name: string): void {
    const current = this.scheduler.irql;
    const allowed = requirement === "passive" ? current === 0 : current <= 2;
    if (!allowed) {
      throw vectorError(
        VectorError.wrongIrql,
        current,
        requirement === "passive" ? 0 : 2,
        0,
        `${name} at IRQL ${current}`,
      );
    }
  }

  /** An MDL whose PFNs are valid: bad or freed -> 0xE6/0x00 rule 0x108, not locked -> 0xE6/0x0E. */
  private residentMdl(value: MDL): Mdl {
    if (!(value instanceof Mdl) || value.freed) {
      throw halViolation(
        HalRule.badMdl,
        0,
        0,
        value instanceof Mdl ? `MDL ${value.id} was freed` : "not an MDL",
      );
    }
    for (let mdl: Mdl | undefined = value; mdl !== undefined; mdl = mdl.next) {
      if (!mdl.resident) {
        throw dmaViolation(
          DmaViolation.unlockedBuffer,
          mdl.id,
          0,
          0,
          `MDL ${mdl.id} is neither locked (MmProbeAndLockPages) nor built for nonpaged pool`,
        );
      }
    }
    return value;
  }

  /**
   * [CurrentVa, CurrentVa + Length) inside one MDL (MapTransfer, FlushAdapterBuffers): outside
   * -> 0xE6/0x1B, beyond its end -> 0xE6/0x24, zero-length map -> 0xE6/0x21.
   */
  private checkMdlRange(mdl: Mdl, currentVa: number, length: number, allowEmpty: boolean): void {
    const offset = currentVa - mdl.virtualAddress;
    if (!Number.isSafeInteger(offset) || offset < 0 || offset >= mdl.byteCount) {
      throw dmaViolation(
        DmaViolation.addressNotInMdl,
        number(currentVa),
        mdl.id,
        0,
        `CurrentVa ${formatAddress(currentVa)} is not inside MDL ${mdl.id} (${formatAddress(mdl.virtualAddress)}+${mdl.byteCount})`,
      );
    }
    if (!isUlong(length)) {
      throw halViolation(HalRule.badArgument, 0, 0, `Length ${String(length)} is not a ULONG`);
    }
    if (length === 0 && !allowEmpty)
      throw dmaViolation(DmaViolation.zeroLengthMap, mdl.id, 0, 0, "MapTransfer of zero bytes");
    if (offset + length > mdl.byteCount) {
      throw dmaViolation(
        DmaViolation.insufficientBuffer,
        offset + length - mdl.byteCount,
        mdl.id,
        0,
        `${length} bytes from ${formatAddress(currentVa)} run past the end of MDL ${mdl.id}`,
      );
    }
  }

  /** Get/BuildScatterGatherList: CurrentVa in the first MDL, Length within the chain. */
  private chainOffset(mdl: Mdl, currentVa: number, length: number): number {
    const offset = currentVa - mdl.virtualAddress;
    if (!Number.isSafeInteger(offset) || offset < 0 || offset >= mdl.byteCount) {
      throw dmaViolation(
        DmaViolation.addressNotInMdl,
        number(currentVa),
        mdl.id,
        0,
        `CurrentVa ${formatAddress(currentVa)} is not inside MDL ${mdl.id}`,
      );
    }
    if (!isUlong(length) || length === 0) {
      throw dmaViolation(
        DmaViolation.zeroLengthMap,
        mdl.id,
        0,
        0,
        `a scatter/gather list of ${String(length)} bytes`,
      );
    }
    const total = chainLength(mdl);
    if (offset + length > total) {
      throw dmaViolation(
        DmaViolation.insufficientBuffer,
        offset + length - total,
        mdl.id,
        0,
        `${length} bytes from ${formatAddress(currentVa)} run past the end of the MDL chain`,
      );
    }
    return offset;
  }

  /** V3 Offset/Length: Offset in 0..N-1, Length in 1..N-Offset of the chain. */
  private validChainRange(mdl: Mdl, offset: number, length: number): boolean {
    if (!Number.isSafeInteger(offset) || offset < 0 || !isUlong(length) || length === 0) return false;
    return offset + length <= chainLength(mdl);
  }

  /** The grant behind a MapRegisterBase: NULL is allowed (no registers); a freed or foreign one is a bug check. */
  private grantOf(
    adapter: AdapterObject,
    base: MAP_REGISTER_BASE | undefined,
    name: string,
  ): MapRegisterGrant | undefined {
    if (base === undefined) return undefined;
    const grant = this.grants.lookup(base);
    if (grant === undefined) {
      const freed = this.grants.wasFreed(base);
      throw halViolation(
        HalRule.foreignHandle,
        0,
        adapter.id,
        `${name}: MapRegisterBase ${freed ? "was already freed" : "was not handed out by this HAL"}`,
      );
    }
    if (grant.adapter !== adapter) {
      throw halViolation(
        HalRule.foreignHandle,
        grant.adapter.id,
        adapter.id,
        `${name}: the map registers belong to adapter ${grant.adapter.id}`,
      );
    }
    return grant;
  }

  private checkChannelOwned(adapter: AdapterObject, name: string): void {
    const owner = this.arbiter.channel(adapter).owner;
    if (owner === undefined || owner.state !== "done") {
      throw dmaViolation(
        DmaViolation.channelDoubleFree,
        1,
        adapter.id,
        0,
        `${name}: adapter ${adapter.id} does not hold its channel (${owner === undefined ? "nothing kept it" : "its AdapterControl routine is still running"})`,
      );
    }
  }

  /** A context that may start an allocation: initialized, not pending. */
  private idleTransferContext(value: DMA_TRANSFER_CONTEXT): TransferContextState | undefined {
    const state = transferContextState(value);
    return state === undefined || state.phase === "pending" ? undefined : state;
  }

  private synchronousFlag(flags: number): boolean | undefined {
    if (!Number.isInteger(flags) || (flags & ~DMA_SYNCHRONOUS_CALLBACK) !== 0) return undefined;
    return (flags & DMA_SYNCHRONOUS_CALLBACK) !== 0;
  }

  /** Consumes a pre-cancel: the allocation is refused with STATUS_CANCELLED. */
  private takePreCancel(context: TransferContextState): boolean {
    if (!context.preCancelled) return false;
    context.preCancelled = false;
    context.phase = "granted";
    return true;
  }

  private pend(context: TransferContextState, request: WaitBlock, deviceObject: DEVICE_OBJECT): void {
    context.phase = "pending";
    context.request = request;
    context.deviceObject = deviceObject;
  }

  private refuse(adapter: AdapterObject, registers: number): NTSTATUS {
    this.counters.add("hal.channel.refused");
    if (this.events.hasListeners("dma.channel")) {
      this.events.emit("dma.channel", {
        adapter: adapter.id,
        requesterId: adapter.requesterId ?? -1,
        action: "refuse",
        mapRegisters: registers,
        kind: "channel",
      });
    }
    return STATUS_INSUFFICIENT_RESOURCES;
  }

  // ------------------------------------------------------------------ mapping

  /** One MapTransfer piece through the strategy; out of registers -> 0xE6/0x00/2. */
  private mapPiece(
    adapter: AdapterObject,
    grant: MapRegisterGrant | undefined,
    mdl: Mdl,
    currentVa: number,
    length: number,
    write: boolean,
    name: string,
  ): MappedPiece {
    let piece: MappedPiece;
    try {
      piece = adapter.strategy.mapTransfer(adapter, grant?.file, mdl, currentVa, length, write);
    } catch (error) {
      if (!(error instanceof PlatformError)) throw error;
      if (error.code === "no-memory" && grant !== undefined) {
        throw halViolation(
          HalRule.outOfMapRegisters,
          spanPages(currentVa, length),
          grant.count,
          `${name}: ${error.message}`,
        );
      }
      throw halViolation(HalRule.mappingFailed, adapter.id, mdl.id, `${name}: ${error.message}`);
    }
    if (!(piece.length >= 1 && piece.length <= length)) {
      throw halViolation(
        HalRule.mappingFailed,
        adapter.id,
        mdl.id,
        `${name}: the mapping strategy mapped ${piece.length} of ${length} bytes`,
      );
    }
    this.mapPieces.value++;
    this.mapBytes.value += piece.length;
    return piece;
  }

  /** mapPiece for the Ex routines: undefined when the grant has no register left. */
  private tryMapPiece(
    adapter: AdapterObject,
    grant: MapRegisterGrant | undefined,
    mdl: Mdl,
    currentVa: number,
    length: number,
    write: boolean,
  ): MappedPiece | undefined {
    try {
      return this.mapPiece(adapter, grant, mdl, currentVa, length, write, "MapTransferEx");
    } catch (error) {
      if (
        error instanceof BugCheck &&
        error.parameters[0] === DmaViolation.miscellaneous &&
        error.parameters[1] === HalRule.outOfMapRegisters
      ) {
        return undefined;
      }
      throw error;
    }
  }

  /** Flush or invalidate the CPU caches over a chain range (V3 routines do it for the driver). */
  private cacheMaintenance(
    mdl: Mdl,
    offset: number,
    length: number,
    operation: "flush" | "invalidate",
  ): void {
    this.lower(
      () =>
        this.mm.physicalRuns(mdl, offset, length, (pa, bytes) => {
          if (operation === "flush") this.cpu.flush(pa, bytes);
          else this.cpu.invalidate(pa, bytes);
        }),
      operation === "flush" ? "cache flush" : "cache invalidate",
    );
  }

  // ------------------------------------------------------------------ scatter/gather lists

  /**
   * Get/Build and their Ex forms: check, reserve the list's memory, queue; the routine maps.
   * Returns the request once queued or run (its `list` is set if it ran), else the failure status.
   */
  private requestList(adapter: AdapterObject, args: ListArguments): ListRequest | NTSTATUS {
    const { mdl, offset, length } = args;
    // The common case, a range inside the first MDL, needs no segment array.
    const segments = offset + length <= mdl.byteCount ? undefined : chainSegments(mdl, offset, length);
    const registers =
      segments === undefined ? spanPages(mdl.virtualAddress + offset, length) : chainMapRegisters(segments);
    if (registers > adapter.capabilities.numberOfMapRegisters) return this.refuse(adapter, registers);
    const size = scatterGatherListSize(registers, registers);
    let va: number;
    let poolVa: number | undefined;
    if (args.buffer !== undefined) {
      if (args.buffer.length < size) return STATUS_BUFFER_TOO_SMALL;
      if (!this.kernel.isMapped(args.buffer.va, size)) {
        throw new BugCheck(
          PAGE_FAULT_IN_NONPAGED_AREA,
          [number(args.buffer.va), 1, 0, 0],
          `the scatter/gather buffer ${formatAddress(args.buffer.va)}+${size} is not mapped`,
        );
      }
      va = args.buffer.va;
    } else {
      poolVa = adapter.listLookaside.take(size);
      if (poolVa === undefined) {
        try {
          poolVa = this.kernel.allocateNonPaged(size, { owner: this.listOwner, tag: "HalS" });
        } catch (error) {
          if (error instanceof PlatformError && error.code === "no-memory")
            return STATUS_INSUFFICIENT_RESOURCES;
          throw error;
        }
      }
      va = poolVa;
    }
    const context = args.transferContext;
    if (context !== undefined && this.takePreCancel(context)) {
      if (poolVa !== undefined) this.releaseListMemory(adapter, poolVa, size);
      return STATUS_CANCELLED;
    }
    if (args.writeToDevice && args.v3) this.cacheMaintenance(mdl, offset, length, "flush");
    const request = new ListRequest(
      this,
      adapter,
      registers,
      this.listRoutine,
      args,
      segments,
      args.deviceObject.CurrentIrp,
      va,
      poolVa,
      size,
    );
    request.cleanup = this.listCleanup;
    const result = this.arbiter.submit(request, args.synchronous);
    if (result === "refused") {
      if (poolVa !== undefined) this.releaseListMemory(adapter, poolVa, size);
      return STATUS_INSUFFICIENT_RESOURCES;
    }
    if (result === "queued" && context !== undefined) this.pend(context, request, args.deviceObject);
    return request;
  }

  /** The routine of every list request, once its channel and registers are granted. */
  private runListRequest(request: ListRequest, grant: MapRegisterGrant | undefined): IO_ALLOCATION_ACTION {
    const { args } = request;
    const context = args.transferContext;
    if (context !== undefined) {
      context.phase = "granted";
      context.request = undefined;
    }
    const list = this.buildList(request, grant);
    request.list = list;
    if (args.executionRoutine === undefined) return KeepObject;
    args.executionRoutine(args.deviceObject, request.irp, list, args.context);
    return DeallocateObjectKeepRegisters;
  }

  /** A list request dropped or cancelled before its routine ran: give back what it reserved. */
  private dropListRequest(request: ListRequest): void {
    if (request.poolVa !== undefined)
      this.releaseListMemory(request.adapter, request.poolVa, request.poolSize);
    const context = request.args.transferContext;
    if (context !== undefined) resetContext(context);
  }

  /** List memory the HAL allocated goes back: into the adapter's lookaside while it has room. */
  private releaseListMemory(adapter: AdapterObject, va: number, size: number): void {
    if (!adapter.listLookaside.keep(va, size)) this.kernel.free(va);
  }

  /** The record of a list this dispatcher built (put back or not); undefined for anything else. */
  private listRecord(list: SCATTER_GATHER_LIST): ListRequest | undefined {
    const record = hiddenReference(list);
    return ListRequest.is(record) && record.dispatcher === this ? record : undefined;
  }

  private rememberList(record: ListRequest): void {
    record.slot = this.lists.length;
    this.lists.push(record);
  }

  private forgetList(record: ListRequest): void {
    const last = this.lists.pop()!;
    if (last !== record) {
      this.lists[record.slot] = last;
      last.slot = record.slot;
    }
    record.slot = -1;
    record.put = true;
  }

  /** PutScatterGatherList's flush of one MDL's part of a list. */
  private flushListPart(
    adapter: AdapterObject,
    file: MapRegisterFile | undefined,
    mdl: Mdl,
    currentVa: number,
    length: number,
    write: boolean,
  ): void {
    try {
      adapter.strategy.flushAdapterBuffers(adapter, file, mdl, currentVa, length, write);
    } catch (error) {
      throw this.lowered(error, "PutScatterGatherList");
    }
  }

  /** The Ex forms' argument rules, then requestList. */
  private requestListEx(
    adapter: AdapterObject,
    args: {
      readonly DeviceObject: DEVICE_OBJECT;
      readonly DmaTransferContext: DMA_TRANSFER_CONTEXT;
      readonly Mdl: MDL;
      readonly Offset: number;
      readonly Length: number;
      readonly Flags: number;
      readonly ExecutionRoutine: DRIVER_LIST_CONTROL | undefined;
      readonly Context: unknown;
      readonly WriteToDevice: boolean;
      readonly DmaCompletionRoutine: DMA_COMPLETION_ROUTINE | undefined;
      readonly WantScatterGatherList: boolean;
      readonly buffer: { readonly va: number; readonly length: number } | undefined;
    },
  ): { status: NTSTATUS; list: SCATTER_GATHER_LIST | undefined } {
    const invalid = { status: STATUS_INVALID_PARAMETER, list: undefined };
    const context = this.idleTransferContext(args.DmaTransferContext);
    const synchronous = this.synchronousFlag(args.Flags);
    const routine = args.ExecutionRoutine;
    // Bus masters only: no completion routine. Without the flag a routine is mandatory and the
    // list cannot be returned; with it and no routine, the list must be (Build: it is the buffer).
    if (
      context === undefined ||
      synchronous === undefined ||
      args.DmaCompletionRoutine !== undefined ||
      !isDeviceObject(args.DeviceObject)
    ) {
      return invalid;
    }
    if (routine !== undefined && typeof routine !== "function") return invalid;
    if (
      (!synchronous && (routine === undefined || Boolean(args.WantScatterGatherList))) ||
      (routine === undefined && !args.WantScatterGatherList && args.buffer === undefined)
    ) {
      return invalid;
    }
    const mdl = this.residentMdl(args.Mdl);
    if (!this.validChainRange(mdl, args.Offset, args.Length)) return invalid;
    const result = this.requestList(adapter, {
      deviceObject: args.DeviceObject,
      mdl,
      offset: args.Offset,
      length: args.Length,
      executionRoutine: routine,
      context: args.Context,
      writeToDevice: Boolean(args.WriteToDevice),
      buffer: args.buffer,
      synchronous,
      transferContext: context,
      v3: true,
    });
    return typeof result === "number"
      ? { status: result, list: undefined }
      : { status: STATUS_SUCCESS, list: result.list };
  }

  /**
   * Maps every piece of a granted list request and keeps the list's books. A list the HAL
   * allocated lives in its pool block only as far as accounting goes: the driver reads the
   * SCATTER_GATHER_LIST object, so its bytes are not written there (no one could read them).
   * A list in the caller's buffer (Build) is written there, as the caller may read it.
   */
  private buildList(request: ListRequest, grant: MapRegisterGrant | undefined): SCATTER_GATHER_LIST {
    const { adapter, args, segments } = request;
    request.grantTaken = true;
    request.grant = grant;
    if (grant !== undefined) grant.owner = "list";
    const elements: SCATTER_GATHER_ELEMENT[] = [];
    const write = args.writeToDevice;
    let mapped = 0;
    try {
      if (segments === undefined) {
        const { mdl, offset, length } = args;
        this.mapListPart(adapter, grant, mdl, mdl.virtualAddress + offset, length, write, elements);
      } else {
        for (; mapped < segments.length; mapped++) {
          const segment = segments[mapped]!;
          this.mapListPart(adapter, grant, segment.mdl, segment.currentVa, segment.length, write, elements);
        }
      }
    } catch (error) {
      // Nothing reaches the driver: undo the pieces mapped so far and give everything back.
      for (const segment of request.allSegments().slice(0, mapped + 1)) {
        adapter.strategy.flushAdapterBuffers(
          adapter,
          grant?.file,
          segment.mdl,
          segment.currentVa,
          segment.length,
          true,
        );
      }
      if (grant !== undefined) this.grants.release(grant);
      if (request.poolVa !== undefined) this.releaseListMemory(adapter, request.poolVa, request.poolSize);
      throw error;
    }
    const list = scatterGatherList(elements, this.nextListId++, request);
    if (request.poolVa === undefined) writeScatterGatherList(this.kernel, request.va, list);
    this.rememberList(request);
    this.listsGot.value++;
    this.announceList(adapter, "get", list, grant);
    return list;
  }

  /** Maps one MDL's part of a list, piece by piece, onto `elements`. */
  private mapListPart(
    adapter: AdapterObject,
    grant: MapRegisterGrant | undefined,
    mdl: Mdl,
    currentVa: number,
    length: number,
    write: boolean,
    elements: SCATTER_GATHER_ELEMENT[],
  ): void {
    let done = 0;
    while (done < length) {
      const piece = this.mapPiece(
        adapter,
        grant,
        mdl,
        currentVa + done,
        length - done,
        write,
        "scatter/gather list",
      );
      appendElement(elements, piece);
      done += piece.length;
    }
  }

  /** The list the record's range would have if nothing bounced: its physical runs, merged. */
  private physicalElements(record: ListRequest): SCATTER_GATHER_ELEMENT[] {
    const elements: SCATTER_GATHER_ELEMENT[] = [];
    const { mdl, offset, length: bytes } = record.args;
    this.mm.physicalRuns(mdl, offset, bytes, (pa, length) => {
      appendElement(elements, { logicalAddress: pa, length });
    });
    return elements;
  }

  /** An MDL over the pages the elements point at, mapped in system space; undefined if not describable. */
  private mdlOverElements(elements: readonly SCATTER_GATHER_ELEMENT[]): { mdl: Mdl; va: number } | undefined {
    const pfns: number[] = [];
    let total = 0;
    for (let i = 0; i < elements.length; i++) {
      const { Address, Length } = elements[i]!;
      if (
        (i > 0 && Address % PAGE_SIZE !== 0) ||
        (i < elements.length - 1 && (Address + Length) % PAGE_SIZE !== 0)
      )
        return undefined;
      const first = Math.floor(Address / PAGE_SIZE);
      for (let pfn = first; pfn <= Math.floor((Address + Length - 1) / PAGE_SIZE); pfn++) pfns.push(pfn);
      total += Length;
    }
    try {
      const va = this.kernel.mapPages(pfns, this.listOwner);
      const mdl = this.mm.allocateMdl(va + (elements[0]!.Address % PAGE_SIZE), total);
      this.mm.buildForNonPagedPool(mdl);
      return { mdl, va };
    } catch (error) {
      if (error instanceof PlatformError) return undefined;
      throw error;
    }
  }

  // ------------------------------------------------------------------ common buffers

  private allocateCommon(adapter: AdapterObject, request: CommonBufferRequest): CommonBufferResult {
    const buffer = this.lowerStatus(() => adapter.strategy.allocateCommonBuffer(adapter, request));
    if (typeof buffer === "number" || buffer === undefined) {
      this.counters.add("hal.common-buffer.failed");
      return NULL_COMMON_BUFFER;
    }
    this.recordCommonBuffer(buffer, request.length, request.cacheEnabled, false);
    return { VirtualAddress: buffer.virtualAddress, LogicalAddress: buffer.logicalAddress };
  }

  private recordCommonBuffer(
    buffer: CommonBuffer,
    length: number,
    cacheEnabled: boolean,
    fromMdl: boolean,
  ): void {
    this.commonBuffers.set(buffer.virtualAddress, { buffer, length, cacheEnabled, fromMdl });
    this.commonBuffersFreed.delete(buffer.virtualAddress);
    this.counters.add("hal.common-buffer.allocate");
  }

  private mdlCommonBufferRequest(
    adapter: AdapterObject,
    mdl: Mdl,
    configs: readonly DMA_COMMON_BUFFER_EXTENDED_CONFIGURATION[],
  ): MdlCommonBufferRequest | NTSTATUS {
    if (!Array.isArray(configs)) return STATUS_INVALID_PARAMETER;
    let minimumLogical = 0;
    let maximumLogical = adapter.capabilities.addressLimit;
    let offset = 0;
    let length = mdl.byteCount;
    let access: MdlCommonBufferRequest["access"] = "readwrite";
    let subSection = false;
    const seen = new Set<number>();
    for (const config of configs) {
      if (typeof config !== "object" || config === null || seen.has(config.ConfigType))
        return STATUS_INVALID_PARAMETER;
      seen.add(config.ConfigType);
      switch (config.ConfigType) {
        case CommonBufferConfigTypeLogicalAddressLimits: {
          const { Minimum, Maximum } = config.LogicalAddressLimits;
          if (!isAddress(Minimum) || !isAddress(Maximum) || Minimum > Maximum)
            return STATUS_INVALID_PARAMETER;
          minimumLogical = Minimum;
          maximumLogical = Math.min(Maximum, maximumLogical);
          break;
        }
        case CommonBufferConfigTypeSubSection: {
          const { Offset, Length } = config.SubSection;
          if (
            !isUlong(Offset) ||
            !isUlong(Length) ||
            Length === 0 ||
            Offset % PAGE_SIZE !== 0 ||
            Length % PAGE_SIZE !== 0
          )
            return STATUS_INVALID_PARAMETER;
          if (Offset + Length > mdl.byteCount) return STATUS_INVALID_PARAMETER;
          offset = Offset;
          length = Length;
          subSection = true;
          break;
        }
        case CommonBufferConfigTypeHardwareAccessPermissions: {
          const permissions = config.HardwareAccessPermissions;
          if (permissions === CommonBufferHardwareAccessReadOnly) access = "read";
          else if (permissions === CommonBufferHardwareAccessWriteOnly) access = "write";
          else if (permissions === CommonBufferHardwareAccessReadWrite) access = "readwrite";
          else return STATUS_INVALID_PARAMETER;
          break;
        }
        default:
          return STATUS_INVALID_PARAMETER;
      }
    }
    // The MDL must be page aligned, whole pages, and not chained unless a sub-section picks a part.
    if (mdl.byteOffset !== 0 || mdl.byteCount % PAGE_SIZE !== 0 || (mdl.next !== undefined && !subSection))
      return STATUS_INVALID_PARAMETER;
    if (minimumLogical > maximumLogical) return STATUS_INVALID_PARAMETER;
    return { offset, length, minimumLogical, maximumLogical, access };
  }

  private vectorOf(adapter: AdapterObject, value: DMA_COMMON_BUFFER_VECTOR): CommonBufferVector {
    if (!(value instanceof CommonBufferVector) || !this.vectors.has(value) || value.adapter !== adapter) {
      throw halViolation(
        HalRule.foreignHandle,
        0,
        adapter.id,
        value instanceof CommonBufferVector && value.released
          ? "the common buffer vector was already freed"
          : "not a common buffer vector of this adapter",
      );
    }
    return value;
  }

  private vectorElement(
    adapter: AdapterObject,
    value: DMA_COMMON_BUFFER_VECTOR,
    index: number,
  ): CommonBufferVector {
    const vector = this.vectorOf(adapter, value);
    if (!Number.isInteger(index) || index < 0 || index >= vector.count) {
      throw vectorError(
        VectorError.indexOutOfBounds,
        vector.count,
        number(index),
        0,
        `vector index ${String(index)} is not below ${vector.count}`,
      );
    }
    if (vector.isFreed(index))
      throw vectorError(VectorError.alreadyFreed, index, 0, 0, `vector element ${index} was already freed`);
    return vector;
  }

  // ------------------------------------------------------------------ books and lower layers

  /** Things the driver still holds on `adapter`. */
  private outstanding(adapter: AdapterObject): number {
    let count = this.grants.of(adapter).length;
    for (const record of this.lists) if (record.adapter === adapter) count++;
    for (const record of this.commonBuffers.values()) if (record.buffer.adapter === adapter) count++;
    for (const vector of this.vectors) if (vector.adapter === adapter) count++;
    if (this.arbiter.holdsChannel(adapter)) count++;
    return count;
  }

  /** Runs a call into the layers below; a PlatformError from it is a HAL bug check with its message. */
  private lower<T>(body: () => T, name: string): T {
    try {
      return body();
    } catch (error) {
      throw this.lowered(error, name);
    }
  }

  /** What `lower` throws for `error`: a PlatformError becomes a HAL bug check, the rest passes. */
  private lowered(error: unknown, name: string): unknown {
    return error instanceof PlatformError
      ? halViolation(HalRule.mappingFailed, 0, 0, `${name}: ${error.message}`)
      : error;
  }

  /** Runs a call into the layers below; a PlatformError becomes its NTSTATUS. */
  private lowerStatus<T>(body: () => T): T | NTSTATUS {
    try {
      return body();
    } catch (error) {
      if (error instanceof PlatformError)
        return error.code === "no-memory" ? STATUS_INSUFFICIENT_RESOURCES : STATUS_INVALID_PARAMETER;
      throw error;
    }
  }

  private announceAdapter(adapter: AdapterObject, action: "open" | "close", leaked: number): void {
    if (!this.events.hasListeners("dma.adapter")) return;
    const caps = adapter.capabilities;
    this.events.emit("dma.adapter", {
      adapter: adapter.id,
      requesterId: adapter.requesterId ?? -1,
      action,
      tableVersion: caps.tableVersion,
      addressBits: caps.addressBits,
      scatterGather: caps.scatterGather,
      numberOfMapRegisters: caps.numberOfMapRegisters,
      strategy: adapter.strategy.remapping ? "remap" : "direct",
      leaked,
    });
  }

  private announceList(
    adapter: AdapterObject,
    action: "get" | "put",
    list: SCATTER_GATHER_LIST,
    grant: MapRegisterGrant | undefined,
  ): void {
    if (!this.listListened.active) return;
    let bytes = 0;
    for (const element of list.Elements) bytes += element.Length;
    this.events.emit("dma.sglist", {
      adapter: adapter.id,
      requesterId: adapter.requesterId ?? -1,
      action,
      elements: list.NumberOfElements,
      bytes,
      mapRegisters: grant?.count ?? 0,
    });
  }
}

/** A cancelled or dropped request's context may start a new allocation. */
function resetContext(context: TransferContextState): void {
  context.phase = "initialized";
  context.request = undefined;
  context.deviceObject = undefined;
}

function isUlong(value: unknown): value is number {
  return Number.isInteger(value) && (value as number) >= 0 && (value as number) < ULONG_LIMIT;
}

function isAddress(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0;
}

/** NODE_REQUIREMENT: a node number or MM_ANY_NODE_OK; the machine has one node, every value is served by it. */
function isNode(value: unknown): boolean {
  return Number.isInteger(value) && (value as number) >= 0 && (value as number) < ULONG_LIMIT;
}

function isDeviceObject(value: unknown): value is DEVICE_OBJECT {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as DEVICE_OBJECT).DeviceObjectExtension === "object"
  );
}

/** CacheEnabled from a MEMORY_CACHING_TYPE (NULL: `fallback`); undefined for a type the routine does not take. */
function cachingOf(type: MEMORY_CACHING_TYPE | undefined, allowWriteCombined: boolean): boolean | undefined {
  if (type === undefined || type === MmCached) return true;
  if (type === MmNonCached) return false;
  if (type === MmWriteCombined && allowWriteCombined) return false;
  return undefined;
}

/** A bug check parameter from a value that may not be a number. */
function number(value: unknown): number {
  return Number.isSafeInteger(value) && (value as number) >= 0 ? (value as number) : 0;
}

function sameElements(a: readonly SCATTER_GATHER_ELEMENT[], b: readonly SCATTER_GATHER_ELEMENT[]): boolean {
  return (
    a.length === b.length &&
    a.every((element, i) => element.Address === b[i]!.Address && element.Length === b[i]!.Length)
  );
}

/** A live MDL object (parameters named `Mdl` shadow the class inside the members). */
function isLiveMdl(value: unknown): value is Mdl {
  return value instanceof Mdl && !value.freed;
}
