/**
 * The seam between the DMA choke point and whatever translates bus addresses. The platform binds
 * the identity; the IOMMU layer rebinds it to its units. Like QEMU's per-requester translate hook
 * (IOMMUMemoryRegionClass.translate), but writing into a caller-owned result to keep the data
 * path free of allocation.
 */
export type DmaAccess = "read" | "write";

/** One translation, reused by its caller. Valid fields depend on the return of `translate`. */
export interface DmaTranslation {
  /** Host physical address of the bus address (on success). */
  physicalAddress: number;
  /** Bytes from the bus address to the end of the translated page or superpage (on success). */
  length: number;
  /** VT-d fault reason code (on failure); 0 on success. */
  faultReason: number;
}

export interface DmaRemapper {
  /**
   * Translates `busAddress` for the requester. On failure the remapper has already recorded the
   * fault as its hardware would, and returns false.
   */
  translate(requesterId: number, busAddress: number, access: DmaAccess, out: DmaTranslation): boolean;
}

export function createTranslation(): DmaTranslation {
  return { physicalAddress: 0, length: 0, faultReason: 0 };
}
