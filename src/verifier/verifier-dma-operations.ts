/**
 * The DMA verifier's decorator of DMA_OPERATIONS (DESIGN "Dependency injection": the verifier
 * module rebinds the DmaOperations token to it, so every adapter's table calls it first). For a
 * verified adapter each member checks what Driver Verifier's DMA verification checks (reference
 * section 6) and what Linux dma-debug adds (iommu-anchors.md section 3), keeps its books, then
 * calls HalDmaOperations. Adapters outside the verifier's scope pass straight through.
 *
 * A violation in bug check mode throws BugCheck 0xE6 before the HAL is called. In log mode it is
 * recorded and the machine goes on: a violation the HAL would survive (a missing flush, a leak,
 * a direction mismatch) is passed on to it; one the HAL would stop the machine for, or that
 * would corrupt it (a double free, a NULL or released adapter, a wrong IRQL, an address outside
 * the MDL), is dropped and the member returns its failure value (NULL, FALSE, an error status).
 * docs/verifier.md lists which is which.
 *
 * Fields are TypeScript `private`, not `#`, as in HalDmaOperations: tsx lowers #-members of
 * decorated classes to WeakMap look-ups on every call.
 */
import { inject, injectable } from "inversify";
import { AdapterObject } from "../hal/adapter-object.js";
import { DMA_OPERATION_MEMBERS, type DmaOperationName } from "../hal/dma-operation-members.js";
import { HalDmaOperations } from "../hal/hal-dma-operations.js";
import { chainLength, chainMapRegisters, chainSegments, type MdlSegment } from "../hal/mdl-chain.js";
import type { DEVICE_OBJECT, MDL } from "../hal/wdm/device-object.js";
import {
  type CommonBufferResult,
  type DMA_ADAPTER,
  type DMA_COMPLETION_ROUTINE,
  type DMA_OPERATIONS,
  DMA_OPERATIONS_SIZE_V3,
  type DRIVER_CONTROL,
  type DRIVER_LIST_CONTROL,
  type PHYSICAL_ADDRESS,
  type PVOID,
} from "../hal/wdm/dma-operations.js";
import {
  CommonBufferConfigTypeSubSection,
  type DMA_ADAPTER_INFO,
  type DMA_COMMON_BUFFER_EXTENDED_CONFIGURATION,
  type DMA_COMMON_BUFFER_VECTOR,
  type DMA_DOMAIN,
  type DMA_TRANSFER_CONTEXT,
  type DMA_TRANSFER_INFO,
  DOMAIN_COMMON_BUFFER_LARGE_PAGE,
  type MAP_REGISTER_BASE,
  type MEMORY_CACHING_TYPE,
  type NODE_REQUIREMENT,
} from "../hal/wdm/dma-v3-types.js";
import {
  DeallocateObject,
  DeallocateObjectKeepRegisters,
  type IO_ALLOCATION_ACTION,
  KeepObject,
} from "../hal/wdm/io-allocation-action.js";
import { DISPATCH_LEVEL, PASSIVE_LEVEL } from "../hal/wdm/irql.js";
import {
  NT_SUCCESS,
  type NTSTATUS,
  STATUS_INSUFFICIENT_RESOURCES,
  STATUS_INVALID_PARAMETER,
  STATUS_SUCCESS,
} from "../hal/wdm/ntstatus.js";
import type { SCATTER_GATHER_LIST } from "../hal/wdm/scatter-gather-list.js";
import { CACHE_LINE_SIZE, CpuMemory } from "../platform/cpu-memory.js";
import { Mdl } from "../platform/mdl.js";
import { formatAddress, PAGE_SIZE, spanPages } from "../platform/page.js";
import { Scheduler } from "../platform/scheduler.js";
import {
  type AdapterLedger,
  type LogicalRange,
  type MappedPiece,
  type VerifiedCommonBuffer,
  VerifiedFile,
} from "./adapter-ledger.js";
import { fencedLength } from "./common-buffer-fence.js";
import { DmaVerifier, type ViolationReport } from "./dma-verifier.js";
import type { InFlightRange } from "./in-flight-index.js";
import { InvalidBuffer, IrqlRule, VerifierCode } from "./violation-codes.js";

const ULONG_LIMIT = 2 ** 32;
const MEMBERS = new Map(DMA_OPERATION_MEMBERS.map((member) => [member.name, member]));
/** The vector routines report a wrong IRQL as DMA_COMMON_BUFFER_VECTOR_ERROR (the HAL does that). */
const OWN_IRQL_CODE = new Set<string>([
  "AllocateCommonBufferVector",
  "GetCommonBufferFromVectorByIndex",
  "FreeCommonBufferFromVector",
  "FreeCommonBufferVector",
]);
/** enter()'s answer for a call log mode drops. */
const DROP = Symbol("drop");
const NULL_BUFFER: CommonBufferResult = Object.freeze({ VirtualAddress: 0, LogicalAddress: 0 });

/** One AllocateAdapterChannel(Ex) request, from the call to its grant. */
interface ChannelRequest {
  readonly ledger: AdapterLedger;
  readonly stack: string;
  readonly registers: number;
  readonly deviceObject: DEVICE_OBJECT;
  pending: boolean;
  ran: boolean;
}

/** A mapping request: which part of which MDL chain, in which direction. */
interface MappingRequest {
  readonly mdl: Mdl;
  readonly offset: number;
  readonly length: number;
  readonly writeToDevice: boolean;
}

@injectable()
export class VerifierDmaOperations implements DMA_OPERATIONS {
  readonly Size = DMA_OPERATIONS_SIZE_V3;
  private readonly hal: DMA_OPERATIONS;
  private readonly verifier: DmaVerifier;
  private readonly scheduler: Scheduler;
  private readonly coherent: boolean;
  /** Channel requests by transfer context (V3), for CancelAdapterChannel. */
  private readonly contexts = new WeakMap<DMA_TRANSFER_CONTEXT, ChannelRequest>();
  /** AllocateAdapterChannel requests by device object: its one wait block. */
  private readonly deviceRequests = new WeakMap<DEVICE_OBJECT, ChannelRequest>();

  constructor(
    @inject(HalDmaOperations) hal: HalDmaOperations,
    @inject(DmaVerifier) verifier: DmaVerifier,
    @inject(Scheduler) scheduler: Scheduler,
    @inject(CpuMemory) cpu: CpuMemory,
  ) {
    this.hal = hal;
    this.verifier = verifier;
    this.scheduler = scheduler;
    this.coherent = cpu.coherent;
  }

  // ------------------------------------------------------------------ version 1

  PutDmaAdapter(DmaAdapter: DMA_ADAPTER): void {
    const ledger = this.enter(DmaAdapter, "PutDmaAdapter");
    if (ledger === DROP) return;
    if (ledger !== undefined) this.checkLeftovers(ledger);
    this.hal.PutDmaAdapter(DmaAdapter);
    if (ledger === undefined) return;
    ledger.released = true;
    ledger.pendingChannels = 0;
  }

  AllocateCommonBuffer(DmaAdapter: DMA_ADAPTER, Length: number, CacheEnabled: boolean): CommonBufferResult {
    const ledger = this.enter(DmaAdapter, "AllocateCommonBuffer");
    if (ledger === DROP) return NULL_BUFFER;
    const allocate = (length: number): CommonBufferResult =>
      this.hal.AllocateCommonBuffer(DmaAdapter, length, CacheEnabled);
    if (ledger === undefined) return allocate(Length);
    return this.fencedAllocation(ledger, Length, true, allocate);
  }

  FreeCommonBuffer(
    DmaAdapter: DMA_ADAPTER,
    Length: number,
    LogicalAddress: PHYSICAL_ADDRESS,
    VirtualAddress: PVOID,
    CacheEnabled: boolean,
  ): void {
    const ledger = this.enter(DmaAdapter, "FreeCommonBuffer");
    if (ledger === DROP) return;
    const buffer = this.verifier.bufferAt(VirtualAddress);
    if (ledger !== undefined && buffer === undefined && ledger.freedBuffers.has(VirtualAddress)) {
      this.refuse(ledger, {
        member: "FreeCommonBuffer",
        code: VerifierCode.commonBufferDoubleFree,
        p2: 1,
        p3: VirtualAddress,
        p4: 0,
        explanation: `common buffer ${formatAddress(VirtualAddress)} of adapter ${ledger.id} freed a second time (${ledger.commonBuffers.allocated} allocated, ${ledger.commonBuffers.freed + 1} freed)`,
      });
      return;
    }
    if (buffer === undefined) {
      this.hal.FreeCommonBuffer(DmaAdapter, Length, LogicalAddress, VirtualAddress, CacheEnabled);
      return;
    }
    if (ledger !== undefined && buffer.adapter === ledger.id)
      this.verifier.checkFence(ledger, buffer, "FreeCommonBuffer");
    const delta = buffer.fenced ? PAGE_SIZE : 0;
    this.hal.FreeCommonBuffer(
      DmaAdapter,
      buffer.fenced ? Length - buffer.length + fencedLength(buffer.length) : Length,
      LogicalAddress - delta,
      VirtualAddress - delta,
      CacheEnabled,
    );
    this.forgetBuffer(buffer);
  }

  AllocateAdapterChannel(
    DmaAdapter: DMA_ADAPTER,
    DeviceObject: DEVICE_OBJECT,
    NumberOfMapRegisters: number,
    ExecutionRoutine: DRIVER_CONTROL,
    Context: unknown,
  ): NTSTATUS {
    const ledger = this.enter(DmaAdapter, "AllocateAdapterChannel");
    if (ledger === DROP) return STATUS_INSUFFICIENT_RESOURCES;
    const forward = (routine: DRIVER_CONTROL): NTSTATUS =>
      this.hal.AllocateAdapterChannel(DmaAdapter, DeviceObject, NumberOfMapRegisters, routine, Context);
    if (
      ledger === undefined ||
      !isUlong(NumberOfMapRegisters) ||
      typeof ExecutionRoutine !== "function" ||
      !isDeviceObject(DeviceObject)
    ) {
      return forward(ExecutionRoutine);
    }
    if (this.overMaximum(ledger, "AllocateAdapterChannel", NumberOfMapRegisters))
      return forward(ExecutionRoutine);
    const previous = this.deviceRequests.get(DeviceObject);
    const waitBlockBusy =
      previous !== undefined && (previous.pending || (previous.ran && previous.ledger.channel === "running"));
    if (ledger.channelsOutstanding > 0 || waitBlockBusy) {
      const dropped = this.refuseIf(waitBlockBusy, ledger, {
        member: "AllocateAdapterChannel",
        code: VerifierCode.secondChannel,
        p2: ledger.channelsOutstanding,
        p3: ledger.id,
        p4: 0,
        explanation: `AllocateAdapterChannel on adapter ${ledger.id} while it already has an adapter channel ${ledger.channel === "idle" ? "requested" : ledger.channel === "held" ? "held (KeepObject) and not freed" : "in its AdapterControl routine"}`,
      });
      if (dropped) return STATUS_INSUFFICIENT_RESOURCES;
    }
    const request = this.channelRequest(ledger, DeviceObject, NumberOfMapRegisters);
    this.deviceRequests.set(DeviceObject, request);
    const status = forward((device, irp, base, context) =>
      this.runAdapterControl(request, base, () => ExecutionRoutine(device, irp, base, context)),
    );
    this.afterChannelRequest(request, status);
    return status;
  }

  FlushAdapterBuffers(
    DmaAdapter: DMA_ADAPTER,
    Mdl: MDL,
    MapRegisterBase: MAP_REGISTER_BASE | undefined,
    CurrentVa: PVOID,
    Length: number,
    WriteToDevice: boolean,
  ): boolean {
    const ledger = this.enter(DmaAdapter, "FlushAdapterBuffers");
    if (ledger === DROP) return false;
    const forward = (): boolean =>
      this.hal.FlushAdapterBuffers(DmaAdapter, Mdl, MapRegisterBase, CurrentVa, Length, WriteToDevice);
    if (ledger === undefined || !isLiveMdl(Mdl)) return forward();
    const member = "FlushAdapterBuffers";
    if (this.unlocked(ledger, member, Mdl)) return false;
    const offset = CurrentVa - Mdl.virtualAddress;
    if (!Number.isSafeInteger(offset) || offset < 0 || offset >= Mdl.byteCount) {
      this.addressNotInMdl(ledger, member, Mdl, CurrentVa);
      return false;
    }
    if (!isUlong(Length)) return forward();
    if (offset + Length > Mdl.byteCount) {
      this.refuse(ledger, {
        member,
        code: VerifierCode.miscellaneous,
        p2: 1,
        p3: Mdl.byteCount - offset,
        p4: Length,
        explanation: `FlushAdapterBuffers of ${Length} bytes from ${formatAddress(CurrentVa)}, but only ${Mdl.byteCount - offset} bytes of MDL ${Mdl.id} are left there: flushing past the end of the map register file`,
      });
      return false;
    }
    const file = this.fileOf(ledger, MapRegisterBase);
    if (file === undefined || Length === 0) return forward();
    const write = Boolean(WriteToDevice);
    const segments: MdlSegment[] = [{ mdl: Mdl, currentVa: CurrentVa, length: Length }];
    this.checkFlush(ledger, member, file, segments, write, CurrentVa);
    const flushed = forward();
    this.unmapped(ledger, file, segments);
    this.verifier.checkFencesOf(ledger, member);
    return flushed;
  }

  FreeAdapterChannel(DmaAdapter: DMA_ADAPTER): void {
    const ledger = this.enter(DmaAdapter, "FreeAdapterChannel");
    if (ledger === DROP) return;
    if (ledger === undefined) {
      this.hal.FreeAdapterChannel(DmaAdapter);
      return;
    }
    if (ledger.channel !== "held" && this.channelNotHeld(ledger, "FreeAdapterChannel")) return;
    const file = ledger.channelFile;
    if (file !== undefined) this.checkStillMapped(ledger, "FreeAdapterChannel", file);
    this.releasingChannel(ledger, () => this.hal.FreeAdapterChannel(DmaAdapter));
    if (file !== undefined) this.releaseFile(ledger, file);
  }

  FreeMapRegisters(
    DmaAdapter: DMA_ADAPTER,
    MapRegisterBase: MAP_REGISTER_BASE | undefined,
    NumberOfMapRegisters: number,
  ): void {
    const ledger = this.enter(DmaAdapter, "FreeMapRegisters");
    if (ledger === DROP) return;
    const forward = (): void => this.hal.FreeMapRegisters(DmaAdapter, MapRegisterBase, NumberOfMapRegisters);
    if (ledger === undefined || MapRegisterBase === undefined) {
      forward();
      return;
    }
    const member = "FreeMapRegisters";
    const file = ledger.files.get(MapRegisterBase);
    if (file === undefined) {
      if (ledger.freedBases.has(MapRegisterBase)) {
        this.refuse(ledger, {
          member,
          code: VerifierCode.mapRegistersDoubleFree,
          p2: isUlong(NumberOfMapRegisters) ? NumberOfMapRegisters : 0,
          p3: ledger.id,
          p4: 0,
          explanation: `FreeMapRegisters of ${String(NumberOfMapRegisters)} registers already freed (adapter ${ledger.id}: ${ledger.mapRegisters.allocated} allocated, ${ledger.mapRegisters.freed} freed)`,
        });
        return;
      }
      forward();
      return;
    }
    if (isUlong(NumberOfMapRegisters) && NumberOfMapRegisters > file.count) {
      this.refuse(ledger, {
        member,
        code: VerifierCode.mapRegistersDoubleFree,
        p2: NumberOfMapRegisters - file.count,
        p3: ledger.id,
        p4: 0,
        explanation: `FreeMapRegisters(${NumberOfMapRegisters}) on MapRegisterBase #${file.id}, which holds ${file.count}: ${NumberOfMapRegisters - file.count} freed too many`,
      });
      return;
    }
    this.checkStillMapped(ledger, member, file);
    forward();
    if (ledger.channelFile === file) ledger.channelFile = undefined;
    this.releaseFile(ledger, file);
  }

  MapTransfer(
    DmaAdapter: DMA_ADAPTER,
    Mdl: MDL,
    MapRegisterBase: MAP_REGISTER_BASE | undefined,
    CurrentVa: PVOID,
    Length: number,
    WriteToDevice: boolean,
  ): { readonly LogicalAddress: PHYSICAL_ADDRESS; readonly Length: number } {
    const failed = { LogicalAddress: 0, Length: 0 };
    const ledger = this.enter(DmaAdapter, "MapTransfer");
    if (ledger === DROP) return failed;
    const forward = (): { readonly LogicalAddress: PHYSICAL_ADDRESS; readonly Length: number } =>
      this.hal.MapTransfer(DmaAdapter, Mdl, MapRegisterBase, CurrentVa, Length, WriteToDevice);
    if (ledger === undefined || !isLiveMdl(Mdl)) return forward();
    const member = "MapTransfer";
    if (this.unlocked(ledger, member, Mdl)) return failed;
    const offset = CurrentVa - Mdl.virtualAddress;
    if (!Number.isSafeInteger(offset) || offset < 0 || offset >= Mdl.byteCount) {
      this.addressNotInMdl(ledger, member, Mdl, CurrentVa);
      return failed;
    }
    if (!isUlong(Length)) return forward();
    if (Length === 0) {
      this.zeroLength(ledger, member, Mdl);
      return failed;
    }
    if (offset + Length > Mdl.byteCount) {
      this.beyondMdl(ledger, member, Mdl, offset + Length - Mdl.byteCount);
      return failed;
    }
    const file = this.fileOf(ledger, MapRegisterBase);
    if (file === undefined) return forward();
    const write = Boolean(WriteToDevice);
    if (this.registersExhausted(ledger, member, file, spanPages(CurrentVa, Length), Length, false))
      return failed;
    const request: MappingRequest = { mdl: Mdl, offset, length: Length, writeToDevice: write };
    this.checkMapping(ledger, member, request);
    const result = forward();
    this.mapped(ledger, file, [{ mdl: Mdl, currentVa: CurrentVa, length: result.Length }], write, [
      { address: result.LogicalAddress, length: result.Length },
    ]);
    return result;
  }

  GetDmaAlignment(DmaAdapter: DMA_ADAPTER): number {
    if (this.enter(DmaAdapter, "GetDmaAlignment") === DROP) return 1;
    return this.hal.GetDmaAlignment(DmaAdapter);
  }

  ReadDmaCounter(DmaAdapter: DMA_ADAPTER): number {
    if (this.enter(DmaAdapter, "ReadDmaCounter") === DROP) return 0;
    return this.hal.ReadDmaCounter(DmaAdapter);
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
    const member = "GetScatterGatherList";
    const ledger = this.enter(DmaAdapter, member);
    if (ledger === DROP) return STATUS_INVALID_PARAMETER;
    const forward = (routine: DRIVER_LIST_CONTROL): NTSTATUS =>
      this.hal.GetScatterGatherList(
        DmaAdapter,
        DeviceObject,
        Mdl,
        CurrentVa,
        Length,
        routine,
        Context,
        WriteToDevice,
      );
    return this.verifyList(
      ledger,
      member,
      DeviceObject,
      Mdl,
      CurrentVa,
      Length,
      ExecutionRoutine,
      WriteToDevice,
      forward,
    );
  }

  PutScatterGatherList(
    DmaAdapter: DMA_ADAPTER,
    ScatterGather: SCATTER_GATHER_LIST,
    WriteToDevice: boolean,
  ): void {
    const member = "PutScatterGatherList";
    const ledger = this.enter(DmaAdapter, member);
    if (ledger === DROP) return;
    const forward = (): void => this.hal.PutScatterGatherList(DmaAdapter, ScatterGather, WriteToDevice);
    if (ledger === undefined) {
      forward();
      return;
    }
    const record = ledger.lists.get(ScatterGather);
    if (record === undefined) {
      if (ledger.freedLists.has(ScatterGather)) {
        const dropped = this.refuse(ledger, {
          member,
          code: VerifierCode.scatterGatherDoubleFree,
          p2: ledger.scatterGatherLists.allocated,
          p3: ledger.scatterGatherLists.freed + 1,
          p4: 0,
          explanation: `PutScatterGatherList of a list already put back (adapter ${ledger.id}: ${ledger.scatterGatherLists.allocated} lists allocated, this would be free number ${ledger.scatterGatherLists.freed + 1})`,
        });
        if (dropped) return;
      }
      forward();
      return;
    }
    const write = Boolean(WriteToDevice);
    if (write !== record.writeToDevice) {
      this.note(ledger, {
        member,
        code: VerifierCode.directionMismatch,
        p2: Number(record.writeToDevice),
        p3: Number(write),
        p4: ScatterGather.Elements[0]?.Address ?? 0,
        explanation: `PutScatterGatherList(WriteToDevice ${write ? "TRUE" : "FALSE"}) of a list built with WriteToDevice ${record.writeToDevice ? "TRUE" : "FALSE"}: ${record.writeToDevice ? "the HAL copies bounced data back over the driver's buffer" : "bounced data the device wrote is never copied back"}`,
      });
    }
    forward();
    for (const range of record.ranges) this.verifier.inFlight.remove(range);
    ledger.lists.delete(ScatterGather);
    ledger.freedLists.add(ScatterGather);
    ledger.scatterGatherLists.freed++;
    ledger.mapRegisters.freed += record.registers;
    this.verifier.checkFencesOf(ledger, member);
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
    if (this.enter(DmaAdapter, "CalculateScatterGatherList") === DROP) {
      return { Status: STATUS_INVALID_PARAMETER, ScatterGatherListSize: 0, NumberOfMapRegisters: 0 };
    }
    return this.hal.CalculateScatterGatherList(DmaAdapter, Mdl, CurrentVa, Length);
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
    const member = "BuildScatterGatherList";
    const ledger = this.enter(DmaAdapter, member);
    if (ledger === DROP) return STATUS_INVALID_PARAMETER;
    const forward = (routine: DRIVER_LIST_CONTROL): NTSTATUS =>
      this.hal.BuildScatterGatherList(
        DmaAdapter,
        DeviceObject,
        Mdl,
        CurrentVa,
        Length,
        routine,
        Context,
        WriteToDevice,
        ScatterGatherBuffer,
        ScatterGatherLength,
      );
    return this.verifyList(
      ledger,
      member,
      DeviceObject,
      Mdl,
      CurrentVa,
      Length,
      ExecutionRoutine,
      WriteToDevice,
      forward,
    );
  }

  BuildMdlFromScatterGatherList(
    DmaAdapter: DMA_ADAPTER,
    ScatterGather: SCATTER_GATHER_LIST,
    OriginalMdl: MDL | undefined,
  ): { readonly Status: NTSTATUS; readonly TargetMdl: MDL | undefined } {
    if (this.enter(DmaAdapter, "BuildMdlFromScatterGatherList") === DROP) {
      return { Status: STATUS_INVALID_PARAMETER, TargetMdl: undefined };
    }
    return this.hal.BuildMdlFromScatterGatherList(DmaAdapter, ScatterGather, OriginalMdl);
  }

  // ------------------------------------------------------------------ version 3

  GetDmaAdapterInfo(DmaAdapter: DMA_ADAPTER, AdapterInfo: DMA_ADAPTER_INFO): NTSTATUS {
    if (this.enter(DmaAdapter, "GetDmaAdapterInfo") === DROP) return STATUS_INVALID_PARAMETER;
    return this.hal.GetDmaAdapterInfo(DmaAdapter, AdapterInfo);
  }

  GetDmaTransferInfo(
    DmaAdapter: DMA_ADAPTER,
    Mdl: MDL,
    Offset: number,
    Length: number,
    WriteOnly: boolean,
    TransferInfo: DMA_TRANSFER_INFO,
  ): NTSTATUS {
    const ledger = this.enter(DmaAdapter, "GetDmaTransferInfo");
    if (ledger === DROP) return STATUS_INVALID_PARAMETER;
    if (ledger !== undefined && isLiveMdl(Mdl) && this.unlocked(ledger, "GetDmaTransferInfo", Mdl)) {
      return STATUS_INVALID_PARAMETER;
    }
    return this.hal.GetDmaTransferInfo(DmaAdapter, Mdl, Offset, Length, WriteOnly, TransferInfo);
  }

  InitializeDmaTransferContext(DmaAdapter: DMA_ADAPTER, DmaTransferContext: DMA_TRANSFER_CONTEXT): NTSTATUS {
    if (this.enter(DmaAdapter, "InitializeDmaTransferContext") === DROP) return STATUS_INVALID_PARAMETER;
    return this.hal.InitializeDmaTransferContext(DmaAdapter, DmaTransferContext);
  }

  AllocateCommonBufferEx(
    DmaAdapter: DMA_ADAPTER,
    MaximumAddress: PHYSICAL_ADDRESS | undefined,
    Length: number,
    CacheEnabled: boolean,
    PreferredNode: NODE_REQUIREMENT,
  ): CommonBufferResult {
    const ledger = this.enter(DmaAdapter, "AllocateCommonBufferEx");
    if (ledger === DROP) return NULL_BUFFER;
    const allocate = (length: number): CommonBufferResult =>
      this.hal.AllocateCommonBufferEx(DmaAdapter, MaximumAddress, length, CacheEnabled, PreferredNode);
    if (ledger === undefined) return allocate(Length);
    return this.fencedAllocation(ledger, Length, true, allocate);
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
    const member = "AllocateAdapterChannelEx";
    const ledger = this.enter(DmaAdapter, member);
    if (ledger === DROP) return { Status: STATUS_INSUFFICIENT_RESOURCES, MapRegisterBase: undefined };
    const forward = (
      routine: DRIVER_CONTROL | undefined,
    ): { readonly Status: NTSTATUS; readonly MapRegisterBase: MAP_REGISTER_BASE | undefined } =>
      this.hal.AllocateAdapterChannelEx(
        DmaAdapter,
        DeviceObject,
        DmaTransferContext,
        NumberOfMapRegisters,
        Flags,
        routine,
        ExecutionContext,
        WantMapRegisterBase,
      );
    if (
      ledger === undefined ||
      !isUlong(NumberOfMapRegisters) ||
      !isDeviceObject(DeviceObject) ||
      (ExecutionRoutine !== undefined && typeof ExecutionRoutine !== "function")
    ) {
      return forward(ExecutionRoutine);
    }
    if (this.overMaximum(ledger, member, NumberOfMapRegisters)) return forward(ExecutionRoutine);
    if (ledger.channelsOutstanding > 0) {
      this.note(ledger, {
        member,
        code: VerifierCode.secondChannel,
        p2: ledger.channelsOutstanding,
        p3: ledger.id,
        p4: 0,
        explanation: `AllocateAdapterChannelEx on adapter ${ledger.id} while it already has an adapter channel ${ledger.channel === "held" ? "held and not freed" : "requested"}`,
      });
    }
    const request = this.channelRequest(ledger, DeviceObject, NumberOfMapRegisters);
    const routine = ExecutionRoutine;
    const result = forward(
      routine === undefined
        ? undefined
        : (device, irp, base, context) =>
            this.runAdapterControl(request, base, () => routine(device, irp, base, context)),
    );
    if (routine === undefined && NT_SUCCESS(result.Status)) {
      // Synchronous, no routine: the HAL kept the channel and returned the registers (KeepObject).
      this.runAdapterControl(request, result.MapRegisterBase, () => KeepObject);
    }
    this.afterChannelRequest(request, result.Status);
    if (request.pending && typeof DmaTransferContext === "object" && DmaTransferContext !== null) {
      this.contexts.set(DmaTransferContext, request);
    }
    return result;
  }

  ConfigureAdapterChannel(DmaAdapter: DMA_ADAPTER, FunctionNumber: number, Context: unknown): NTSTATUS {
    if (this.enter(DmaAdapter, "ConfigureAdapterChannel") === DROP) return STATUS_INVALID_PARAMETER;
    return this.hal.ConfigureAdapterChannel(DmaAdapter, FunctionNumber, Context);
  }

  CancelAdapterChannel(
    DmaAdapter: DMA_ADAPTER,
    DeviceObject: DEVICE_OBJECT,
    DmaTransferContext: DMA_TRANSFER_CONTEXT,
  ): boolean {
    const ledger = this.enter(DmaAdapter, "CancelAdapterChannel");
    if (ledger === DROP) return false;
    const cancelled = this.hal.CancelAdapterChannel(DmaAdapter, DeviceObject, DmaTransferContext);
    const request =
      typeof DmaTransferContext === "object" && DmaTransferContext !== null
        ? this.contexts.get(DmaTransferContext)
        : undefined;
    if (cancelled && request?.pending === true) {
      request.pending = false;
      request.ledger.pendingChannels--;
      this.contexts.delete(DmaTransferContext);
    }
    return cancelled;
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
    CompletionContext: unknown,
  ): {
    readonly Status: NTSTATUS;
    readonly Length: number;
    readonly ScatterGatherList: SCATTER_GATHER_LIST | undefined;
  } {
    const member = "MapTransferEx";
    const failed = { Status: STATUS_INSUFFICIENT_RESOURCES, Length: 0, ScatterGatherList: undefined };
    const ledger = this.enter(DmaAdapter, member);
    if (ledger === DROP) return failed;
    const forward = (): {
      readonly Status: NTSTATUS;
      readonly Length: number;
      readonly ScatterGatherList: SCATTER_GATHER_LIST | undefined;
    } =>
      this.hal.MapTransferEx(
        DmaAdapter,
        Mdl,
        MapRegisterBase,
        Offset,
        DeviceOffset,
        Length,
        WriteToDevice,
        ScatterGatherBuffer,
        ScatterGatherBufferLength,
        DmaCompletionRoutine,
        CompletionContext,
      );
    if (ledger === undefined || !isLiveMdl(Mdl)) return forward();
    if (this.unlockedChain(ledger, member, Mdl)) return failed;
    const file = this.fileOf(ledger, MapRegisterBase);
    if (file === undefined || !validChainRange(Mdl, Offset, Length)) return forward();
    if (
      this.registersExhausted(
        ledger,
        member,
        file,
        chainMapRegisters(chainSegments(Mdl, Offset, Length)),
        Length,
        true,
      )
    ) {
      return failed;
    }
    const write = Boolean(WriteToDevice);
    this.checkMapping(ledger, member, { mdl: Mdl, offset: Offset, length: Length, writeToDevice: write });
    const result = forward();
    if (NT_SUCCESS(result.Status) && result.ScatterGatherList !== undefined) {
      const logical = result.ScatterGatherList.Elements.map((element) => ({
        address: element.Address,
        length: element.Length,
      }));
      this.mapped(ledger, file, chainSegments(Mdl, Offset, result.Length), write, logical);
    }
    return result;
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
    CompletionContext: unknown,
    WantScatterGatherList: boolean,
  ): { readonly Status: NTSTATUS; readonly ScatterGatherList: SCATTER_GATHER_LIST | undefined } {
    const member = "GetScatterGatherListEx";
    return this.listRequestEx(
      DmaAdapter,
      member,
      Mdl,
      Offset,
      Length,
      WriteToDevice,
      ExecutionRoutine,
      (routine) =>
        this.hal.GetScatterGatherListEx(
          DmaAdapter,
          DeviceObject,
          DmaTransferContext,
          Mdl,
          Offset,
          Length,
          Flags,
          routine,
          Context,
          WriteToDevice,
          DmaCompletionRoutine,
          CompletionContext,
          WantScatterGatherList,
        ),
    );
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
    CompletionContext: unknown,
  ): { readonly Status: NTSTATUS; readonly ScatterGatherList: SCATTER_GATHER_LIST | undefined } {
    const member = "BuildScatterGatherListEx";
    return this.listRequestEx(
      DmaAdapter,
      member,
      Mdl,
      Offset,
      Length,
      WriteToDevice,
      ExecutionRoutine,
      (routine) =>
        this.hal.BuildScatterGatherListEx(
          DmaAdapter,
          DeviceObject,
          DmaTransferContext,
          Mdl,
          Offset,
          Length,
          Flags,
          routine,
          Context,
          WriteToDevice,
          ScatterGatherBuffer,
          ScatterGatherLength,
          DmaCompletionRoutine,
          CompletionContext,
        ),
    );
  }

  FlushAdapterBuffersEx(
    DmaAdapter: DMA_ADAPTER,
    Mdl: MDL,
    MapRegisterBase: MAP_REGISTER_BASE | undefined,
    Offset: number,
    Length: number,
    WriteToDevice: boolean,
  ): NTSTATUS {
    const member = "FlushAdapterBuffersEx";
    const ledger = this.enter(DmaAdapter, member);
    if (ledger === DROP) return STATUS_INVALID_PARAMETER;
    const forward = (): NTSTATUS =>
      this.hal.FlushAdapterBuffersEx(DmaAdapter, Mdl, MapRegisterBase, Offset, Length, WriteToDevice);
    if (ledger === undefined || !isLiveMdl(Mdl)) return forward();
    if (this.unlockedChain(ledger, member, Mdl)) return STATUS_INVALID_PARAMETER;
    const file = this.fileOf(ledger, MapRegisterBase);
    if (file === undefined || !validChainRange(Mdl, Offset, Length)) return forward();
    const write = Boolean(WriteToDevice);
    const segments = chainSegments(Mdl, Offset, Length);
    this.checkFlush(ledger, member, file, segments, write, Mdl.virtualAddress + Offset);
    const status = forward();
    if (NT_SUCCESS(status)) this.unmapped(ledger, file, segments);
    this.verifier.checkFencesOf(ledger, member);
    return status;
  }

  FreeAdapterObject(DmaAdapter: DMA_ADAPTER, AllocationAction: IO_ALLOCATION_ACTION): void {
    const member = "FreeAdapterObject";
    const ledger = this.enter(DmaAdapter, member);
    if (ledger === DROP) return;
    const known =
      AllocationAction === KeepObject ||
      AllocationAction === DeallocateObject ||
      AllocationAction === DeallocateObjectKeepRegisters;
    if (ledger === undefined || !known) {
      this.hal.FreeAdapterObject(DmaAdapter, AllocationAction);
      return;
    }
    if (ledger.channel !== "held" && this.channelNotHeld(ledger, member)) return;
    const file = ledger.channelFile;
    if (AllocationAction === DeallocateObject && file !== undefined)
      this.checkStillMapped(ledger, member, file);
    if (AllocationAction === KeepObject) {
      this.hal.FreeAdapterObject(DmaAdapter, AllocationAction);
      return;
    }
    this.releasingChannel(ledger, () => this.hal.FreeAdapterObject(DmaAdapter, AllocationAction));
    if (file === undefined) return;
    if (AllocationAction === DeallocateObject) this.releaseFile(ledger, file);
    else file.owner = "driver";
  }

  CancelMappedTransfer(DmaAdapter: DMA_ADAPTER, DmaTransferContext: DMA_TRANSFER_CONTEXT): NTSTATUS {
    if (this.enter(DmaAdapter, "CancelMappedTransfer") === DROP) return STATUS_INVALID_PARAMETER;
    return this.hal.CancelMappedTransfer(DmaAdapter, DmaTransferContext);
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
    const ledger = this.enter(DmaAdapter, "AllocateDomainCommonBuffer");
    if (ledger === DROP) return { Status: STATUS_INVALID_PARAMETER, LogicalAddress: 0, VirtualAddress: 0 };
    let status: NTSTATUS = STATUS_SUCCESS;
    const allocate = (length: number): CommonBufferResult => {
      const result = this.hal.AllocateDomainCommonBuffer(
        DmaAdapter,
        DomainHandle,
        MaximumAddress,
        length,
        Flags,
        CacheType,
        PreferredNode,
      );
      status = result.Status;
      return NT_SUCCESS(result.Status) ? result : NULL_BUFFER;
    };
    if (ledger === undefined) {
      const result = allocate(Length);
      return { Status: status, ...result };
    }
    const largePage = Number.isInteger(Flags) && (Flags & DOMAIN_COMMON_BUFFER_LARGE_PAGE) !== 0;
    const result = this.fencedAllocation(ledger, Length, !largePage, allocate);
    return { Status: status, ...result };
  }

  FlushDmaBuffer(DmaAdapter: DMA_ADAPTER, Mdl: MDL, ReadOperation: boolean): NTSTATUS {
    if (this.enter(DmaAdapter, "FlushDmaBuffer") === DROP) return STATUS_INVALID_PARAMETER;
    return this.hal.FlushDmaBuffer(DmaAdapter, Mdl, ReadOperation);
  }

  JoinDmaDomain(DmaAdapter: DMA_ADAPTER, DomainHandle: DMA_DOMAIN): NTSTATUS {
    if (this.enter(DmaAdapter, "JoinDmaDomain") === DROP) return STATUS_INVALID_PARAMETER;
    return this.hal.JoinDmaDomain(DmaAdapter, DomainHandle);
  }

  LeaveDmaDomain(DmaAdapter: DMA_ADAPTER): NTSTATUS {
    if (this.enter(DmaAdapter, "LeaveDmaDomain") === DROP) return STATUS_INVALID_PARAMETER;
    return this.hal.LeaveDmaDomain(DmaAdapter);
  }

  GetDmaDomain(DmaAdapter: DMA_ADAPTER): DMA_DOMAIN | undefined {
    if (this.enter(DmaAdapter, "GetDmaDomain") === DROP) return undefined;
    return this.hal.GetDmaDomain(DmaAdapter);
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
    const ledger = this.enter(DmaAdapter, "AllocateCommonBufferWithBounds");
    if (ledger === DROP) return NULL_BUFFER;
    const allocate = (length: number): CommonBufferResult =>
      this.hal.AllocateCommonBufferWithBounds(
        DmaAdapter,
        MinimumAddress,
        MaximumAddress,
        length,
        Flags,
        CacheType,
        PreferredNode,
      );
    if (ledger === undefined) return allocate(Length);
    const largePage = Number.isInteger(Flags) && (Flags & DOMAIN_COMMON_BUFFER_LARGE_PAGE) !== 0;
    return this.fencedAllocation(ledger, Length, !largePage, allocate);
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
    const ledger = this.enter(DmaAdapter, "AllocateCommonBufferVector");
    if (ledger === DROP) return { Status: STATUS_INVALID_PARAMETER, VectorOut: undefined };
    const stack = ledger === undefined ? "" : this.verifier.stack();
    const result = this.hal.AllocateCommonBufferVector(
      DmaAdapter,
      LowAddress,
      HighAddress,
      CacheType,
      IdealNode,
      Flags,
      NumberOfElements,
      SizeOfElements,
    );
    if (ledger !== undefined && NT_SUCCESS(result.Status) && result.VectorOut !== undefined) {
      ledger.vectors.set(result.VectorOut, { elementSize: SizeOfElements, stack, elements: new Map() });
      ledger.commonBuffers.allocated++;
    }
    return result;
  }

  GetCommonBufferFromVectorByIndex(
    DmaAdapter: DMA_ADAPTER,
    VectorIn: DMA_COMMON_BUFFER_VECTOR,
    Index: number,
  ): { readonly VirtualAddressOut: PVOID; readonly LogicalAddressOut: PHYSICAL_ADDRESS } {
    const ledger = this.enter(DmaAdapter, "GetCommonBufferFromVectorByIndex");
    if (ledger === DROP) return { VirtualAddressOut: 0, LogicalAddressOut: 0 };
    const result = this.hal.GetCommonBufferFromVectorByIndex(DmaAdapter, VectorIn, Index);
    const vector = ledger?.vectors.get(VectorIn);
    if (vector !== undefined) {
      vector.elements.set(Index, { address: result.LogicalAddressOut, length: vector.elementSize });
    }
    return result;
  }

  FreeCommonBufferFromVector(
    DmaAdapter: DMA_ADAPTER,
    VectorIn: DMA_COMMON_BUFFER_VECTOR,
    Index: number,
  ): void {
    const ledger = this.enter(DmaAdapter, "FreeCommonBufferFromVector");
    if (ledger === DROP) return;
    this.hal.FreeCommonBufferFromVector(DmaAdapter, VectorIn, Index);
    ledger?.vectors.get(VectorIn)?.elements.delete(Index);
  }

  FreeCommonBufferVector(DmaAdapter: DMA_ADAPTER, VectorIn: DMA_COMMON_BUFFER_VECTOR): void {
    const ledger = this.enter(DmaAdapter, "FreeCommonBufferVector");
    if (ledger === DROP) return;
    this.hal.FreeCommonBufferVector(DmaAdapter, VectorIn);
    if (ledger?.vectors.delete(VectorIn)) ledger.commonBuffers.freed++;
  }

  CreateCommonBufferFromMdl(
    DmaAdapter: DMA_ADAPTER,
    Mdl: MDL,
    ExtendedConfigs: readonly DMA_COMMON_BUFFER_EXTENDED_CONFIGURATION[],
  ): { readonly Status: NTSTATUS; readonly LogicalAddress: PHYSICAL_ADDRESS } {
    const member = "CreateCommonBufferFromMdl";
    const ledger = this.enter(DmaAdapter, member);
    if (ledger === DROP) return { Status: STATUS_INVALID_PARAMETER, LogicalAddress: 0 };
    if (ledger === undefined || !isLiveMdl(Mdl))
      return this.hal.CreateCommonBufferFromMdl(DmaAdapter, Mdl, ExtendedConfigs);
    if (!Mdl.resident) {
      this.note(ledger, {
        member,
        code: VerifierCode.unlockedBuffer,
        p2: Mdl.id,
        p3: 0,
        p4: 0,
        explanation: `CreateCommonBufferFromMdl with MDL ${Mdl.id}, which is neither locked nor built for nonpaged pool`,
      });
    } else if (Mdl.systemVa === undefined) {
      this.note(ledger, {
        member,
        code: VerifierCode.notSystemMapped,
        p2: Mdl.id,
        p3: 0,
        p4: 0,
        explanation: `CreateCommonBufferFromMdl with MDL ${Mdl.id}, which is not mapped in system space (MmGetSystemAddressForMdlSafe first)`,
      });
    }
    const stack = this.verifier.stack();
    const result = this.hal.CreateCommonBufferFromMdl(DmaAdapter, Mdl, ExtendedConfigs);
    if (NT_SUCCESS(result.Status) && Mdl.systemVa !== undefined) {
      const section = Array.isArray(ExtendedConfigs)
        ? ExtendedConfigs.find((config) => config?.ConfigType === CommonBufferConfigTypeSubSection)
        : undefined;
      const sub = section?.ConfigType === CommonBufferConfigTypeSubSection ? section.SubSection : undefined;
      this.rememberBuffer(ledger, {
        adapter: ledger.id,
        virtualAddress: Mdl.systemVa + (sub?.Offset ?? 0),
        logicalAddress: result.LogicalAddress,
        length: sub?.Length ?? Mdl.byteCount,
        fenced: false,
        stack,
      });
    }
    return result;
  }

  // ------------------------------------------------------------------ checks

  /** The adapter: NULL (0x19), released (0x18), out of scope (undefined: pass through), and the IRQL (0x13). */
  private enter(value: DMA_ADAPTER, name: DmaOperationName): AdapterLedger | undefined | typeof DROP {
    if (value === undefined || value === null) {
      if (this.verifier.defaultMode === "off") return undefined;
      this.verifier.violate(undefined, {
        member: name,
        code: VerifierCode.nullAdapter,
        p2: 0,
        p3: 0,
        p4: 0,
        explanation: `${name} called with a NULL DMA_ADAPTER`,
      });
      this.verifier.dropped();
      return DROP;
    }
    if (!(value instanceof AdapterObject)) return undefined;
    const ledger = this.verifier.ledgerOf(value);
    if (ledger === undefined) return undefined;
    if (ledger.released) {
      return this.refuse(ledger, {
        member: name,
        code: VerifierCode.releasedAdapter,
        p2: ledger.id,
        p3: 0,
        p4: 0,
        explanation: `${name} on adapter ${ledger.id}, which PutDmaAdapter already released`,
      })
        ? DROP
        : undefined;
    }
    const member = MEMBERS.get(name)!;
    if (member.version > value.capabilities.tableVersion || OWN_IRQL_CODE.has(name)) return ledger;
    const irql = this.scheduler.irql;
    let rule = 0;
    let level = 0;
    if (member.irql === "passive" && irql !== PASSIVE_LEVEL)
      [rule, level] = [IrqlRule.mustEqual, PASSIVE_LEVEL];
    else if (member.irql === "dispatch" && irql !== DISPATCH_LEVEL)
      [rule, level] = [IrqlRule.mustEqual, DISPATCH_LEVEL];
    else if (member.irql === "at-most-dispatch" && irql > DISPATCH_LEVEL)
      [rule, level] = [IrqlRule.atMost, DISPATCH_LEVEL];
    if (rule === 0) return ledger;
    const dropped = this.refuse(ledger, {
      member: name,
      code: VerifierCode.wrongIrql,
      p2: rule,
      p3: level,
      p4: irql,
      explanation: `${name} called at IRQL ${irql}; its WDK page requires ${rule === IrqlRule.mustEqual ? "" : "<= "}${level === PASSIVE_LEVEL ? "PASSIVE_LEVEL" : "DISPATCH_LEVEL"}`,
    });
    return dropped ? DROP : ledger;
  }

  /** A violation the HAL would not survive: the caller drops the call (log mode) after it; always true. */
  private refuse(ledger: AdapterLedger, report: ViolationReport): boolean {
    this.verifier.violate(ledger, report);
    this.verifier.dropped();
    return true;
  }

  /** A violation the HAL survives: recorded, and the call goes on. */
  private note(ledger: AdapterLedger, report: ViolationReport): void {
    this.verifier.violate(ledger, report);
  }

  /** `refuse` when `fatal`, else `note`: true when the call is dropped. */
  private refuseIf(fatal: boolean, ledger: AdapterLedger, report: ViolationReport): boolean {
    if (fatal) return this.refuse(ledger, report);
    this.note(ledger, report);
    return false;
  }

  private unlocked(ledger: AdapterLedger, member: string, mdl: Mdl): boolean {
    if (mdl.resident) return false;
    return this.refuse(ledger, {
      member,
      code: VerifierCode.unlockedBuffer,
      p2: mdl.id,
      p3: 0,
      p4: 0,
      explanation: `${member} on MDL ${mdl.id}, whose pages are neither locked (MmProbeAndLockPages) nor built for nonpaged pool: they may be paged out under the transfer`,
    });
  }

  /** The whole chain must be resident, as the HAL requires of Get/Build and the Ex routines. */
  private unlockedChain(ledger: AdapterLedger, member: string, head: Mdl): boolean {
    for (let mdl: Mdl | undefined = head; mdl !== undefined; mdl = mdl.next) {
      if (!mdl.resident) return this.unlocked(ledger, member, mdl);
    }
    return false;
  }

  private addressNotInMdl(ledger: AdapterLedger, member: string, mdl: Mdl, va: number): boolean {
    return this.refuse(ledger, {
      member,
      code: VerifierCode.addressNotInMdl,
      p2: parameter(va),
      p3: mdl.id,
      p4: 0,
      explanation: `${member}: CurrentVa ${formatAddress(va)} is not inside MDL ${mdl.id} (${formatAddress(mdl.virtualAddress)}+${mdl.byteCount})`,
    });
  }

  private zeroLength(ledger: AdapterLedger, member: string, mdl: Mdl): boolean {
    return this.refuse(ledger, {
      member,
      code: VerifierCode.zeroLengthMap,
      p2: mdl.id,
      p3: 0,
      p4: 0,
      explanation: `${member} of zero bytes of MDL ${mdl.id}`,
    });
  }

  /** 0x24: the length runs `overrun` bytes past the MDL (chain). */
  private beyondMdl(ledger: AdapterLedger, member: string, mdl: Mdl, overrun: number): boolean {
    return this.refuse(ledger, {
      member,
      code: VerifierCode.insufficientBuffer,
      p2: overrun,
      p3: mdl.id,
      p4: 0,
      explanation: `${member}: the length runs ${overrun} bytes past the end of MDL ${mdl.id}${mdl.next === undefined ? "" : "'s chain"}`,
    });
  }

  /** 0x15: a request for more registers than IoGetDmaAdapter allowed (the HAL refuses it). */
  private overMaximum(ledger: AdapterLedger, member: string, registers: number): boolean {
    const maximum = ledger.adapter.capabilities.numberOfMapRegisters;
    if (registers <= maximum) return false;
    this.note(ledger, {
      member,
      code: VerifierCode.overMaximumMapRegisters,
      p2: registers,
      p3: maximum,
      p4: 0,
      explanation: `${member} asks for ${registers} map registers; IoGetDmaAdapter gave adapter ${ledger.id} at most ${maximum} (split the transfer)`,
    });
    return true;
  }

  /**
   * Register room for a piece of `needed` registers. With nothing mapped since the last flush, a
   * non-scatter/gather piece larger than the grant is 0x0C (a scatter/gather piece is cut to
   * fit). With pieces still mapped, a piece that does not fit is 0x0D: the driver did not flush
   * the last transfer. A V3 MapTransferEx must always follow a flush (`exclusive`).
   */
  private registersExhausted(
    ledger: AdapterLedger,
    member: string,
    file: VerifiedFile,
    needed: number,
    length: number,
    exclusive: boolean,
  ): boolean {
    const free = file.count - file.used;
    const scatterGather = ledger.adapter.capabilities.scatterGather;
    if (
      file.pieces.length > 0 &&
      (exclusive || (Number.isFinite(free) && (scatterGather ? free === 0 : needed > free)))
    ) {
      return this.refuse(ledger, {
        member,
        code: VerifierCode.notFlushed,
        p2: file.bytesMapped + length,
        p3: Number.isFinite(file.count) ? file.count * PAGE_SIZE : 0,
        p4: 0,
        explanation: `${member} while ${file.bytesMapped} bytes (${file.pieces.length} pieces) mapped with MapRegisterBase #${file.id} were never flushed: FlushAdapterBuffers${exclusive ? "Ex" : ""} must end each transfer`,
      });
    }
    if (file.pieces.length === 0 && !scatterGather && !exclusive && needed > file.count) {
      return this.refuse(ledger, {
        member,
        code: VerifierCode.tooManyMapRegistersAtOnce,
        p2: needed,
        p3: file.count,
        p4: 0,
        explanation: `${member} of ${length} bytes needs ${needed} map registers; MapRegisterBase #${file.id} has ${file.count}`,
      });
    }
    return false;
  }

  /** Checks of a new mapping that the HAL survives: cache alignment (non-coherent) and double mapping. */
  private checkMapping(ledger: AdapterLedger, member: string, request: MappingRequest): void {
    for (const segment of chainSegments(request.mdl, request.offset, request.length)) {
      const offset = segment.currentVa - segment.mdl.virtualAddress;
      const range = {
        mdl: segment.mdl,
        offset,
        length: segment.length,
        writeToDevice: request.writeToDevice,
      };
      if (!this.coherent && !request.writeToDevice) this.checkCacheAlignment(ledger, member, segment);
      const other = this.verifier.inFlight.conflict(range);
      if (other === undefined) continue;
      const otherVa = other.mdl.virtualAddress + other.offset;
      this.note(ledger, {
        member,
        code: VerifierCode.doubleMapping,
        p2: segment.currentVa,
        p3: segment.currentVa + segment.length - 1,
        p4: otherVa,
        explanation: `${member} maps ${formatAddress(segment.currentVa)}-${formatAddress(segment.currentVa + segment.length - 1)} (MDL ${segment.mdl.id}) while ${formatAddress(otherVa)}+${other.length} (MDL ${other.mdl.id}, adapter ${other.adapter}) is still mapped over the same memory and one of them lets the device write`,
      });
      return;
    }
  }

  /** 0x1F/4-5: on a non-coherent machine, a buffer the device writes must own its cache lines. */
  private checkCacheAlignment(ledger: AdapterLedger, member: string, segment: MdlSegment): void {
    if (segment.currentVa % CACHE_LINE_SIZE !== 0) {
      this.note(ledger, {
        member,
        code: VerifierCode.invalidBuffer,
        p2: InvalidBuffer.vaNotCacheAligned,
        p3: segment.currentVa,
        p4: segment.mdl.id,
        explanation: `${member}: the device will write ${formatAddress(segment.currentVa)}, which is not aligned to a ${CACHE_LINE_SIZE}-byte cache line on this non-coherent machine: invalidating its first line also hits the neighbour's data`,
      });
    } else if (segment.length % CACHE_LINE_SIZE !== 0) {
      this.note(ledger, {
        member,
        code: VerifierCode.invalidBuffer,
        p2: InvalidBuffer.lengthNotCacheAligned,
        p3: segment.length,
        p4: segment.mdl.id,
        explanation: `${member}: the device will write ${segment.length} bytes, not a multiple of the ${CACHE_LINE_SIZE}-byte cache line on this non-coherent machine`,
      });
    }
  }

  /**
   * The flush's checks: registers never mapped (0x20), nothing mapped where it flushes (0x16), a
   * range that does not match the pieces (dma-debug's sync outside the mapping / unmap of another
   * size), and the direction (dma-debug's unmap with another direction).
   */
  private checkFlush(
    ledger: AdapterLedger,
    member: string,
    file: VerifiedFile,
    segments: readonly MdlSegment[],
    write: boolean,
    currentVa: number,
  ): void {
    const length = segments.reduce((sum, segment) => sum + segment.length, 0);
    const firstMdl = segments[0]!.mdl;
    if (!file.everMapped) {
      this.note(ledger, {
        member,
        code: VerifierCode.flushNeverMapped,
        p2: file.id,
        p3: currentVa,
        p4: firstMdl.id,
        explanation: `${member} with MapRegisterBase #${file.id}, with which nothing was ever mapped`,
      });
      return;
    }
    let covered = 0;
    let overlapped = 0;
    let partial: MappedPiece | undefined;
    let otherDirection: MappedPiece | undefined;
    for (const segment of segments) {
      const start = segment.currentVa - segment.mdl.virtualAddress;
      const end = start + segment.length;
      for (const piece of file.pieces) {
        if (piece.mdl !== segment.mdl || piece.offset >= end || piece.offset + piece.length <= start)
          continue;
        overlapped++;
        covered += Math.min(end, piece.offset + piece.length) - Math.max(start, piece.offset);
        if (piece.offset < start || piece.offset + piece.length > end) partial ??= piece;
        if (piece.writeToDevice !== write) otherDirection ??= piece;
      }
    }
    if (overlapped === 0) {
      this.note(ledger, {
        member,
        code: VerifierCode.flushUnmappedBuffer,
        p2: file.id,
        p3: currentVa,
        p4: length,
        explanation: `${member} of ${formatAddress(currentVa)}+${length}: nothing is mapped there with MapRegisterBase #${file.id} (flushed already, or never mapped)`,
      });
      return;
    }
    if (covered < length || partial !== undefined) {
      this.note(ledger, {
        member,
        code: VerifierCode.syncOutsideMapping,
        p2: currentVa,
        p3: length,
        p4: covered,
        explanation:
          partial === undefined
            ? `${member} of ${formatAddress(currentVa)}+${length}, but only ${covered} of those bytes are mapped`
            : `${member} of ${formatAddress(currentVa)}+${length} cuts the piece mapped at ${formatAddress(partial.mdl.virtualAddress + partial.offset)}+${partial.length}: flush exactly what MapTransfer mapped, from its initial CurrentVa`,
      });
    }
    if (otherDirection !== undefined) {
      this.note(ledger, {
        member,
        code: VerifierCode.directionMismatch,
        p2: Number(otherDirection.writeToDevice),
        p3: Number(write),
        p4: currentVa,
        explanation: `${member}(WriteToDevice ${write ? "TRUE" : "FALSE"}) of a piece mapped with WriteToDevice ${otherDirection.writeToDevice ? "TRUE" : "FALSE"}: ${otherDirection.writeToDevice ? "bounced data is copied back over the driver's buffer" : "what the device wrote into bounce pages is never copied back"}`,
      });
    }
  }

  /** 0x10: registers given back while pieces are still mapped in them. */
  private checkStillMapped(ledger: AdapterLedger, member: string, file: VerifiedFile): void {
    if (file.pieces.length === 0) return;
    this.note(ledger, {
      member,
      code: VerifierCode.freeMappedRegisters,
      p2: file.used,
      p3: file.bytesMapped,
      p4: 0,
      explanation: `${member} frees MapRegisterBase #${file.id} while ${file.used} of its registers still map ${file.bytesMapped} bytes: FlushAdapterBuffers first`,
    });
  }

  private channelNotHeld(ledger: AdapterLedger, member: string): boolean {
    return this.refuse(ledger, {
      member,
      code: VerifierCode.channelDoubleFree,
      p2: 1,
      p3: ledger.id,
      p4: 0,
      explanation: `${member} on adapter ${ledger.id}, which holds no adapter channel (${ledger.adapterChannels.allocated} allocated, ${ledger.adapterChannels.freed} freed${ledger.channel === "running" ? "; its AdapterControl routine is still running" : ""})`,
    });
  }

  /** 0x07-0x0A at PutDmaAdapter, in the order the codes go. */
  private checkLeftovers(ledger: AdapterLedger): void {
    const member = "PutDmaAdapter";
    const outstanding = ledger.outstanding();
    const left = (code: number, count: number, what: string): void => {
      if (count === 0) return;
      this.note(ledger, {
        member,
        code,
        p2: ledger.id,
        p3: count,
        p4: 0,
        explanation: `PutDmaAdapter of adapter ${ledger.id} with ${count} ${what} still allocated: they leak`,
        allocations: outstanding,
      });
    };
    left(VerifierCode.leftoverCommonBuffers, ledger.buffers.size + ledger.vectors.size, "common buffers");
    left(VerifierCode.leftoverChannels, ledger.channelsOutstanding, "adapter channels");
    left(VerifierCode.leftoverMapRegisters, ledger.mapRegistersHeld, "map registers");
    left(VerifierCode.leftoverScatterGatherLists, ledger.lists.size, "scatter/gather lists");
  }

  /**
   * Get- and BuildScatterGatherList alike: check the range against the MDL, then hand the HAL a
   * wrapper of the driver's routine that books the list before the driver sees it.
   */
  private verifyList(
    ledger: AdapterLedger | undefined,
    member: string,
    DeviceObject: DEVICE_OBJECT,
    Mdl: MDL,
    CurrentVa: PVOID,
    Length: number,
    ExecutionRoutine: DRIVER_LIST_CONTROL,
    WriteToDevice: boolean,
    forward: (routine: DRIVER_LIST_CONTROL) => NTSTATUS,
  ): NTSTATUS {
    if (ledger === undefined || !isLiveMdl(Mdl)) return forward(ExecutionRoutine);
    const request = this.listRange(ledger, member, Mdl, CurrentVa, Length, WriteToDevice);
    if (request === DROP) return STATUS_INVALID_PARAMETER;
    if (typeof ExecutionRoutine !== "function" || !isDeviceObject(DeviceObject)) {
      return forward(ExecutionRoutine);
    }
    const stack = this.verifier.stack();
    return forward((device, irp, list, context) => {
      this.listGranted(ledger, request, list, stack);
      ExecutionRoutine(device, irp, list, context);
    });
  }

  /**
   * Get/BuildScatterGatherList's range: CurrentVa in the first MDL (0x1F/1 before it, 0x1F/2
   * after it), a length (0x21), within the chain (0x24), resident (0x0E); then the checks the HAL
   * survives. DROP: log mode drops the call.
   */
  private listRange(
    ledger: AdapterLedger,
    member: string,
    mdl: Mdl,
    currentVa: number,
    length: number,
    writeToDevice: boolean,
  ): MappingRequest | typeof DROP {
    if (this.unlockedChain(ledger, member, mdl)) return DROP;
    const offset = currentVa - mdl.virtualAddress;
    if (!Number.isSafeInteger(offset) || offset < 0 || offset >= mdl.byteCount) {
      const before = !Number.isSafeInteger(offset) || offset < 0;
      this.refuse(ledger, {
        member,
        code: VerifierCode.invalidBuffer,
        p2: before ? InvalidBuffer.vaBeforeMdl : InvalidBuffer.vaAfterMdl,
        p3: parameter(currentVa),
        p4: mdl.id,
        explanation: `${member}: CurrentVa ${formatAddress(currentVa)} is ${before ? "before" : "after"} the first MDL (${mdl.id}: ${formatAddress(mdl.virtualAddress)}+${mdl.byteCount})`,
      });
      return DROP;
    }
    if (!isUlong(length) || length === 0) {
      this.zeroLength(ledger, member, mdl);
      return DROP;
    }
    const total = chainLength(mdl);
    if (offset + length > total) {
      this.beyondMdl(ledger, member, mdl, offset + length - total);
      return DROP;
    }
    const request: MappingRequest = { mdl, offset, length, writeToDevice: Boolean(writeToDevice) };
    this.overMaximum(ledger, member, chainMapRegisters(chainSegments(mdl, offset, length)));
    this.checkMapping(ledger, member, request);
    return request;
  }

  private listRequestEx(
    DmaAdapter: DMA_ADAPTER,
    member: "GetScatterGatherListEx" | "BuildScatterGatherListEx",
    Mdl: MDL,
    Offset: number,
    Length: number,
    WriteToDevice: boolean,
    ExecutionRoutine: DRIVER_LIST_CONTROL | undefined,
    forward: (routine: DRIVER_LIST_CONTROL | undefined) => {
      readonly Status: NTSTATUS;
      readonly ScatterGatherList: SCATTER_GATHER_LIST | undefined;
    },
  ): { readonly Status: NTSTATUS; readonly ScatterGatherList: SCATTER_GATHER_LIST | undefined } {
    const ledger = this.enter(DmaAdapter, member);
    if (ledger === DROP) return { Status: STATUS_INVALID_PARAMETER, ScatterGatherList: undefined };
    if (ledger === undefined || !isLiveMdl(Mdl)) return forward(ExecutionRoutine);
    if (this.unlockedChain(ledger, member, Mdl))
      return { Status: STATUS_INVALID_PARAMETER, ScatterGatherList: undefined };
    if (
      !validChainRange(Mdl, Offset, Length) ||
      (ExecutionRoutine !== undefined && typeof ExecutionRoutine !== "function")
    ) {
      return forward(ExecutionRoutine);
    }
    const request: MappingRequest = {
      mdl: Mdl,
      offset: Offset,
      length: Length,
      writeToDevice: Boolean(WriteToDevice),
    };
    this.overMaximum(ledger, member, chainMapRegisters(chainSegments(Mdl, Offset, Length)));
    this.checkMapping(ledger, member, request);
    const stack = this.verifier.stack();
    let recorded = false;
    const routine = ExecutionRoutine;
    const result = forward(
      routine === undefined
        ? undefined
        : (device, irp, list, context) => {
            recorded = true;
            this.listGranted(ledger, request, list, stack);
            routine(device, irp, list, context);
          },
    );
    if (!recorded && NT_SUCCESS(result.Status) && result.ScatterGatherList !== undefined) {
      // Synchronous without a routine: the list is returned and the HAL keeps the channel for it.
      this.listGranted(ledger, request, result.ScatterGatherList, stack);
      ledger.channel = "held";
      ledger.channelStack = stack;
      ledger.adapterChannels.allocated++;
    }
    return result;
  }

  // ------------------------------------------------------------------ books

  private channelRequest(
    ledger: AdapterLedger,
    deviceObject: DEVICE_OBJECT,
    registers: number,
  ): ChannelRequest {
    return { ledger, stack: this.verifier.stack(), registers, deviceObject, pending: false, ran: false };
  }

  private afterChannelRequest(request: ChannelRequest, status: NTSTATUS): void {
    if (status === STATUS_SUCCESS && !request.ran) {
      request.pending = true;
      request.ledger.pendingChannels++;
    }
  }

  /** An AdapterControl routine runs: the channel and registers are granted; its action decides what stays. */
  private runAdapterControl(
    request: ChannelRequest,
    base: MAP_REGISTER_BASE | undefined,
    routine: () => IO_ALLOCATION_ACTION,
  ): IO_ALLOCATION_ACTION {
    const { ledger } = request;
    if (request.pending) {
      request.pending = false;
      ledger.pendingChannels--;
    }
    request.ran = true;
    ledger.channel = "running";
    ledger.channelStack = request.stack;
    ledger.adapterChannels.allocated++;
    let file: VerifiedFile | undefined;
    if (base !== undefined) {
      file = new VerifiedFile(this.verifier.serial(), base, request.registers, "channel", request.stack);
      ledger.files.set(base, file);
      ledger.mapRegisters.allocated += request.registers;
    }
    // Until the routine has returned, the HAL treats the channel as kept (a throwing routine keeps it).
    const keep = (): void => {
      ledger.channel = "held";
      ledger.channelFile = file;
    };
    let action: IO_ALLOCATION_ACTION;
    try {
      action = routine();
    } catch (error) {
      keep();
      throw error;
    }
    keep();
    if (action === DeallocateObject) {
      if (file !== undefined) this.checkStillMapped(ledger, "AdapterControl (DeallocateObject)", file);
      this.channelReleased(ledger);
      if (file !== undefined) this.releaseFile(ledger, file);
    } else if (action === DeallocateObjectKeepRegisters) {
      this.channelReleased(ledger);
      if (file !== undefined) file.owner = "driver";
    }
    return action;
  }

  /**
   * Gives the channel up around `call`: the books say so before the HAL runs, because freeing the
   * channel may grant it to a queued request inside the call, whose AdapterControl takes it again.
   */
  private releasingChannel(ledger: AdapterLedger, call: () => void): void {
    const file = ledger.channelFile;
    this.channelReleased(ledger);
    try {
      call();
    } catch (error) {
      ledger.channel = "held";
      ledger.channelFile = file;
      ledger.adapterChannels.freed--;
      throw error;
    }
  }

  private channelReleased(ledger: AdapterLedger): void {
    ledger.channel = "idle";
    ledger.channelFile = undefined;
    ledger.adapterChannels.freed++;
  }

  private releaseFile(ledger: AdapterLedger, file: VerifiedFile): void {
    for (const piece of file.pieces) this.verifier.inFlight.remove(piece);
    file.pieces.length = 0;
    file.used = 0;
    file.bytesMapped = 0;
    if (file.base !== undefined) {
      ledger.files.delete(file.base);
      ledger.freedBases.add(file.base);
    }
    ledger.mapRegisters.freed += file.count;
  }

  /** The verifier's file for a MapRegisterBase; undefined when the HAL must judge it (freed, foreign, NULL but needed). */
  private fileOf(ledger: AdapterLedger, base: MAP_REGISTER_BASE | undefined): VerifiedFile | undefined {
    if (base !== undefined) return ledger.files.get(base);
    return ledger.adapter.strategy.needsMapRegisters(ledger.adapter) ? undefined : ledger.unmappedFile;
  }

  private mapped(
    ledger: AdapterLedger,
    file: VerifiedFile,
    segments: readonly MdlSegment[],
    write: boolean,
    logical: readonly LogicalRange[],
  ): void {
    let position = 0;
    for (const segment of segments) {
      const piece: MappedPiece = {
        mdl: segment.mdl,
        offset: segment.currentVa - segment.mdl.virtualAddress,
        length: segment.length,
        writeToDevice: write,
        adapter: ledger.id,
        registers: spanPages(segment.currentVa, segment.length),
        logical: sliceRanges(logical, position, segment.length),
      };
      position += segment.length;
      file.pieces.push(piece);
      file.used += piece.registers;
      file.bytesMapped += piece.length;
      this.verifier.inFlight.add(piece);
    }
    file.everMapped = true;
  }

  /** The flush took pieces down: as the HAL does (remapping: pieces inside the range; bounce path: every piece it touches). */
  private unmapped(ledger: AdapterLedger, file: VerifiedFile, segments: readonly MdlSegment[]): void {
    const touching = !ledger.adapter.strategy.remapping;
    const kept: MappedPiece[] = [];
    for (const piece of file.pieces) {
      const gone = segments.some((segment) => {
        const start = segment.currentVa - segment.mdl.virtualAddress;
        const end = start + segment.length;
        if (piece.mdl !== segment.mdl) return false;
        return touching
          ? piece.offset < end && start < piece.offset + piece.length
          : piece.offset >= start && piece.offset + piece.length <= end;
      });
      if (!gone) {
        kept.push(piece);
        continue;
      }
      file.bytesMapped -= piece.length;
      this.verifier.inFlight.remove(piece);
    }
    file.pieces.length = 0;
    file.pieces.push(...kept);
    if (kept.length === 0) {
      file.used = 0;
      file.bytesMapped = 0;
    }
  }

  private listGranted(
    ledger: AdapterLedger,
    request: MappingRequest,
    list: SCATTER_GATHER_LIST,
    stack: string,
  ): void {
    const segments = chainSegments(request.mdl, request.offset, request.length);
    const ranges: InFlightRange[] = segments.map((segment) => ({
      mdl: segment.mdl,
      offset: segment.currentVa - segment.mdl.virtualAddress,
      length: segment.length,
      writeToDevice: request.writeToDevice,
      adapter: ledger.id,
    }));
    for (const range of ranges) this.verifier.inFlight.add(range);
    const registers = ledger.adapter.strategy.needsMapRegisters(ledger.adapter)
      ? chainMapRegisters(segments)
      : 0;
    ledger.lists.set(list, {
      id: this.verifier.serial(),
      list,
      ranges,
      writeToDevice: request.writeToDevice,
      registers,
      stack,
    });
    ledger.scatterGatherLists.allocated++;
    ledger.mapRegisters.allocated += registers;
  }

  /**
   * A common buffer with a guard page on each side (when `fence` and the options allow it): the
   * HAL allocates the whole, the driver gets the middle. If the larger allocation fails the
   * buffer is allocated unfenced rather than not at all.
   */
  private fencedAllocation(
    ledger: AdapterLedger,
    length: number,
    fence: boolean,
    allocate: (length: number) => CommonBufferResult,
  ): CommonBufferResult {
    const stack = this.verifier.stack();
    const fenced =
      fence &&
      this.verifier.options.guardCommonBuffers &&
      isUlong(length) &&
      length > 0 &&
      fencedLength(length) < ULONG_LIMIT;
    if (fenced) {
      const outer = allocate(fencedLength(length));
      if (outer.VirtualAddress !== 0) {
        const buffer: VerifiedCommonBuffer = {
          adapter: ledger.id,
          virtualAddress: outer.VirtualAddress + PAGE_SIZE,
          logicalAddress: outer.LogicalAddress + PAGE_SIZE,
          length,
          fenced: true,
          stack,
        };
        this.verifier.fence.build(buffer.virtualAddress, length);
        this.rememberBuffer(ledger, buffer);
        return { VirtualAddress: buffer.virtualAddress, LogicalAddress: buffer.logicalAddress };
      }
    }
    const result = allocate(length);
    if (result.VirtualAddress !== 0) {
      this.rememberBuffer(ledger, {
        adapter: ledger.id,
        virtualAddress: result.VirtualAddress,
        logicalAddress: result.LogicalAddress,
        length,
        fenced: false,
        stack,
      });
    }
    return result;
  }

  private rememberBuffer(ledger: AdapterLedger, buffer: VerifiedCommonBuffer): void {
    ledger.buffers.set(buffer.virtualAddress, buffer);
    ledger.freedBuffers.delete(buffer.virtualAddress);
    ledger.commonBuffers.allocated++;
    this.verifier.addBuffer(buffer);
  }

  private forgetBuffer(buffer: VerifiedCommonBuffer): void {
    this.verifier.removeBuffer(buffer.virtualAddress);
    const owner = this.verifier.ledgerById(buffer.adapter);
    if (owner === undefined) return;
    owner.buffers.delete(buffer.virtualAddress);
    owner.freedBuffers.add(buffer.virtualAddress);
    owner.commonBuffers.freed++;
  }
}

function isUlong(value: unknown): value is number {
  return Number.isInteger(value) && (value as number) >= 0 && (value as number) < ULONG_LIMIT;
}

function isDeviceObject(value: unknown): value is DEVICE_OBJECT {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as DEVICE_OBJECT).DeviceObjectExtension === "object"
  );
}

function isLiveMdl(value: unknown): value is Mdl {
  return value instanceof Mdl && !value.freed;
}

/** V3 Offset/Length: Offset in 0..N-1, Length in 1..N-Offset of the chain. */
function validChainRange(mdl: Mdl, offset: number, length: number): boolean {
  if (!Number.isSafeInteger(offset) || offset < 0 || !isUlong(length) || length === 0) return false;
  return offset + length <= chainLength(mdl);
}

/** A bug check parameter from a value that may not be a number. */
function parameter(value: unknown): number {
  return Number.isSafeInteger(value) && (value as number) >= 0 ? (value as number) : 0;
}

/** Bytes [start, start + length) of the concatenation of `ranges`, as logical ranges. */
function sliceRanges(ranges: readonly LogicalRange[], start: number, length: number): LogicalRange[] {
  const out: LogicalRange[] = [];
  let skip = start;
  let left = length;
  for (const range of ranges) {
    if (left === 0) break;
    if (skip >= range.length) {
      skip -= range.length;
      continue;
    }
    const take = Math.min(left, range.length - skip);
    out.push({ address: range.address + skip, length: take });
    left -= take;
    skip = 0;
  }
  return out;
}
