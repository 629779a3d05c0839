/**
 * The DMA_OPERATIONS table an adapter carries. Its members are those of the object bound to the
 * DmaOperations token (HalDmaOperations, or the verifier's decorator of it), bound to it, so a
 * driver always goes through whatever the container says; its Size is that of the table version IoGetDmaAdapter
 * handed out (V1, V2 or V3), the only way a driver can tell which members exist (reference
 * section 1). Every member is present: calling one beyond the version is caught by the
 * dispatcher as the driver bug it is, instead of failing as "not a function".
 */
import { DMA_OPERATION_MEMBERS } from "./dma-operation-members.js";
import {
  type DMA_OPERATIONS,
  DMA_OPERATIONS_SIZE_V1,
  DMA_OPERATIONS_SIZE_V2,
  DMA_OPERATIONS_SIZE_V3,
} from "./wdm/dma-operations.js";

const SIZES = { 1: DMA_OPERATIONS_SIZE_V1, 2: DMA_OPERATIONS_SIZE_V2, 3: DMA_OPERATIONS_SIZE_V3 } as const;

export function dmaOperationsTable(operations: DMA_OPERATIONS, version: 1 | 2 | 3): DMA_OPERATIONS {
  // Built in one go by Object.fromEntries: forty keyed stores one by one would leave V8 a
  // dictionary-mode object, and every driver call would pay a hash lookup for its member.
  const table = Object.fromEntries([
    ["Size", SIZES[version]],
    ...DMA_OPERATION_MEMBERS.map(({ name }) => [
      name,
      (operations[name] as (...args: unknown[]) => unknown).bind(operations),
    ]),
  ]);
  return Object.freeze(table) as unknown as DMA_OPERATIONS;
}
