/**
 * Types of the version 3 DMA routines (Windows 8 and later), wdm.h names and values
 * (shared/reference/windows-dma-ddi.md section 1, "V3").
 */
export const DMA_ADAPTER_INFO_VERSION1 = 1;
export const DMA_TRANSFER_INFO_VERSION1 = 1;
export const DMA_TRANSFER_INFO_VERSION2 = 2;
/** Flag of the Ex allocation routines: run the callback now or fail; never queue. */
export const DMA_SYNCHRONOUS_CALLBACK = 0x1;
/** Flag of AllocateDomainCommonBuffer / WithBounds: 2 MiB (512-page) granularity. */
export const DOMAIN_COMMON_BUFFER_LARGE_PAGE = 0x1;
export const MM_ANY_NODE_OK = 0x80000000;
export type NODE_REQUIREMENT = number;

export const MmNonCached = 0;
export const MmCached = 1;
export const MmWriteCombined = 2;
export type MEMORY_CACHING_TYPE = number;

export const DmaComplete = 0;
export const DmaAborted = 1;
export const DmaError = 2;
export const DmaCancelled = 3;
export type DMA_COMPLETION_STATUS = number;

export interface DMA_ADAPTER_INFO {
  Version: number;
  V1: {
    ReadDmaCounterAvailable: boolean;
    ScatterGatherLimit: number;
    DmaAddressWidth: number;
    Flags: number;
    MinimumTransferUnit: number;
  };
}

export interface DMA_TRANSFER_INFO {
  Version: number;
  V1: { MapRegisterCount: number; ScatterGatherElementCount: number; ScatterGatherListSize: number };
  /** Version 2 adds LogicalPageCount. */
  V2: {
    MapRegisterCount: number;
    ScatterGatherElementCount: number;
    ScatterGatherListSize: number;
    LogicalPageCount: number;
  };
}

export function emptyDmaAdapterInfo(version = DMA_ADAPTER_INFO_VERSION1): DMA_ADAPTER_INFO {
  return {
    Version: version,
    V1: {
      ReadDmaCounterAvailable: false,
      ScatterGatherLimit: 0,
      DmaAddressWidth: 0,
      Flags: 0,
      MinimumTransferUnit: 0,
    },
  };
}

export function emptyDmaTransferInfo(version = DMA_TRANSFER_INFO_VERSION1): DMA_TRANSFER_INFO {
  return {
    Version: version,
    V1: { MapRegisterCount: 0, ScatterGatherElementCount: 0, ScatterGatherListSize: 0 },
    V2: { MapRegisterCount: 0, ScatterGatherElementCount: 0, ScatterGatherListSize: 0, LogicalPageCount: 0 },
  };
}

/**
 * The caller-allocated opaque transfer context (DMA_TRANSFER_CONTEXT_SIZE_V1 bytes in C). One per
 * pending allocation; it is also the cancel handle. `Reserved` is HAL-private.
 */
export class DMA_TRANSFER_CONTEXT {
  Reserved: unknown = undefined;
}

/** DMA_COMMON_BUFFER_EXTENDED_CONFIGURATION for CreateCommonBufferFromMdl. */
export const CommonBufferConfigTypeLogicalAddressLimits = 0;
export const CommonBufferConfigTypeSubSection = 1;
export const CommonBufferConfigTypeHardwareAccessPermissions = 2;
export const CommonBufferHardwareAccessReadOnly = 0;
export const CommonBufferHardwareAccessWriteOnly = 1;
export const CommonBufferHardwareAccessReadWrite = 2;

export type DMA_COMMON_BUFFER_EXTENDED_CONFIGURATION =
  | {
      ConfigType: typeof CommonBufferConfigTypeLogicalAddressLimits;
      LogicalAddressLimits: { Minimum: number; Maximum: number };
    }
  | { ConfigType: typeof CommonBufferConfigTypeSubSection; SubSection: { Offset: number; Length: number } }
  | { ConfigType: typeof CommonBufferConfigTypeHardwareAccessPermissions; HardwareAccessPermissions: number };

/** Opaque handles the HAL hands out. Drivers only pass them back. */
export interface DMA_COMMON_BUFFER_VECTOR {
  readonly kind: "DMA_COMMON_BUFFER_VECTOR";
}
export interface DMA_DOMAIN {
  readonly kind: "DMA_DOMAIN";
}
export interface MAP_REGISTER_BASE {
  readonly kind: "MAP_REGISTER_BASE";
}
