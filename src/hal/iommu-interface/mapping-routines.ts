/**
 * The map and unmap routines of DMA_IOMMU_INTERFACE V1/V2 (windows-dma-ddi §7): MapLogicalRange(Ex),
 * UnmapLogicalRange, the identity ranges, and the reserved logical ranges (ReserveLogicalAddressRange
 * and its token and segment routines). IommuInterface owns the handles and hands these routines
 * its lookups; the same order applies here: IRQL, then each argument in parameter order with its
 * documented status, then the change.
 *
 * Placement: a domain without a logical allocator takes explicit, page-aligned logical addresses
 * only (STATUS_NOT_SUPPORTED without one); a Buddy domain refuses explicit ones
 * (STATUS_NOT_SUPPORTED) and places blocks inside [Min, Max], STATUS_INVALID_PARAMETER_MIX when
 * the window cannot hold the block at all, STATUS_INSUFFICIENT_RESOURCES when it is only full.
 * No mapping may touch the MSI window, which the IOMMU never translates.
 */
import { IoPermission } from "../../iommu/io-page-table.js";
import { PAGE_SIZE } from "../../platform/page.js";
import { PlatformError } from "../../platform/platform-error.js";
import type { Scheduler } from "../../platform/scheduler.js";
import type { Counters } from "../../trace/counters.js";
import { checkIrql } from "../hal-bug-checks.js";
import type { MDL } from "../wdm/device-object.js";
import {
  DomainTypePassThrough,
  DomainTypeTranslate,
  DomainTypeUnmanaged,
  type IOMMU_DMA_DOMAIN,
  type IOMMU_DMA_LOGICAL_ADDRESS_TOKEN,
  type IOMMU_DMA_LOGICAL_ADDRESS_TOKEN_MAPPED_SEGMENT,
  type IOMMU_MAP_PHYSICAL_ADDRESS,
} from "../wdm/iommu-interface.js";
import {
  type NTSTATUS,
  STATUS_INSUFFICIENT_RESOURCES,
  STATUS_INVALID_PARAMETER,
  STATUS_INVALID_PARAMETER_1,
  STATUS_INVALID_PARAMETER_2,
  STATUS_INVALID_PARAMETER_3,
  STATUS_INVALID_PARAMETER_4,
  STATUS_INVALID_PARAMETER_MIX,
  STATUS_NOT_SUPPORTED,
  STATUS_RESOURCE_IN_USE,
  STATUS_SUCCESS,
  STATUS_UNSUCCESSFUL,
} from "../wdm/ntstatus.js";
import { BuddyAllocator } from "./buddy-allocator.js";
import type { AllocatorBlock, IommuDmaDomain, RangeOwner } from "./iommu-dma-domain.js";
import { LogicalAddressToken, MappedSegment } from "./logical-address-token.js";
import { mdlPages, type PhysicalPages, physicalPages } from "./physical-pages.js";

/** A 4-level table translates 48-bit logical addresses. */
export const LOGICAL_BITS = 48;
export const LAST_LOGICAL_PAGE = 2 ** (LOGICAL_BITS - 12) - 1;
/** The MSI window is never DMA-translated (iommu-anchors §1.7): no logical page may land there. */
export const MSI_FIRST_PAGE = 0xfee00;
export const MSI_PAGES = 0x100;

/** The interface's handle lookups: live objects of this interface, or undefined. */
export interface DomainHandles {
  domain(value: IOMMU_DMA_DOMAIN): IommuDmaDomain | undefined;
  /** A live domain whose table the HAL manages (Translate, or V1 OS-managed). */
  translateDomain(value: IOMMU_DMA_DOMAIN): IommuDmaDomain | undefined;
  /** A token of a live domain; a freed one only when `freed` allows it. */
  token(value: IOMMU_DMA_LOGICAL_ADDRESS_TOKEN, freed?: boolean): LogicalAddressToken | undefined;
}

export class MappingRoutines {
  readonly #scheduler: Scheduler;
  readonly #counters: Counters;
  readonly #handles: DomainHandles;

  constructor(scheduler: Scheduler, counters: Counters, handles: DomainHandles) {
    this.#scheduler = scheduler;
    this.#counters = counters;
    this.#handles = handles;
  }

  /** V1: maps a whole-page MDL at an explicit, page-aligned logical address of an OS-managed domain. */
  MapLogicalRange(Domain: IOMMU_DMA_DOMAIN, Permissions: number, Mdl: MDL, LogicalAddress: number): NTSTATUS {
    checkIrql(this.#scheduler.irql, "at-most-dispatch", "MapLogicalRange");
    const domain = this.#handles.translateDomain(Domain);
    if (domain === undefined) return STATUS_INVALID_PARAMETER_1;
    const permission = ioPermission(Permissions);
    if (permission === undefined) return STATUS_INVALID_PARAMETER_2;
    const pages = mdlPages(Mdl);
    if (pages === undefined) return STATUS_INVALID_PARAMETER_3;
    if (!isPageAligned(LogicalAddress)) return STATUS_INVALID_PARAMETER_4;
    return this.mapAt(domain, LogicalAddress / PAGE_SIZE, pages, permission, "mapping", undefined);
  }

  MapLogicalRangeEx(
    Domain: IOMMU_DMA_DOMAIN,
    Permissions: number,
    PhysicalAddressToMap: IOMMU_MAP_PHYSICAL_ADDRESS,
    ExplicitLogicalAddress: number | undefined,
    MinLogicalAddress: number | undefined,
    MaxLogicalAddress: number | undefined,
  ): { Status: NTSTATUS; LogicalAddressOut: number } {
    checkIrql(this.#scheduler.irql, "at-most-dispatch", "MapLogicalRangeEx");
    const fail = (Status: NTSTATUS): { Status: NTSTATUS; LogicalAddressOut: number } => ({
      Status,
      LogicalAddressOut: 0,
    });
    const domain = this.#handles.translateDomain(Domain);
    if (domain === undefined || domain.type !== DomainTypeTranslate) return fail(STATUS_INVALID_PARAMETER_1);
    const permission = ioPermission(Permissions);
    if (permission === undefined) return fail(STATUS_INVALID_PARAMETER_2);
    const pages = physicalPages(PhysicalAddressToMap);
    if (pages === undefined) return fail(STATUS_INVALID_PARAMETER_3);
    const placed = this.place(
      domain,
      pages.pages,
      ExplicitLogicalAddress,
      MinLogicalAddress,
      MaxLogicalAddress,
    );
    if (typeof placed === "number") return fail(placed);
    const status = this.mapAt(domain, placed.first, pages, permission, "mapping", placed.block);
    if (status !== STATUS_SUCCESS) {
      if (placed.block !== undefined) domain.allocator!.free(placed.block.pfn, placed.block.pages);
      return fail(status);
    }
    return { Status: STATUS_SUCCESS, LogicalAddressOut: placed.first * PAGE_SIZE };
  }

  /**
   * Unmaps pages MapLogicalRange(Ex) mapped (any page-aligned part of them) and invalidates them on
   * every unit before returning. An allocator block goes back once none of its pages is mapped.
   */
  UnmapLogicalRange(Domain: IOMMU_DMA_DOMAIN, LogicalAddress: number, NumberOfPages: number): NTSTATUS {
    checkIrql(this.#scheduler.irql, "at-most-dispatch", "UnmapLogicalRange");
    const domain = this.#handles.translateDomain(Domain);
    if (domain === undefined) return STATUS_INVALID_PARAMETER_1;
    if (!isPageAligned(LogicalAddress)) return STATUS_INVALID_PARAMETER_2;
    const first = LogicalAddress / PAGE_SIZE;
    if (
      !Number.isSafeInteger(NumberOfPages) ||
      NumberOfPages < 1 ||
      first + NumberOfPages - 1 > LAST_LOGICAL_PAGE
    ) {
      return STATUS_INVALID_PARAMETER_3;
    }
    if (!domain.ranges.covers(first, NumberOfPages, (owner) => owner.kind === "mapping"))
      return STATUS_INVALID_PARAMETER_2;
    return this.unmapRange(domain, first, NumberOfPages);
  }

  /** V1: maps the MDL's pages at logical = physical. */
  MapIdentityRange(Domain: IOMMU_DMA_DOMAIN, Permissions: number, Mdl: MDL): NTSTATUS {
    checkIrql(this.#scheduler.irql, "at-most-dispatch", "MapIdentityRange");
    const domain = this.#handles.translateDomain(Domain);
    if (domain === undefined) return STATUS_INVALID_PARAMETER_1;
    const permission = ioPermission(Permissions);
    if (permission === undefined) return STATUS_INVALID_PARAMETER_2;
    const pages = mdlPages(Mdl);
    if (pages === undefined) return STATUS_INVALID_PARAMETER_3;
    return this.mapIdentity(domain, pages, permission);
  }

  UnmapIdentityRange(Domain: IOMMU_DMA_DOMAIN, Mdl: MDL): NTSTATUS {
    checkIrql(this.#scheduler.irql, "at-most-dispatch", "UnmapIdentityRange");
    const domain = this.#handles.translateDomain(Domain);
    if (domain === undefined) return STATUS_INVALID_PARAMETER_1;
    const pages = mdlPages(Mdl);
    if (pages === undefined) return STATUS_INVALID_PARAMETER_2;
    return this.unmapIdentity(domain, pages);
  }

  /** Translate or pass-through domains without a logical allocator (STATUS_NOT_SUPPORTED with one). */
  MapIdentityRangeEx(
    Domain: IOMMU_DMA_DOMAIN,
    Permissions: number,
    PhysicalAddressToMap: IOMMU_MAP_PHYSICAL_ADDRESS,
  ): NTSTATUS {
    checkIrql(this.#scheduler.irql, "at-most-dispatch", "MapIdentityRangeEx");
    const domain = this.#handles.domain(Domain);
    if (domain === undefined || domain.type === DomainTypeUnmanaged) return STATUS_INVALID_PARAMETER_1;
    const permission = ioPermission(Permissions);
    if (permission === undefined) return STATUS_INVALID_PARAMETER_2;
    const pages = physicalPages(PhysicalAddressToMap);
    if (pages === undefined) return STATUS_INVALID_PARAMETER_3;
    if (domain.allocator !== undefined) return STATUS_NOT_SUPPORTED;
    if (domain.type === DomainTypePassThrough) return STATUS_SUCCESS;
    return this.mapIdentity(domain, pages, permission);
  }

  UnmapIdentityRangeEx(
    Domain: IOMMU_DMA_DOMAIN,
    MappedPhysicalAddress: IOMMU_MAP_PHYSICAL_ADDRESS,
  ): NTSTATUS {
    checkIrql(this.#scheduler.irql, "at-most-dispatch", "UnmapIdentityRangeEx");
    const domain = this.#handles.domain(Domain);
    if (domain === undefined || domain.type === DomainTypeUnmanaged) return STATUS_INVALID_PARAMETER_1;
    const pages = physicalPages(MappedPhysicalAddress);
    if (pages === undefined) return STATUS_INVALID_PARAMETER_2;
    if (domain.allocator !== undefined) return STATUS_NOT_SUPPORTED;
    if (domain.type === DomainTypePassThrough) return STATUS_SUCCESS;
    return this.unmapIdentity(domain, pages);
  }

  // ------------------------------------------------------------------ reserved logical ranges

  /** Reserves logical space and builds its page tables now, so later maps of it cannot fail. */
  ReserveLogicalAddressRange(
    Domain: IOMMU_DMA_DOMAIN,
    Size: number,
    ExplicitLogicalAddress: number | undefined,
    MinLogicalAddress: number | undefined,
    MaxLogicalAddress: number | undefined,
  ): { Status: NTSTATUS; LogicalAddressToken: IOMMU_DMA_LOGICAL_ADDRESS_TOKEN | undefined } {
    checkIrql(this.#scheduler.irql, "passive", "ReserveLogicalAddressRange");
    const fail = (Status: NTSTATUS): { Status: NTSTATUS; LogicalAddressToken: undefined } => ({
      Status,
      LogicalAddressToken: undefined,
    });
    const domain = this.#handles.translateDomain(Domain);
    if (domain === undefined || domain.type !== DomainTypeTranslate) return fail(STATUS_INVALID_PARAMETER_1);
    if (!Number.isSafeInteger(Size) || Size < PAGE_SIZE || Size % PAGE_SIZE !== 0)
      return fail(STATUS_INVALID_PARAMETER_2);
    const pages = Size / PAGE_SIZE;
    const placed = this.place(domain, pages, ExplicitLogicalAddress, MinLogicalAddress, MaxLogicalAddress);
    if (typeof placed === "number")
      return fail(placed === STATUS_INVALID_PARAMETER_4 ? STATUS_INVALID_PARAMETER_3 : placed);
    if (placed.block === undefined) {
      const last = placed.first + pages - 1;
      if (last > domain.lastPage || (placed.first < MSI_FIRST_PAGE + MSI_PAGES && last >= MSI_FIRST_PAGE)) {
        return fail(STATUS_INVALID_PARAMETER_3);
      }
      if (domain.ranges.overlaps(placed.first, pages)) return fail(STATUS_RESOURCE_IN_USE);
    }
    try {
      domain.buildTables(placed.first, pages);
    } catch (error) {
      if (placed.block !== undefined) domain.allocator!.free(placed.block.pfn, placed.block.pages);
      return fail(insufficient(error));
    }
    const token = new LogicalAddressToken(placed.first * PAGE_SIZE, Size, domain, placed.block);
    domain.tokens.add(token);
    domain.ranges.add(placed.first, pages, { kind: "token", block: placed.block, token });
    this.#counters.add("hal.iommu.token.reserve");
    return { Status: STATUS_SUCCESS, LogicalAddressToken: token };
  }

  /** STATUS_RESOURCE_IN_USE while any segment of the token is mapped. */
  FreeReservedLogicalAddressRange(LogicalAddressToken: IOMMU_DMA_LOGICAL_ADDRESS_TOKEN): NTSTATUS {
    checkIrql(this.#scheduler.irql, "passive", "FreeReservedLogicalAddressRange");
    const token = this.#handles.token(LogicalAddressToken);
    if (token === undefined) return STATUS_INVALID_PARAMETER_1;
    if (token.segments.size > 0) return STATUS_RESOURCE_IN_USE;
    const domain = token.domain;
    domain.ranges.remove(token.firstPage, token.Size / PAGE_SIZE);
    if (token.block !== undefined) domain.allocator!.free(token.block.pfn, token.block.pages);
    domain.tokens.delete(token);
    token.freed = true;
    return STATUS_SUCCESS;
  }

  /** Maps whole pages at Offset in the token; allocates nothing (the tables exist already). */
  MapReservedLogicalRange(
    LogicalAddressToken: IOMMU_DMA_LOGICAL_ADDRESS_TOKEN,
    Offset: number,
    Permissions: number,
    PhysicalAddressToMap: IOMMU_MAP_PHYSICAL_ADDRESS,
  ): { Status: NTSTATUS; MappedSegment: IOMMU_DMA_LOGICAL_ADDRESS_TOKEN_MAPPED_SEGMENT | undefined } {
    checkIrql(this.#scheduler.irql, "at-most-dispatch", "MapReservedLogicalRange");
    const fail = (Status: NTSTATUS): { Status: NTSTATUS; MappedSegment: undefined } => ({
      Status,
      MappedSegment: undefined,
    });
    const token = this.#handles.token(LogicalAddressToken, true);
    if (token === undefined) return fail(STATUS_INVALID_PARAMETER_1);
    if (token.freed) return fail(STATUS_UNSUCCESSFUL);
    if (!Number.isSafeInteger(Offset) || Offset < 0 || Offset % PAGE_SIZE !== 0 || Offset >= token.Size) {
      return fail(STATUS_INVALID_PARAMETER_2);
    }
    const permission = ioPermission(Permissions);
    if (permission === undefined) return fail(STATUS_INVALID_PARAMETER_3);
    const pages = physicalPages(PhysicalAddressToMap);
    if (pages === undefined || Offset + pages.pages * PAGE_SIZE > token.Size)
      return fail(STATUS_INVALID_PARAMETER_4);
    const first = token.firstPage + Offset / PAGE_SIZE;
    if (token.segments.overlaps(first, pages.pages)) return fail(STATUS_RESOURCE_IN_USE);
    try {
      token.domain.mapRuns(first, pages.runs, permission);
    } catch (error) {
      return fail(insufficient(error));
    }
    const segment = new MappedSegment(token, Offset, pages.pages * PAGE_SIZE);
    token.segments.add(first, pages.pages, segment);
    return { Status: STATUS_SUCCESS, MappedSegment: segment };
  }

  /** Unmaps a segment, invalidates it on every unit, and keeps the page tables for the next map. */
  UnmapReservedLogicalRange(MappedSegment_: IOMMU_DMA_LOGICAL_ADDRESS_TOKEN_MAPPED_SEGMENT): NTSTATUS {
    checkIrql(this.#scheduler.irql, "at-most-dispatch", "UnmapReservedLogicalRange");
    if (!(MappedSegment_ instanceof MappedSegment) || !MappedSegment_.mapped) return STATUS_INVALID_PARAMETER;
    const token = MappedSegment_.OwningToken;
    const first = token.firstPage + MappedSegment_.Offset / PAGE_SIZE;
    const pages = MappedSegment_.Size / PAGE_SIZE;
    token.domain.unmapPages(first, pages, true);
    token.segments.remove(first, pages);
    MappedSegment_.mapped = false;
    return STATUS_SUCCESS;
  }

  // ------------------------------------------------------------------ internals

  /**
   * Where a map or reservation of `pages` goes: the explicit address (domains without an
   * allocator), or a Buddy block inside [Min, Max]. A status when that is impossible.
   */
  private place(
    domain: IommuDmaDomain,
    pages: number,
    explicit: number | undefined,
    min: number | undefined,
    max: number | undefined,
  ): { first: number; block: AllocatorBlock | undefined } | NTSTATUS {
    const allocator = domain.allocator;
    if (explicit !== undefined) {
      if (allocator !== undefined) return STATUS_NOT_SUPPORTED;
      if (!isPageAligned(explicit)) return STATUS_INVALID_PARAMETER_4;
      return { first: explicit / PAGE_SIZE, block: undefined };
    }
    if (allocator === undefined) return STATUS_NOT_SUPPORTED;
    const low = min ?? 0;
    const high = max ?? (domain.lastPage + 1) * PAGE_SIZE - 1;
    if (!isLogicalAddress(low) || !Number.isSafeInteger(high) || high < low)
      return STATUS_INVALID_PARAMETER_MIX;
    const minPfn = Math.ceil(low / PAGE_SIZE);
    const maxPfn = Math.min(Math.floor((high + 1) / PAGE_SIZE) - 1, domain.lastPage);
    const blockPages = BuddyAllocator.blockPages(pages);
    if (maxPfn - Math.ceil(minPfn / blockPages) * blockPages + 1 < blockPages)
      return STATUS_INVALID_PARAMETER_MIX;
    const pfn = allocator.allocate(pages, minPfn, maxPfn);
    if (pfn === undefined) return STATUS_INSUFFICIENT_RESOURCES;
    return { first: pfn, block: { pfn, pages: blockPages, mapped: pages } };
  }

  /** Maps `pages` at logical page `first` after the range checks every map shares. */
  mapAt(
    domain: IommuDmaDomain,
    first: number,
    pages: PhysicalPages,
    permission: IoPermission,
    kind: RangeOwner["kind"],
    block: AllocatorBlock | undefined,
  ): NTSTATUS {
    const last = first + pages.pages - 1;
    if (last > domain.lastPage || (first <= MSI_FIRST_PAGE + MSI_PAGES - 1 && last >= MSI_FIRST_PAGE)) {
      return STATUS_INVALID_PARAMETER_4;
    }
    if (domain.ranges.overlaps(first, pages.pages)) return STATUS_RESOURCE_IN_USE;
    try {
      domain.mapRuns(first, pages.runs, permission);
    } catch (error) {
      return insufficient(error);
    }
    domain.ranges.add(first, pages.pages, { kind, block, token: undefined });
    return STATUS_SUCCESS;
  }

  private mapIdentity(domain: IommuDmaDomain, pages: PhysicalPages, permission: IoPermission): NTSTATUS {
    const done: { pfn: number; pages: number }[] = [];
    for (const run of pages.runs) {
      const status = this.mapAt(
        domain,
        run.pfn,
        { runs: [run], pages: run.pages },
        permission,
        "identity",
        undefined,
      );
      if (status !== STATUS_SUCCESS) {
        for (const mapped of done) this.unmapRange(domain, mapped.pfn, mapped.pages);
        return status;
      }
      done.push(run);
    }
    return STATUS_SUCCESS;
  }

  private unmapIdentity(domain: IommuDmaDomain, pages: PhysicalPages): NTSTATUS {
    const identity = (owner: RangeOwner): boolean => owner.kind === "identity";
    if (!pages.runs.every((run) => domain.ranges.covers(run.pfn, run.pages, identity)))
      return STATUS_INVALID_PARAMETER_2;
    for (const run of pages.runs) {
      const status = this.unmapRange(domain, run.pfn, run.pages);
      if (status !== STATUS_SUCCESS) return status;
    }
    return STATUS_SUCCESS;
  }

  /** Unmaps ranges the caller checked are mapped; frees allocator blocks left with no page mapped. */
  private unmapRange(domain: IommuDmaDomain, first: number, pages: number): NTSTATUS {
    try {
      domain.unmapPages(first, pages, false);
    } catch (error) {
      return insufficient(error);
    }
    for (const piece of domain.ranges.remove(first, pages)) {
      const block = piece.value.block;
      if (block === undefined) continue;
      block.mapped -= piece.pages;
      if (block.mapped === 0) domain.allocator!.free(block.pfn, block.pages);
    }
    return STATUS_SUCCESS;
  }
}

export function ioPermission(permissions: number): IoPermission | undefined {
  return permissions === 1 || permissions === 2 || permissions === 3 ? permissions : undefined;
}

export function isLogicalAddress(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0 && (value as number) < 2 ** LOGICAL_BITS;
}

export function isPageAligned(value: unknown): value is number {
  return isLogicalAddress(value) && value % PAGE_SIZE === 0;
}

/** STATUS_INSUFFICIENT_RESOURCES for a frame the table could not get; anything else is a bug. */
export function insufficient(error: unknown): NTSTATUS {
  if (error instanceof PlatformError && error.code === "no-memory") return STATUS_INSUFFICIENT_RESOURCES;
  throw error;
}
