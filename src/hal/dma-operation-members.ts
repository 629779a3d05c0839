/**
 * The 39 members of DMA_OPERATIONS in wdm.h order, with the table version that introduced each
 * and the IRQL its WDK page requires (reference section 1; "any" for CalculateScatterGatherList,
 * whose page allows every IRQL). Pages that leave the IRQL unstated (FlushDmaBuffer and the common
 * buffer vector routines) get the level their neighbours require: <= DISPATCH_LEVEL for lookups
 * and flushes, PASSIVE_LEVEL for what allocates or frees memory.
 */
import type { IrqlRequirement } from "./hal-bug-checks.js";
import type { DMA_OPERATIONS } from "./wdm/dma-operations.js";

export type DmaOperationName = Exclude<keyof DMA_OPERATIONS, "Size">;

export interface DmaOperationMember {
  readonly name: DmaOperationName;
  readonly version: 1 | 2 | 3;
  readonly irql: IrqlRequirement;
}

export const DMA_OPERATION_MEMBERS: readonly DmaOperationMember[] = [
  { name: "PutDmaAdapter", version: 1, irql: "at-most-dispatch" },
  { name: "AllocateCommonBuffer", version: 1, irql: "passive" },
  { name: "FreeCommonBuffer", version: 1, irql: "passive" },
  { name: "AllocateAdapterChannel", version: 1, irql: "dispatch" },
  { name: "FlushAdapterBuffers", version: 1, irql: "at-most-dispatch" },
  { name: "FreeAdapterChannel", version: 1, irql: "dispatch" },
  { name: "FreeMapRegisters", version: 1, irql: "dispatch" },
  { name: "MapTransfer", version: 1, irql: "at-most-dispatch" },
  { name: "GetDmaAlignment", version: 1, irql: "passive" },
  { name: "ReadDmaCounter", version: 1, irql: "at-most-dispatch" },
  { name: "GetScatterGatherList", version: 1, irql: "dispatch" },
  { name: "PutScatterGatherList", version: 1, irql: "dispatch" },
  { name: "CalculateScatterGatherList", version: 2, irql: "any" },
  { name: "BuildScatterGatherList", version: 2, irql: "dispatch" },
  { name: "BuildMdlFromScatterGatherList", version: 2, irql: "at-most-dispatch" },
  { name: "GetDmaAdapterInfo", version: 3, irql: "at-most-dispatch" },
  { name: "GetDmaTransferInfo", version: 3, irql: "at-most-dispatch" },
  { name: "InitializeDmaTransferContext", version: 3, irql: "at-most-dispatch" },
  { name: "AllocateCommonBufferEx", version: 3, irql: "passive" },
  { name: "AllocateAdapterChannelEx", version: 3, irql: "dispatch" },
  { name: "ConfigureAdapterChannel", version: 3, irql: "at-most-dispatch" },
  { name: "CancelAdapterChannel", version: 3, irql: "at-most-dispatch" },
  { name: "MapTransferEx", version: 3, irql: "at-most-dispatch" },
  { name: "GetScatterGatherListEx", version: 3, irql: "at-most-dispatch" },
  { name: "BuildScatterGatherListEx", version: 3, irql: "dispatch" },
  { name: "FlushAdapterBuffersEx", version: 3, irql: "at-most-dispatch" },
  { name: "FreeAdapterObject", version: 3, irql: "at-most-dispatch" },
  { name: "CancelMappedTransfer", version: 3, irql: "at-most-dispatch" },
  { name: "AllocateDomainCommonBuffer", version: 3, irql: "passive" },
  { name: "FlushDmaBuffer", version: 3, irql: "at-most-dispatch" },
  { name: "JoinDmaDomain", version: 3, irql: "passive" },
  { name: "LeaveDmaDomain", version: 3, irql: "passive" },
  { name: "GetDmaDomain", version: 3, irql: "passive" },
  { name: "AllocateCommonBufferWithBounds", version: 3, irql: "passive" },
  { name: "AllocateCommonBufferVector", version: 3, irql: "passive" },
  { name: "GetCommonBufferFromVectorByIndex", version: 3, irql: "at-most-dispatch" },
  { name: "FreeCommonBufferFromVector", version: 3, irql: "passive" },
  { name: "FreeCommonBufferVector", version: 3, irql: "passive" },
  { name: "CreateCommonBufferFromMdl", version: 3, irql: "passive" },
];

/** Offset of a member's pointer in the x64 table: Size (8 bytes with padding) then 8 per member. */
export function memberOffset(name: DmaOperationName): number {
  return 8 + 8 * DMA_OPERATION_MEMBERS.findIndex((member) => member.name === name);
}
