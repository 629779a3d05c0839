/**
 * SCATTER_GATHER_LIST and SCATTER_GATHER_ELEMENT. Addresses are device-logical: bus addresses the
 * device may use, which are IOVAs when remapping is on. Sizes follow the x64 layout (header 16 B,
 * element 24 B) so CalculateScatterGatherList and BuildScatterGatherList agree on real numbers.
 */
export interface SCATTER_GATHER_ELEMENT {
  readonly Address: number;
  readonly Length: number;
  readonly Reserved: number;
}

export interface SCATTER_GATHER_LIST {
  readonly NumberOfElements: number;
  /** HAL-private (the HAL keeps its mapping context here, as ReactOS does). */
  readonly Reserved: number;
  readonly Elements: readonly SCATTER_GATHER_ELEMENT[];
}

export const SCATTER_GATHER_LIST_HEADER_SIZE = 16;
export const SCATTER_GATHER_ELEMENT_SIZE = 24;
