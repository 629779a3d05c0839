/**
 * The remapper of a machine without DMA remapping: bus address = physical address, every access
 * allowed, one 4 KiB page at a time (QEMU's untranslated "nodmar" address space; VT-d with
 * GSTS.TES clear). The IOMMU layer rebinds the DmaRemapper token to its units.
 */
import { injectable } from "inversify";
import type { DmaAccess, DmaRemapper, DmaTranslation } from "./dma-remapper.js";
import { PAGE_SIZE } from "./page.js";

@injectable()
export class IdentityRemapper implements DmaRemapper {
  translate(_requesterId: number, busAddress: number, _access: DmaAccess, out: DmaTranslation): boolean {
    out.physicalAddress = busAddress;
    out.length = PAGE_SIZE - (busAddress % PAGE_SIZE);
    out.faultReason = 0;
    return true;
  }
}
