/**
 * VFIO's events on the machine bus (declaration merging into MachineEvents). Emitted only when
 * someone listens.
 */

/** A user DMA mapping was made (MAP_DMA) or removed (UNMAP_DMA, group detach, container close). */
export interface VfioDmaEvent {
  /** The container's id. */
  readonly container: number;
  readonly kind: "map" | "unmap";
  readonly iova: number;
  readonly vaddr: number;
  readonly size: number;
}

declare module "../../trace/machine-events.js" {
  interface MachineEvents {
    "vfio.dma": [VfioDmaEvent];
  }
}
