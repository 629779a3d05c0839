/**
 * What an IOMMU_MAP_PHYSICAL_ADDRESS (or a V1 routine's MDL) describes, as runs of physically
 * contiguous pages. The WDK requires "4K page aligned and 4K page length" memory
 * (ns-wdm-iommu_map_physical_address); anything else is undefined here, and the routine returns
 * the INVALID_PARAMETER_n of the argument it came in. Frames need not be RAM or have a kernel
 * virtual address: a one-sided, device-only mapping (the VCMM seed) is a PFN array of frames the
 * CPU never mapped.
 */
import { Mdl } from "../../platform/mdl.js";
import { MAX_PHYSICAL_ADDRESS_BITS, PAGE_SIZE } from "../../platform/page.js";
import {
  type IOMMU_MAP_PHYSICAL_ADDRESS,
  MapPhysicalAddressTypeContiguousRange,
  MapPhysicalAddressTypeMdl,
  MapPhysicalAddressTypePfn,
} from "../wdm/iommu-interface.js";

export interface PageRun {
  readonly pfn: number;
  readonly pages: number;
}

export interface PhysicalPages {
  readonly runs: readonly PageRun[];
  readonly pages: number;
}

const PFN_LIMIT = 2 ** (MAX_PHYSICAL_ADDRESS_BITS - 12);

/** The runs of a whole-page, resident MDL, or undefined. */
export function mdlPages(mdl: unknown): PhysicalPages | undefined {
  if (!(mdl instanceof Mdl) || mdl.freed || !mdl.resident) return undefined;
  if (mdl.byteOffset !== 0 || mdl.byteCount === 0 || mdl.byteCount % PAGE_SIZE !== 0) return undefined;
  return runsOf(mdl.pfns, mdl.byteCount / PAGE_SIZE);
}

/** The runs of an IOMMU_MAP_PHYSICAL_ADDRESS, or undefined when it is malformed or not whole pages. */
export function physicalPages(address: IOMMU_MAP_PHYSICAL_ADDRESS): PhysicalPages | undefined {
  if (typeof address !== "object" || address === null) return undefined;
  switch (address.MapType) {
    case MapPhysicalAddressTypeMdl:
      return mdlPages(address.Mdl?.Mdl);
    case MapPhysicalAddressTypeContiguousRange: {
      const { Base, Size } = address.ContiguousRange ?? {};
      if (!isPageMultiple(Base) || !isPageMultiple(Size) || Size === 0) return undefined;
      if (Base / PAGE_SIZE + Size / PAGE_SIZE > PFN_LIMIT) return undefined;
      return { runs: [{ pfn: Base / PAGE_SIZE, pages: Size / PAGE_SIZE }], pages: Size / PAGE_SIZE };
    }
    case MapPhysicalAddressTypePfn: {
      const { PageFrame, NumberOfPages } = address.PfnArray ?? {};
      if (!Array.isArray(PageFrame) || !isCount(NumberOfPages)) return undefined;
      if (NumberOfPages < 1 || NumberOfPages > PageFrame.length) return undefined;
      return runsOf(PageFrame, NumberOfPages);
    }
    default:
      return undefined;
  }
}

/** Coalesces the first `count` frames into contiguous runs; undefined for a bad frame number. */
function runsOf(frames: readonly number[], count: number): PhysicalPages | undefined {
  const runs: PageRun[] = [];
  let start = -1;
  let length = 0;
  for (let i = 0; i < count; i++) {
    const pfn = frames[i];
    if (!Number.isSafeInteger(pfn) || pfn! < 0 || pfn! >= PFN_LIMIT) return undefined;
    if (length > 0 && pfn === start + length) {
      length++;
      continue;
    }
    if (length > 0) runs.push({ pfn: start, pages: length });
    start = pfn!;
    length = 1;
  }
  runs.push({ pfn: start, pages: length });
  return { runs, pages: count };
}

function isCount(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0;
}

function isPageMultiple(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0 && (value as number) % PAGE_SIZE === 0;
}
