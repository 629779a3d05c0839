/**
 * IOMMU_DMA_LOGICAL_ADDRESS_TOKEN and its mapped segments (ReserveLogicalAddressRange and
 * friends, windows-dma-ddi §7): a logical range reserved in a domain whose page tables were made
 * at reservation, so MapReservedLogicalRange never allocates ("guarantee that the logical address
 * represented has all of its associated page tables allocated ahead of time") and
 * UnmapReservedLogicalRange never frees a table. The VCMM seed's "reserve, then back" in Windows
 * form.
 */
import { PAGE_SIZE } from "../../platform/page.js";
import type {
  IOMMU_DMA_LOGICAL_ADDRESS_TOKEN,
  IOMMU_DMA_LOGICAL_ADDRESS_TOKEN_MAPPED_SEGMENT,
} from "../wdm/iommu-interface.js";
import type { AllocatorBlock, IommuDmaDomain } from "./iommu-dma-domain.js";
import { LogicalRangeMap } from "./logical-range-map.js";

export class LogicalAddressToken implements IOMMU_DMA_LOGICAL_ADDRESS_TOKEN {
  /** Mapped segments by logical page. */
  readonly segments = new LogicalRangeMap<MappedSegment>();
  freed = false;

  constructor(
    readonly LogicalAddressBase: number,
    readonly Size: number,
    readonly domain: IommuDmaDomain,
    /** The allocator block the reservation took, when the domain has an allocator. */
    readonly block: AllocatorBlock | undefined,
  ) {}

  /** First logical page. */
  get firstPage(): number {
    return this.LogicalAddressBase / PAGE_SIZE;
  }
}

export class MappedSegment implements IOMMU_DMA_LOGICAL_ADDRESS_TOKEN_MAPPED_SEGMENT {
  mapped = true;

  constructor(
    readonly OwningToken: LogicalAddressToken,
    readonly Offset: number,
    readonly Size: number,
  ) {}
}
