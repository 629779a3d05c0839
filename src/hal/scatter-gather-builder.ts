/**
 * Scatter/gather lists (reference section 4): how many bytes one needs, how mapped pieces become
 * elements, and the x64 bytes BuildScatterGatherList writes into the caller's buffer.
 *
 * - Size: header (16 B) + 24 B per element + the HAL's private context, which the caller's buffer
 *   must also hold (64 B plus 8 B per map register: where each register's piece went), exactly
 *   what CalculateScatterGatherList reports. The worst case is one element per map register.
 * - Elements: logically adjacent pieces are merged into one element; no element crosses a 4 GiB
 *   boundary (a bus master counts addresses in 32-bit halves), so a piece that would is split.
 */
import type { KernelMemory } from "../platform/kernel-memory.js";
import { GiB } from "../platform/page.js";
import type { MappedPiece } from "./dma-mapping-strategy.js";
import { attachHiddenReference } from "./hidden-reference.js";
import {
  type SCATTER_GATHER_ELEMENT,
  SCATTER_GATHER_ELEMENT_SIZE,
  type SCATTER_GATHER_LIST,
  SCATTER_GATHER_LIST_HEADER_SIZE,
} from "./wdm/scatter-gather-list.js";

const FOUR_GIB = 4 * GiB;
/** The HAL-private bytes after the elements: a context header and one entry per map register. */
export const SCATTER_GATHER_CONTEXT_SIZE = 64;
export const SCATTER_GATHER_CONTEXT_PER_REGISTER = 8;

/** Bytes a list of `elements` elements over `mapRegisters` registers takes, HAL context included. */
export function scatterGatherListSize(elements: number, mapRegisters: number): number {
  return (
    SCATTER_GATHER_LIST_HEADER_SIZE +
    SCATTER_GATHER_ELEMENT_SIZE * elements +
    SCATTER_GATHER_CONTEXT_SIZE +
    SCATTER_GATHER_CONTEXT_PER_REGISTER * mapRegisters
  );
}

/** Appends `piece` to `elements`: merged into the last one when adjacent, split at 4 GiB boundaries. */
export function appendElement(elements: SCATTER_GATHER_ELEMENT[], piece: MappedPiece): void {
  let address = piece.logicalAddress;
  let left = piece.length;
  while (left > 0) {
    const boundary = (Math.floor(address / FOUR_GIB) + 1) * FOUR_GIB;
    const length = Math.min(left, boundary - address);
    const last = elements.length > 0 ? elements[elements.length - 1]! : undefined;
    if (last !== undefined && last.Address + last.Length === address && address % FOUR_GIB !== 0) {
      elements[elements.length - 1] = { Address: last.Address, Length: last.Length + length, Reserved: 0 };
    } else {
      elements.push({ Address: address, Length: length, Reserved: 0 });
    }
    address += length;
    left -= length;
  }
}

/**
 * The frozen list a driver receives. It takes `elements` over (frozen in place, not copied) and,
 * when given, stamps `record` onto it as the HAL's hidden reference (hidden-reference.ts).
 */
export function scatterGatherList(
  elements: SCATTER_GATHER_ELEMENT[],
  reserved: number,
  record?: unknown,
): SCATTER_GATHER_LIST {
  const list = { NumberOfElements: elements.length, Reserved: reserved, Elements: Object.freeze(elements) };
  if (record !== undefined) attachHiddenReference(list, record);
  return Object.freeze(list);
}

/**
 * Writes `list` at kernel address `va` in the x64 layout: NumberOfElements (ULONG) at 0,
 * Reserved (ULONG_PTR) at 8, then per element Address (8 B), Length (4 B), padding, Reserved (8 B).
 */
export function writeScatterGatherList(kernel: KernelMemory, va: number, list: SCATTER_GATHER_LIST): void {
  const bytes = new Uint8Array(
    SCATTER_GATHER_LIST_HEADER_SIZE + SCATTER_GATHER_ELEMENT_SIZE * list.NumberOfElements,
  );
  const view = new DataView(bytes.buffer);
  view.setUint32(0, list.NumberOfElements, true);
  setUint64(view, 8, list.Reserved);
  let offset = SCATTER_GATHER_LIST_HEADER_SIZE;
  for (const element of list.Elements) {
    setUint64(view, offset, element.Address);
    view.setUint32(offset + 8, element.Length, true);
    setUint64(view, offset + 16, element.Reserved);
    offset += SCATTER_GATHER_ELEMENT_SIZE;
  }
  kernel.write(va, bytes);
}

function setUint64(view: DataView, offset: number, value: number): void {
  view.setUint32(offset, value % 2 ** 32, true);
  view.setUint32(offset + 4, Math.floor(value / 2 ** 32), true);
}
