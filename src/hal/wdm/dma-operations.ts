/**
 * DMA_ADAPTER and DMA_OPERATIONS: the function table a driver gets from IoGetDmaAdapter, member
 * for member in wdm.h order (V1: 12, V2: 3, V3 and later: 24). Every member takes the adapter
 * first, as in C.
 *
 * How C maps to TypeScript, once for all members:
 * - Pointers to memory are numbers (virtual addresses; 0 is NULL). PHYSICAL_ADDRESS is a number.
 * - Pointers to objects (MDL, DEVICE_OBJECT, SCATTER_GATHER_LIST, handles) are objects;
 *   NULL is `undefined`.
 * - A routine with out-parameters returns a record named after them: its C return value under
 *   the name the WDK page gives it (`Status`, `VirtualAddress`, `LogicalAddress`...) and each
 *   out-parameter under its own name. In/out structures (DMA_ADAPTER_INFO) are passed and filled.
 * - Callbacks run synchronously inside the call when resources are free, later from a queue
 *   otherwise, exactly as the WDK pages say; always at DISPATCH_LEVEL.
 */
import type { DEVICE_DESCRIPTION } from "./device-description.js";
import type { DEVICE_OBJECT, IRP, MDL } from "./device-object.js";
import type {
  DMA_ADAPTER_INFO,
  DMA_COMMON_BUFFER_EXTENDED_CONFIGURATION,
  DMA_COMMON_BUFFER_VECTOR,
  DMA_COMPLETION_STATUS,
  DMA_DOMAIN,
  DMA_TRANSFER_CONTEXT,
  DMA_TRANSFER_INFO,
  MAP_REGISTER_BASE,
  MEMORY_CACHING_TYPE,
  NODE_REQUIREMENT,
} from "./dma-v3-types.js";
import type { IO_ALLOCATION_ACTION } from "./io-allocation-action.js";
import type { NTSTATUS } from "./ntstatus.js";
import type { SCATTER_GATHER_LIST } from "./scatter-gather-list.js";

export type PVOID = number;
export type PHYSICAL_ADDRESS = number;

export interface DMA_ADAPTER {
  /** Always 1, whatever table version the adapter has (WDK: callers cannot use it). */
  readonly Version: number;
  readonly Size: number;
  readonly DmaOperations: DMA_OPERATIONS;
}

export type DRIVER_CONTROL = (
  DeviceObject: DEVICE_OBJECT,
  Irp: IRP | undefined,
  MapRegisterBase: MAP_REGISTER_BASE | undefined,
  Context: unknown,
) => IO_ALLOCATION_ACTION;

export type DRIVER_LIST_CONTROL = (
  DeviceObject: DEVICE_OBJECT,
  Irp: IRP | undefined,
  ScatterGather: SCATTER_GATHER_LIST,
  Context: unknown,
) => void;

export type DMA_COMPLETION_ROUTINE = (
  DmaAdapter: DMA_ADAPTER,
  DeviceObject: DEVICE_OBJECT,
  CompletionContext: unknown,
  Status: DMA_COMPLETION_STATUS,
) => void;

export interface CommonBufferResult {
  /** NULL (0) on failure. */
  readonly VirtualAddress: PVOID;
  readonly LogicalAddress: PHYSICAL_ADDRESS;
}

export interface DMA_OPERATIONS {
  /** sizeof(DMA_OPERATIONS) of the version handed out: tells a caller which members exist. */
  readonly Size: number;
  // ---- Version 1 ----
  PutDmaAdapter(DmaAdapter: DMA_ADAPTER): void;
  AllocateCommonBuffer(DmaAdapter: DMA_ADAPTER, Length: number, CacheEnabled: boolean): CommonBufferResult;
  FreeCommonBuffer(
    DmaAdapter: DMA_ADAPTER,
    Length: number,
    LogicalAddress: PHYSICAL_ADDRESS,
    VirtualAddress: PVOID,
    CacheEnabled: boolean,
  ): void;
  AllocateAdapterChannel(
    DmaAdapter: DMA_ADAPTER,
    DeviceObject: DEVICE_OBJECT,
    NumberOfMapRegisters: number,
    ExecutionRoutine: DRIVER_CONTROL,
    Context: unknown,
  ): NTSTATUS;
  FlushAdapterBuffers(
    DmaAdapter: DMA_ADAPTER,
    Mdl: MDL,
    MapRegisterBase: MAP_REGISTER_BASE | undefined,
    CurrentVa: PVOID,
    Length: number,
    WriteToDevice: boolean,
  ): boolean;
  FreeAdapterChannel(DmaAdapter: DMA_ADAPTER): void;
  FreeMapRegisters(
    DmaAdapter: DMA_ADAPTER,
    MapRegisterBase: MAP_REGISTER_BASE | undefined,
    NumberOfMapRegisters: number,
  ): void;
  /** Length is in/out: the result's Length is the bytes actually mapped. */
  MapTransfer(
    DmaAdapter: DMA_ADAPTER,
    Mdl: MDL,
    MapRegisterBase: MAP_REGISTER_BASE | undefined,
    CurrentVa: PVOID,
    Length: number,
    WriteToDevice: boolean,
  ): { readonly LogicalAddress: PHYSICAL_ADDRESS; readonly Length: number };
  GetDmaAlignment(DmaAdapter: DMA_ADAPTER): number;
  ReadDmaCounter(DmaAdapter: DMA_ADAPTER): number;
  GetScatterGatherList(
    DmaAdapter: DMA_ADAPTER,
    DeviceObject: DEVICE_OBJECT,
    Mdl: MDL,
    CurrentVa: PVOID,
    Length: number,
    ExecutionRoutine: DRIVER_LIST_CONTROL,
    Context: unknown,
    WriteToDevice: boolean,
  ): NTSTATUS;
  PutScatterGatherList(
    DmaAdapter: DMA_ADAPTER,
    ScatterGather: SCATTER_GATHER_LIST,
    WriteToDevice: boolean,
  ): void;
  // ---- Version 2 ----
  CalculateScatterGatherList(
    DmaAdapter: DMA_ADAPTER,
    Mdl: MDL | undefined,
    CurrentVa: PVOID,
    Length: number,
  ): {
    readonly Status: NTSTATUS;
    readonly ScatterGatherListSize: number;
    readonly NumberOfMapRegisters: number;
  };
  /** The list is written into the caller's buffer [ScatterGatherBuffer, +ScatterGatherLength). */
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
  ): NTSTATUS;
  BuildMdlFromScatterGatherList(
    DmaAdapter: DMA_ADAPTER,
    ScatterGather: SCATTER_GATHER_LIST,
    OriginalMdl: MDL | undefined,
  ): { readonly Status: NTSTATUS; readonly TargetMdl: MDL | undefined };
  // ---- Version 3 ----
  GetDmaAdapterInfo(DmaAdapter: DMA_ADAPTER, AdapterInfo: DMA_ADAPTER_INFO): NTSTATUS;
  GetDmaTransferInfo(
    DmaAdapter: DMA_ADAPTER,
    Mdl: MDL,
    Offset: number,
    Length: number,
    WriteOnly: boolean,
    TransferInfo: DMA_TRANSFER_INFO,
  ): NTSTATUS;
  InitializeDmaTransferContext(DmaAdapter: DMA_ADAPTER, DmaTransferContext: DMA_TRANSFER_CONTEXT): NTSTATUS;
  AllocateCommonBufferEx(
    DmaAdapter: DMA_ADAPTER,
    MaximumAddress: PHYSICAL_ADDRESS | undefined,
    Length: number,
    CacheEnabled: boolean,
    PreferredNode: NODE_REQUIREMENT,
  ): CommonBufferResult;
  /** `WantMapRegisterBase` stands for a non-NULL MapRegisterBase out-pointer. */
  AllocateAdapterChannelEx(
    DmaAdapter: DMA_ADAPTER,
    DeviceObject: DEVICE_OBJECT,
    DmaTransferContext: DMA_TRANSFER_CONTEXT,
    NumberOfMapRegisters: number,
    Flags: number,
    ExecutionRoutine: DRIVER_CONTROL | undefined,
    ExecutionContext: unknown,
    WantMapRegisterBase: boolean,
  ): { readonly Status: NTSTATUS; readonly MapRegisterBase: MAP_REGISTER_BASE | undefined };
  ConfigureAdapterChannel(DmaAdapter: DMA_ADAPTER, FunctionNumber: number, Context: unknown): NTSTATUS;
  CancelAdapterChannel(
    DmaAdapter: DMA_ADAPTER,
    DeviceObject: DEVICE_OBJECT,
    DmaTransferContext: DMA_TRANSFER_CONTEXT,
  ): boolean;
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
  };
  /** `WantScatterGatherList` stands for a non-NULL ScatterGatherList out-pointer. */
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
  ): { readonly Status: NTSTATUS; readonly ScatterGatherList: SCATTER_GATHER_LIST | undefined };
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
  ): { readonly Status: NTSTATUS; readonly ScatterGatherList: SCATTER_GATHER_LIST | undefined };
  FlushAdapterBuffersEx(
    DmaAdapter: DMA_ADAPTER,
    Mdl: MDL,
    MapRegisterBase: MAP_REGISTER_BASE | undefined,
    Offset: number,
    Length: number,
    WriteToDevice: boolean,
  ): NTSTATUS;
  FreeAdapterObject(DmaAdapter: DMA_ADAPTER, AllocationAction: IO_ALLOCATION_ACTION): void;
  CancelMappedTransfer(DmaAdapter: DMA_ADAPTER, DmaTransferContext: DMA_TRANSFER_CONTEXT): NTSTATUS;
  AllocateDomainCommonBuffer(
    DmaAdapter: DMA_ADAPTER,
    DomainHandle: DMA_DOMAIN,
    MaximumAddress: PHYSICAL_ADDRESS | undefined,
    Length: number,
    Flags: number,
    CacheType: MEMORY_CACHING_TYPE | undefined,
    PreferredNode: NODE_REQUIREMENT,
  ): { readonly Status: NTSTATUS; readonly LogicalAddress: PHYSICAL_ADDRESS; readonly VirtualAddress: PVOID };
  FlushDmaBuffer(DmaAdapter: DMA_ADAPTER, Mdl: MDL, ReadOperation: boolean): NTSTATUS;
  JoinDmaDomain(DmaAdapter: DMA_ADAPTER, DomainHandle: DMA_DOMAIN): NTSTATUS;
  LeaveDmaDomain(DmaAdapter: DMA_ADAPTER): NTSTATUS;
  GetDmaDomain(DmaAdapter: DMA_ADAPTER): DMA_DOMAIN | undefined;
  AllocateCommonBufferWithBounds(
    DmaAdapter: DMA_ADAPTER,
    MinimumAddress: PHYSICAL_ADDRESS | undefined,
    MaximumAddress: PHYSICAL_ADDRESS | undefined,
    Length: number,
    Flags: number,
    CacheType: MEMORY_CACHING_TYPE | undefined,
    PreferredNode: NODE_REQUIREMENT,
  ): CommonBufferResult;
  AllocateCommonBufferVector(
    DmaAdapter: DMA_ADAPTER,
    LowAddress: PHYSICAL_ADDRESS,
    HighAddress: PHYSICAL_ADDRESS,
    CacheType: MEMORY_CACHING_TYPE,
    IdealNode: number,
    Flags: number,
    NumberOfElements: number,
    SizeOfElements: number,
  ): { readonly Status: NTSTATUS; readonly VectorOut: DMA_COMMON_BUFFER_VECTOR | undefined };
  GetCommonBufferFromVectorByIndex(
    DmaAdapter: DMA_ADAPTER,
    VectorIn: DMA_COMMON_BUFFER_VECTOR,
    Index: number,
  ): { readonly VirtualAddressOut: PVOID; readonly LogicalAddressOut: PHYSICAL_ADDRESS };
  FreeCommonBufferFromVector(
    DmaAdapter: DMA_ADAPTER,
    VectorIn: DMA_COMMON_BUFFER_VECTOR,
    Index: number,
  ): void;
  FreeCommonBufferVector(DmaAdapter: DMA_ADAPTER, VectorIn: DMA_COMMON_BUFFER_VECTOR): void;
  CreateCommonBufferFromMdl(
    DmaAdapter: DMA_ADAPTER,
    Mdl: MDL,
    ExtendedConfigs: readonly DMA_COMMON_BUFFER_EXTENDED_CONFIGURATION[],
  ): { readonly Status: NTSTATUS; readonly LogicalAddress: PHYSICAL_ADDRESS };
}

/** sizeof(DMA_OPERATIONS) on x64 per version: 8 + 8 * members. */
export const DMA_OPERATIONS_SIZE_V1 = 8 + 8 * 12;
export const DMA_OPERATIONS_SIZE_V2 = 8 + 8 * 15;
export const DMA_OPERATIONS_SIZE_V3 = 8 + 8 * 39;

/** What IoGetDmaAdapter returns: the adapter (undefined is NULL) and NumberOfMapRegisters. */
export interface IoGetDmaAdapterResult {
  readonly Adapter: DMA_ADAPTER | undefined;
  readonly NumberOfMapRegisters: number;
}

export type IoGetDmaAdapterRoutine = (
  PhysicalDeviceObject: DEVICE_OBJECT,
  DeviceDescription: DEVICE_DESCRIPTION,
) => IoGetDmaAdapterResult;
