/**
 * The machine's IOMMU: the VT-d remapping units (one per DRHD in options.units), the domains
 * whose page tables they walk, and the DmaRemapper the platform's DMA choke point calls.
 *
 * - translate routes a request to the unit covering its requester id ("rest": every id no
 *   other unit lists, like a DRHD with INCLUDE_PCI_ALL). With translation off (GSTS.TES clear)
 *   every request is identity, as QEMU's vtd_iommu_translate returns.
 * - The interrupt window 0xFEE00000-0xFEEFFFFF is never DMA-translated (iommu-anchors §1.7): a
 *   request there passes through untranslated (it is an MSI write for the interrupt controller)
 *   and never faults.
 * - attach / attachPassthrough / detach write the context entry and invalidate in the order
 *   VT-d 6.5.2.1 requires (context entry, context-cache, then IOTLB by domain), as Linux does.
 * - flushRange / flushDomain are the HAL's invalidation calls: one page-selective (or domain-
 *   selective) command per unit the domain is attached to, with that unit's DID.
 */
import { inject, injectable } from "inversify";
import type { DmaAccess, DmaRemapper, DmaTranslation } from "../platform/dma-remapper.js";
import { FrameAllocator } from "../platform/frame-allocator.js";
import { checkAddress, checkLength, formatAddress, PAGE_SIZE } from "../platform/page.js";
import { checkRequesterId, formatRequesterId } from "../platform/pci-address.js";
import { PhysicalMemory } from "../platform/physical-memory.js";
import { PlatformError } from "../platform/platform-error.js";
import { Counters } from "../trace/counters.js";
import { EventBus } from "../trace/event-bus.js";
import { IOVA_BITS, IOVA_LIMIT, TT_MULTI_LEVEL, TT_PASS_THROUGH } from "./entry-format.js";
import type { FaultRecord } from "./fault-recorder.js";
import { IoPageTable } from "./io-page-table.js";
import { IommuDomain } from "./iommu-domain.js";
import type { IommuOptions as IommuOptionsShape } from "./iommu-options.js";
import { MAX_ADDRESS_MASK, PASSTHROUGH_DOMAIN_ID, RemappingUnit } from "./remapping-unit.js";
import { TableViews } from "./table-views.js";
import { IommuOptions } from "./tokens.js";

/** The MSI address window (iommu-anchors §1.7): interrupt requests, never remapped as DMA. */
export const INTERRUPT_WINDOW_START = 0xfee00000;
export const INTERRUPT_WINDOW_END = 0xfef00000;

export interface DomainOptions {
  /** Use 2 MiB and 1 GiB pages where possible (default true; false is intel_iommu=sp_off). */
  readonly superpages?: boolean;
}

export interface AttachOptions {
  /** FPD: suppress recording of qualified faults from this device (default false). */
  readonly faultProcessingDisable?: boolean;
}

/** What a requester's context entry says, as software set it. */
export type Attachment = IommuDomain | "passthrough";

const NO_UNIT = 0xff;

@injectable()
export class Iommu implements DmaRemapper {
  readonly units: readonly RemappingUnit[];
  // TypeScript `private`, not `#`: esbuild (tsx) lowers #-members of decorated classes to
  // WeakMap lookups, which would sit on the translate path.
  private readonly unitOf = new Uint8Array(0x10000).fill(NO_UNIT);
  private readonly views: TableViews;
  private readonly frames: FrameAllocator;
  private readonly frameOwner: number;
  private readonly events: EventBus;
  private readonly attachments = new Map<number, Attachment>();
  private translation: boolean;
  private nextDomain = 1;

  constructor(
    @inject(IommuOptions) options: IommuOptionsShape,
    @inject(PhysicalMemory) memory: PhysicalMemory,
    @inject(FrameAllocator) frames: FrameAllocator,
    @inject(EventBus) events: EventBus,
    @inject(Counters) counters: Counters,
  ) {
    checkOptions(options);
    this.translation = options.translation;
    this.views = new TableViews(memory);
    this.frames = frames;
    this.events = events;
    this.frameOwner = frames.registerOwner("iommu");
    const host = { views: this.views, frames, frameOwner: this.frameOwner, events, counters };
    this.units = options.units.map(
      (unit, index) => new RemappingUnit(index, unit.name, options.iotlbEntries, options.faultRecords, host),
    );
    const rest = options.units.findIndex((unit) => unit.requesters === "rest");
    if (rest >= 0) this.unitOf.fill(rest);
    options.units.forEach((unit, index) => {
      if (unit.requesters !== "rest") for (const rid of unit.requesters) this.unitOf[rid] = index;
    });
  }

  /** GSTS.TES. */
  get translationEnabled(): boolean {
    return this.translation;
  }

  /** GCMD.TE: turns DMA remapping on or off for every unit. */
  setTranslationEnabled(enabled: boolean): void {
    if (typeof enabled !== "boolean")
      throw new PlatformError("out-of-range", "translation enable must be a boolean");
    this.translation = enabled;
  }

  /** DmaRemapper: one request of `requesterId` to `busAddress`. */
  translate(requesterId: number, busAddress: number, access: DmaAccess, out: DmaTranslation): boolean {
    if (!Number.isSafeInteger(busAddress) || busAddress < 0) {
      throw new PlatformError(
        "bad-address",
        `bus address ${formatAddress(busAddress)} is not an integer >= 0`,
      );
    }
    if (access !== "read" && access !== "write") {
      throw new PlatformError("out-of-range", `DMA access ${String(access)} is neither read nor write`);
    }
    const unit = this.unitFor(requesterId);
    if (busAddress >= INTERRUPT_WINDOW_START && busAddress < INTERRUPT_WINDOW_END) {
      out.physicalAddress = busAddress;
      out.length = INTERRUPT_WINDOW_END - busAddress;
      out.faultReason = 0;
      return true;
    }
    if (!this.translation) {
      out.physicalAddress = busAddress;
      out.length = PAGE_SIZE - (busAddress % PAGE_SIZE);
      out.faultReason = 0;
      return true;
    }
    return unit.translate(requesterId, busAddress, access, out);
  }

  /** The unit whose scope holds `requesterId`; throws for a bad id or one no unit covers. */
  unitFor(requesterId: number): RemappingUnit {
    const index = (requesterId & 0xffff) === requesterId ? this.unitOf[requesterId]! : NO_UNIT;
    if (index === NO_UNIT) {
      checkRequesterId(requesterId);
      throw new PlatformError(
        "out-of-range",
        `no remapping unit covers requester ${formatRequesterId(requesterId)}`,
      );
    }
    return this.units[index]!;
  }

  /** A new, empty domain (allocates its level-4 table). */
  createDomain(options: DomainOptions = {}): IommuDomain {
    const superpages = options?.superpages ?? true;
    if (typeof superpages !== "boolean")
      throw new PlatformError("out-of-range", "superpages must be a boolean");
    const table = new IoPageTable(this.views, this.frames, this.frameOwner, superpages);
    return new IommuDomain(this.nextDomain++, this, table, this.units.length);
  }

  /** Frees the domain's table frames. No device may still be attached to it. */
  destroyDomain(domain: IommuDomain): void {
    this.checkDomain(domain);
    if (domain.deviceCount > 0) {
      throw new PlatformError(
        "bad-state",
        `domain ${domain.id} still has ${domain.deviceCount} device(s) attached`,
      );
    }
    domain.pageTable.destroy();
  }

  /** What `requesterId`'s context entry was last set to, or undefined. */
  attachment(requesterId: number): Attachment | undefined {
    this.unitFor(requesterId);
    return this.attachments.get(requesterId);
  }

  /**
   * Points `requesterId`'s context entry at `domain` (TT = 0, AW = 48-bit), giving the domain a
   * DID on that unit if it has none there. A device attached elsewhere is detached first.
   */
  attach(requesterId: number, domain: IommuDomain, options: AttachOptions = {}): void {
    const unit = this.unitFor(requesterId);
    this.checkDomain(domain);
    const fpd = checkFpd(options);
    const current = this.attachments.get(requesterId);
    if (current === domain) {
      throw new PlatformError(
        "bad-state",
        `${formatRequesterId(requesterId)} is already attached to domain ${domain.id}`,
      );
    }
    unit.prepareContext(requesterId);
    let did = domain.domainId(unit.index);
    if (did === 0) did = unit.allocateDomainId();
    if (current !== undefined) this.clear(unit, requesterId, current);
    unit.writeContextEntry(requesterId, {
      translationType: TT_MULTI_LEVEL,
      pageTableAddress: domain.pageTable.rootAddress,
      domainId: did,
      faultProcessingDisable: fpd,
    });
    domain.addDevice(unit.index, did);
    this.attachments.set(requesterId, domain);
    this.announce(unit, requesterId, "attach", did);
  }

  /** Sets `requesterId`'s context entry to pass-through (TT = 2, DID 1): identity DMA. */
  attachPassthrough(requesterId: number, options: AttachOptions = {}): void {
    const unit = this.unitFor(requesterId);
    const fpd = checkFpd(options);
    const current = this.attachments.get(requesterId);
    if (current === "passthrough") {
      throw new PlatformError("bad-state", `${formatRequesterId(requesterId)} is already in pass-through`);
    }
    unit.prepareContext(requesterId);
    if (current !== undefined) this.clear(unit, requesterId, current);
    unit.writeContextEntry(requesterId, {
      translationType: TT_PASS_THROUGH,
      pageTableAddress: 0,
      domainId: PASSTHROUGH_DOMAIN_ID,
      faultProcessingDisable: fpd,
    });
    this.attachments.set(requesterId, "passthrough");
    this.announce(unit, requesterId, "passthrough", PASSTHROUGH_DOMAIN_ID);
  }

  /** Clears `requesterId`'s context entry; its DMA faults with reason 2 from then on. */
  detach(requesterId: number): void {
    const unit = this.unitFor(requesterId);
    const current = this.attachments.get(requesterId);
    if (current === undefined) {
      throw new PlatformError("bad-state", `${formatRequesterId(requesterId)} is not attached`);
    }
    this.clear(unit, requesterId, current);
  }

  /**
   * Invalidates the IOTLB entries of `pages` pages at `iova` on every unit the domain is
   * attached to: one page-selective command with the smallest naturally aligned 2^AM block that
   * covers the range (Linux calculate_psi_aligned_address), or domain-selective beyond MAMV.
   */
  flushRange(domain: IommuDomain, iova: number, pages: number, invalidationHint = false): void {
    this.checkDomain(domain);
    if (
      !(Number.isSafeInteger(iova) && iova >= 0 && Math.floor(iova / PAGE_SIZE) * PAGE_SIZE === iova) ||
      !(Number.isSafeInteger(pages) && pages > 0 && iova + pages * PAGE_SIZE <= IOVA_LIMIT)
    ) {
      throw badFlushRange(iova, pages);
    }
    const first = iova / PAGE_SIZE;
    let mask = 0;
    let aligned = first;
    if (pages > 1) {
      while (2 ** mask < pages) mask++;
      aligned = Math.floor(first / 2 ** mask) * 2 ** mask;
      while (aligned + 2 ** mask < first + pages) {
        mask++;
        aligned = Math.floor(first / 2 ** mask) * 2 ** mask;
      }
    }
    const units = this.units;
    for (let i = 0; i < units.length; i++) {
      const did = domain.domainId(i);
      if (did === 0) continue;
      if (mask > MAX_ADDRESS_MASK) units[i]!.invalidateIotlbDomain(did);
      else units[i]!.invalidateIotlbPages(did, aligned * PAGE_SIZE, mask, invalidationHint);
    }
  }

  /** Domain-selective IOTLB invalidation on every unit the domain is attached to. */
  flushDomain(domain: IommuDomain): void {
    this.checkDomain(domain);
    for (const unit of this.units) {
      const did = domain.domainId(unit.index);
      if (did !== 0) unit.invalidateIotlbDomain(did);
    }
  }

  /** Global context-cache and IOTLB invalidation on every unit. */
  flushAll(): void {
    for (const unit of this.units) {
      unit.invalidateContextGlobal();
      unit.invalidateIotlbGlobal();
    }
  }

  /** Linux dmar_fault over every unit: reads and clears the pending fault records. */
  serviceFaults(): FaultRecord[] {
    return this.units.flatMap((unit) => unit.faults.service());
  }

  private checkDomain(domain: IommuDomain): void {
    if (!IommuDomain.is(domain) || domain.iommu !== this) {
      throw new PlatformError("bad-handle", "the domain does not belong to this IOMMU");
    }
    if (domain.destroyed) throw new PlatformError("bad-handle", `domain ${domain.id} was destroyed`);
  }

  /** Context entry, context-cache (device), IOTLB (domain), then the DID if no device is left. */
  private clear(unit: RemappingUnit, requesterId: number, current: Attachment): void {
    const did = current === "passthrough" ? PASSTHROUGH_DOMAIN_ID : current.domainId(unit.index);
    unit.clearContextEntry(requesterId);
    unit.invalidateContextDevice(requesterId, 0);
    unit.invalidateIotlbDomain(did);
    if (current !== "passthrough" && current.removeDevice(unit.index) === 0) unit.releaseDomainId(did);
    this.attachments.delete(requesterId);
    this.announce(unit, requesterId, "detach", did);
  }

  private announce(
    unit: RemappingUnit,
    requesterId: number,
    kind: "attach" | "passthrough" | "detach",
    did: number,
  ): void {
    if (this.events.hasListeners("iommu.context")) {
      this.events.emit("iommu.context", { unit: unit.name, requesterId, kind, domainId: did });
    }
  }
}

function badFlushRange(iova: number, pages: number): PlatformError {
  checkAddress(iova, "IOVA", IOVA_BITS);
  if (iova % PAGE_SIZE !== 0)
    return new PlatformError("bad-address", `IOVA ${formatAddress(iova)} is not page aligned`);
  checkLength(pages, "page count");
  return new PlatformError(
    "bad-length",
    `${pages} page(s) at ${formatAddress(iova)} is not a range below 2^48`,
  );
}

function checkFpd(options: AttachOptions): boolean {
  const fpd = options?.faultProcessingDisable ?? false;
  if (typeof fpd !== "boolean")
    throw new PlatformError("out-of-range", "faultProcessingDisable must be a boolean");
  return fpd;
}

function checkOptions(options: IommuOptionsShape): void {
  const fail = (message: string): never => {
    throw new PlatformError("out-of-range", `IOMMU options: ${message}`);
  };
  if (typeof options.translation !== "boolean") fail("translation must be a boolean");
  if (!Number.isInteger(options.iotlbEntries) || options.iotlbEntries < 1 || options.iotlbEntries > 0x10000) {
    fail(`iotlbEntries ${String(options.iotlbEntries)} is not an integer in [1, 65536]`);
  }
  if (!Number.isInteger(options.faultRecords) || options.faultRecords < 1 || options.faultRecords > 256) {
    fail(`faultRecords ${String(options.faultRecords)} is not an integer in [1, 256] (CAP.NFR + 1)`);
  }
  if (!Array.isArray(options.units) || options.units.length === 0 || options.units.length >= NO_UNIT) {
    fail(`between 1 and ${NO_UNIT - 1} remapping units are needed`);
  }
  const names = new Set<string>();
  const claimed = new Set<number>();
  let rest = 0;
  for (const unit of options.units) {
    if (typeof unit.name !== "string" || unit.name === "" || names.has(unit.name)) {
      fail(`unit name ${String(unit.name)} is empty or used twice`);
    }
    names.add(unit.name);
    if (unit.requesters === "rest") {
      rest++;
      continue;
    }
    if (!Array.isArray(unit.requesters)) fail(`unit ${unit.name}: requesters must be a list or "rest"`);
    for (const rid of unit.requesters) {
      checkRequesterId(rid);
      if (claimed.has(rid)) fail(`requester ${formatRequesterId(rid)} is listed by two units`);
      claimed.add(rid);
    }
  }
  if (rest > 1) fail('only one unit may cover "rest"');
}
