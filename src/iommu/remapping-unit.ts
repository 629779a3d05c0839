/**
 * One DMA-remapping hardware unit (a VT-d DRHD) in legacy mode, with the software side that
 * programs its tables. Hardware side: translate (IOTLB -> context-cache -> root and context
 * entries -> second-level walk -> fault, QEMU's vtd_do_iommu_translate order), the invalidation
 * commands, and fault recording. Software side: the root table and context tables in simulated
 * RAM (allocated on first use, like Linux's iommu_context_addr) and the unit's 16-bit domain ids.
 */
import type { DmaAccess, DmaTranslation } from "../platform/dma-remapper.js";
import type { FrameAllocator } from "../platform/frame-allocator.js";
import { checkAddress, formatAddress, PAGE_SIZE } from "../platform/page.js";
import { checkRequesterId } from "../platform/pci-address.js";
import { PlatformError } from "../platform/platform-error.js";
import type { CounterCell, Counters } from "../trace/counters.js";
import type { EventBus, ListenerFlag } from "../trace/event-bus.js";
import { ContextCache } from "./context-cache.js";
import {
  ADDRESS_HIGH_RESERVED,
  AW_39_BIT,
  AW_48_BIT,
  CONTEXT_AW_MASK,
  CONTEXT_DID_SHIFT,
  CONTEXT_ENTRY_WORDS,
  CONTEXT_FPD,
  CONTEXT_PRESENT,
  CONTEXT_RESERVED_LOW,
  CONTEXT_RESERVED_WORD2,
  CONTEXT_TT_MASK,
  CONTEXT_TT_SHIFT,
  entryAddress,
  entryPfn,
  IOVA_BITS,
  IOVA_LIMIT,
  LEVEL_SIZE,
  PTE_PAGE_SIZE,
  PTE_READ,
  PTE_RESERVED_HIGH,
  PTE_RESERVED_LOW,
  PTE_RESERVED_LOW_LARGE,
  PTE_RESERVED_LOW_TOP_LEVEL,
  PTE_WRITE,
  ROOT_ENTRY_WORDS,
  ROOT_PRESENT,
  ROOT_RESERVED_LOW,
  TT_MULTI_LEVEL,
  TT_PASS_THROUGH,
  TWO_POW_32,
  tableIndex,
} from "./entry-format.js";
import { FaultReason, isQualifiedFault } from "./fault-reason.js";
import { FaultRecorder } from "./fault-recorder.js";
import type { IommuInvalidationKind } from "./iommu-events.js";
import { Iotlb } from "./iotlb.js";
import { type TableViews, ZERO_TABLE } from "./table-views.js";

/** CAP.MAMV: the largest address mask a page-selective invalidation accepts (QEMU's value). */
export const MAX_ADDRESS_MASK = 18;
/** DID 0 is reserved (caching mode tags not-present entries with it); DID 1 is Linux's FLPT_DEFAULT_DID. */
export const RESERVED_DOMAIN_ID = 0;
export const PASSTHROUGH_DOMAIN_ID = 1;
const DOMAIN_IDS = 0x10000;

/** A context entry as software reads it back. */
export interface ContextEntry {
  readonly present: boolean;
  readonly faultProcessingDisable: boolean;
  /** TT: 0 multi-level translation, 2 pass-through. */
  readonly translationType: number;
  /** SLPTPTR. */
  readonly pageTableAddress: number;
  /** AW: 2 = 48-bit 4-level. */
  readonly addressWidth: number;
  readonly domainId: number;
}

/** What software writes into a context entry. */
export interface ContextEntryFields {
  readonly translationType: typeof TT_MULTI_LEVEL | typeof TT_PASS_THROUGH;
  readonly pageTableAddress: number;
  readonly domainId: number;
  readonly faultProcessingDisable: boolean;
}

/** What a unit shares with its Iommu. */
export interface RemappingUnitHost {
  readonly views: TableViews;
  readonly frames: FrameAllocator;
  readonly frameOwner: number;
  readonly events: EventBus;
  readonly counters: Counters;
}

export class RemappingUnit {
  readonly index: number;
  readonly name: string;
  readonly faults: FaultRecorder;
  readonly #host: RemappingUnitHost;
  readonly #views: TableViews;
  readonly #counters: Counters;
  /** Bumped on every translation or invalidation: cells, not by-name lookups, on the hot paths. */
  readonly #iotlbHits: CounterCell;
  readonly #iotlbMisses: CounterCell;
  readonly #contextHits: CounterCell;
  readonly #contextMisses: CounterCell;
  readonly #walks: CounterCell;
  readonly #walkReads: CounterCell;
  readonly #passthroughs: CounterCell;
  readonly #invalidations: Readonly<Record<IommuInvalidationKind, CounterCell>>;
  readonly #invalidateListened: ListenerFlag;
  readonly #events: EventBus;
  readonly #iotlb: Iotlb;
  readonly #contextCache = new ContextCache();
  #root: Uint32Array = ZERO_TABLE;
  #rootAddress = 0;
  readonly #domainIds = new Uint8Array(DOMAIN_IDS);
  /** FPD of the context entry the last failed context read saw (false when it saw none). */
  #contextFpd = false;

  constructor(
    index: number,
    name: string,
    iotlbEntries: number,
    faultRecords: number,
    host: RemappingUnitHost,
  ) {
    this.index = index;
    this.name = name;
    this.#host = host;
    this.#views = host.views;
    this.#counters = host.counters;
    this.#iotlbHits = host.counters.cell("iommu.iotlb.hit");
    this.#iotlbMisses = host.counters.cell("iommu.iotlb.miss");
    this.#contextHits = host.counters.cell("iommu.context-cache.hit");
    this.#contextMisses = host.counters.cell("iommu.context-cache.miss");
    this.#walks = host.counters.cell("iommu.walk");
    this.#walkReads = host.counters.cell("iommu.walk.reads");
    this.#passthroughs = host.counters.cell("iommu.passthrough");
    this.#invalidations = {
      "context-global": host.counters.cell("iommu.invalidate.context-global"),
      "context-domain": host.counters.cell("iommu.invalidate.context-domain"),
      "context-device": host.counters.cell("iommu.invalidate.context-device"),
      "iotlb-global": host.counters.cell("iommu.invalidate.iotlb-global"),
      "iotlb-domain": host.counters.cell("iommu.invalidate.iotlb-domain"),
      "iotlb-page": host.counters.cell("iommu.invalidate.iotlb-page"),
    };
    this.#invalidateListened = host.events.listenerFlag("iommu.invalidate");
    this.#events = host.events;
    this.#iotlb = new Iotlb(iotlbEntries);
    this.#domainIds[RESERVED_DOMAIN_ID] = 1;
    this.#domainIds[PASSTHROUGH_DOMAIN_ID] = 1;
    this.faults = new FaultRecorder(name, faultRecords, () => {
      this.#counters.add("iommu.fault.interrupt");
      if (this.#events.hasListeners("iommu.fault-interrupt")) {
        this.#events.emit("iommu.fault-interrupt", { unit: this.name, faultStatus: this.faults.status });
      }
    });
  }

  /** RTADDR: physical address of the root table; 0 until the first context entry is written. */
  get rootTableAddress(): number {
    return this.#rootAddress;
  }

  /** Valid IOTLB entries. */
  get iotlbSize(): number {
    return this.#iotlb.size;
  }

  get iotlbCapacity(): number {
    return this.#iotlb.capacity;
  }

  // ---------------------------------------------------------------- hardware: translation

  /**
   * Translates one request of `sid` (already validated by the Iommu). On a fault, records it as
   * the hardware does and returns false with out.faultReason set.
   */
  translate(sid: number, address: number, access: DmaAccess, out: DmaTranslation): boolean {
    const permission = access === "write" ? PTE_WRITE : PTE_READ;
    const slot = this.#iotlb.lookup(sid, address, permission);
    if (slot >= 0) {
      this.#iotlbHits.value++;
      out.physicalAddress = this.#iotlb.physicalAddress(slot, address);
      out.length = this.#iotlb.remaining(slot, address);
      out.faultReason = 0;
      return true;
    }
    let context = this.#contextCache.lookup(sid);
    if (context >= 0) {
      this.#contextHits.value++;
    } else {
      this.#contextMisses.value++;
      context = this.#readContext(sid);
      if (context < 0) return this.#fault(sid, address, access, -context, this.#contextFpd, out);
    }
    const word0 = this.#contextCache.word(context, 0);
    const fpd = (word0 & CONTEXT_FPD) !== 0;
    if (((word0 >>> CONTEXT_TT_SHIFT) & CONTEXT_TT_MASK) === TT_PASS_THROUGH) {
      this.#passthroughs.value++;
      out.physicalAddress = address;
      out.length = PAGE_SIZE - (address % PAGE_SIZE);
      out.faultReason = 0;
      return true;
    }
    this.#iotlbMisses.value++;
    const word2 = this.#contextCache.word(context, 2);
    const addressWidth = word2 & CONTEXT_AW_MASK;
    if (address >= 2 ** (30 + 9 * addressWidth))
      return this.#fault(sid, address, access, FaultReason.BeyondMgaw, fpd, out);
    return this.#walk(
      sid,
      (word2 >>> CONTEXT_DID_SHIFT) & 0xffff,
      entryPfn(word0, this.#contextCache.word(context, 1)),
      addressWidth + 2,
      address,
      access,
      permission,
      fpd,
      out,
    );
  }

  /** The second-level walk (QEMU vtd_iova_to_slpte): R/W, then reserved bits, at every level. */
  #walk(
    sid: number,
    did: number,
    rootPfn: number,
    levels: number,
    address: number,
    access: DmaAccess,
    permission: number,
    fpd: boolean,
    out: DmaTranslation,
  ): boolean {
    this.#walks.value++;
    let pfn = rootPfn;
    let permissions = PTE_READ | PTE_WRITE;
    let reads = 0;
    let reason = 0;
    for (let level = levels; ; level--) {
      const table = this.#views.peek(pfn);
      if (table === undefined) {
        reason = FaultReason.InvalidNextLevelTable;
        break;
      }
      const word = tableIndex(address, level) * 2;
      const low = table[word]!;
      const high = table[word + 1]!;
      reads++;
      if ((low & permission) === 0) {
        reason = permission === PTE_WRITE ? FaultReason.WriteNotPermitted : FaultReason.ReadNotPermitted;
        break;
      }
      const reservedLow = level === 4 ? PTE_RESERVED_LOW_TOP_LEVEL : PTE_RESERVED_LOW;
      if ((low & reservedLow) !== 0 || (high & PTE_RESERVED_HIGH) !== 0) {
        reason = FaultReason.PagingEntryReserved;
        break;
      }
      permissions &= low;
      if (level === 1 || (low & PTE_PAGE_SIZE) !== 0) {
        if (level > 1 && (low & PTE_RESERVED_LOW_LARGE[level as 2 | 3]) !== 0) {
          reason = FaultReason.PagingEntryReserved;
          break;
        }
        const size = LEVEL_SIZE[level]!;
        const base = Math.floor(address / size) * size;
        const physicalBase = entryAddress(low, high);
        this.#iotlb.insert(sid, did, level, address, physicalBase, permissions);
        this.#walkReads.value += reads;
        out.physicalAddress = physicalBase + (address - base);
        out.length = base + size - address;
        out.faultReason = 0;
        return true;
      }
      pfn = entryPfn(low, high);
    }
    this.#walkReads.value += reads;
    return this.#fault(sid, address, access, reason, fpd, out);
  }

  /**
   * Reads `sid`'s root and context entries from RAM (QEMU vtd_dev_to_context_entry) and caches
   * a valid one. Returns the cache slot, or minus the fault reason (with #contextFpd set).
   */
  #readContext(sid: number): number {
    this.#contextFpd = false;
    const root = this.#root;
    const r = (sid >>> 8) * ROOT_ENTRY_WORDS;
    const r0 = root[r]!;
    if ((r0 & ROOT_PRESENT) === 0) return -FaultReason.RootEntryNotPresent;
    if (
      (r0 & ROOT_RESERVED_LOW) !== 0 ||
      (root[r + 1]! & ADDRESS_HIGH_RESERVED) !== 0 ||
      root[r + 2] ||
      root[r + 3]
    ) {
      return -FaultReason.RootEntryReserved;
    }
    const table = this.#views.peek(entryPfn(r0, root[r + 1]!));
    if (table === undefined) return -FaultReason.ContextTableInvalid;
    const c = (sid & 0xff) * CONTEXT_ENTRY_WORDS;
    const c0 = table[c]!;
    const c1 = table[c + 1]!;
    const c2 = table[c + 2]!;
    this.#contextFpd = (c0 & CONTEXT_FPD) !== 0;
    if ((c0 & CONTEXT_PRESENT) === 0) return -FaultReason.ContextEntryNotPresent;
    if (
      (c0 & CONTEXT_RESERVED_LOW) !== 0 ||
      (c1 & ADDRESS_HIGH_RESERVED) !== 0 ||
      (c2 & CONTEXT_RESERVED_WORD2) !== 0 ||
      table[c + 3] !== 0
    ) {
      return -FaultReason.ContextEntryReserved;
    }
    const tt = (c0 >>> CONTEXT_TT_SHIFT) & CONTEXT_TT_MASK;
    const aw = c2 & CONTEXT_AW_MASK;
    const valid = tt === TT_PASS_THROUGH || (tt === TT_MULTI_LEVEL && (aw === AW_39_BIT || aw === AW_48_BIT));
    if (!valid) return -FaultReason.InvalidContextEntry;
    return this.#contextCache.fill(sid, c0, c1, c2);
  }

  /** Fault processing (iommu-anchors §1.5): count, apply FPD to qualified faults, record, announce. */
  #fault(
    sid: number,
    address: number,
    access: DmaAccess,
    reason: number,
    fpd: boolean,
    out: DmaTranslation,
  ): false {
    out.physicalAddress = 0;
    out.length = 0;
    out.faultReason = reason;
    this.#counters.add("iommu.fault");
    if (fpd && isQualifiedFault(reason)) {
      this.#counters.add("iommu.fault.suppressed");
      return false;
    }
    const outcome = this.faults.report(sid, address, access, reason);
    this.#counters.add(
      outcome === "recorded"
        ? "iommu.fault.recorded"
        : outcome === "collapsed"
          ? "iommu.fault.collapsed"
          : "iommu.fault.overflow",
    );
    if (this.#events.hasListeners("iommu.fault")) {
      this.#events.emit("iommu.fault", {
        unit: this.name,
        requesterId: sid,
        address,
        access,
        reason,
        recorded: outcome === "recorded",
      });
    }
    return false;
  }

  // ---------------------------------------------------------------- hardware: invalidation

  /** CCMD with CIRG = 1 (global): O(1) through the context-cache generation. */
  invalidateContextGlobal(): void {
    this.#contextCache.invalidateAll();
    this.#announce("context-global", 0, 0, 0, 0, 0);
  }

  /** CCMD with CIRG = 2 (domain-selective). */
  invalidateContextDomain(domainId: number): void {
    this.#checkDomainId(domainId);
    this.#contextCache.invalidateDomain(domainId);
    this.#announce("context-domain", domainId, 0, 0, 0, 0);
  }

  /** CCMD with CIRG = 3 (device-selective): SID, with FM 0-3 ignoring low function bits. */
  invalidateContextDevice(requesterId: number, functionMask: 0 | 1 | 2 | 3 = 0): void {
    checkRequesterId(requesterId);
    if (functionMask !== 0 && functionMask !== 1 && functionMask !== 2 && functionMask !== 3) {
      throw new PlatformError("out-of-range", `function mask ${String(functionMask)} is not 0-3`);
    }
    this.#contextCache.invalidateDevice(requesterId, functionMask);
    this.#announce("context-device", 0, requesterId, 0, 0, 0);
  }

  /** IOTLB_REG with IIRG = 1 (global). */
  invalidateIotlbGlobal(): void {
    const dropped = this.#iotlb.invalidateAll();
    this.#announce("iotlb-global", 0, 0, 0, 0, dropped);
  }

  /** IOTLB_REG with IIRG = 2 (domain-selective). */
  invalidateIotlbDomain(domainId: number): void {
    this.#checkDomainId(domainId);
    const dropped = this.#iotlb.invalidateDomain(domainId);
    this.#announce("iotlb-domain", domainId, 0, 0, 0, dropped);
  }

  /**
   * IOTLB_REG with IIRG = 3 (page-selective within domain) and IVA: 2^addressMask pages at
   * `address`, which must be aligned to that size. `invalidationHint` (IH) says only leaf
   * entries changed; this model has no paging-structure caches, so it is accepted and ignored.
   */
  invalidateIotlbPages(
    domainId: number,
    address: number,
    addressMask: number,
    invalidationHint = false,
  ): void {
    this.#checkDomainId(domainId);
    if (!Number.isInteger(addressMask) || addressMask < 0 || addressMask > MAX_ADDRESS_MASK) {
      throw new PlatformError(
        "out-of-range",
        `address mask ${String(addressMask)} is not in [0, ${MAX_ADDRESS_MASK}]`,
      );
    }
    const bytes = 2 ** addressMask * PAGE_SIZE;
    if (!(Number.isSafeInteger(address) && address >= 0 && address < IOVA_LIMIT)) {
      checkAddress(address, "invalidation address", IOVA_BITS);
    }
    // Not `%`: on addresses above 2^31 V8 computes it with a slow floating-point call.
    if (Math.floor(address / bytes) * bytes !== address) {
      throw new PlatformError(
        "bad-address",
        `invalidation address ${formatAddress(address)} is not aligned to 2^${addressMask} pages`,
      );
    }
    if (typeof invalidationHint !== "boolean") {
      throw new PlatformError("out-of-range", "the invalidation hint must be a boolean");
    }
    const dropped = this.#iotlb.invalidateRange(domainId, address, bytes);
    this.#announce("iotlb-page", domainId, 0, address, 2 ** addressMask, dropped);
  }

  /** Counts an invalidation command ("iommu.invalidate.<kind>") and announces it. */
  #announce(
    kind: IommuInvalidationKind,
    domainId: number,
    requesterId: number,
    address: number,
    pages: number,
    dropped: number,
  ): void {
    this.#invalidations[kind].value++;
    if (this.#invalidateListened.active) {
      this.#events.emit("iommu.invalidate", {
        unit: this.name,
        kind,
        domainId,
        requesterId,
        address,
        pages,
        dropped,
      });
    }
  }

  // ---------------------------------------------------------------- software: tables and ids

  /** Reads `sid`'s context entry back from RAM. */
  readContextEntry(requesterId: number): ContextEntry {
    checkRequesterId(requesterId);
    const table = this.#contextTable(requesterId >>> 8);
    const c = (requesterId & 0xff) * CONTEXT_ENTRY_WORDS;
    const c0 = table[c]!;
    const c2 = table[c + 2]!;
    return {
      present: (c0 & CONTEXT_PRESENT) !== 0,
      faultProcessingDisable: (c0 & CONTEXT_FPD) !== 0,
      translationType: (c0 >>> CONTEXT_TT_SHIFT) & CONTEXT_TT_MASK,
      pageTableAddress: entryAddress(c0, table[c + 1]!),
      addressWidth: c2 & CONTEXT_AW_MASK,
      domainId: (c2 >>> CONTEXT_DID_SHIFT) & 0xffff,
    };
  }

  /**
   * Makes sure the root table and `sid`'s context table exist, allocating both frames in one
   * request so that a failure changes nothing.
   */
  prepareContext(requesterId: number): void {
    checkRequesterId(requesterId);
    const bus = requesterId >>> 8;
    const haveRoot = this.#rootAddress !== 0;
    if (haveRoot && (this.#root[bus * ROOT_ENTRY_WORDS]! & ROOT_PRESENT) !== 0) return;
    const pfns = this.#host.frames.allocate(haveRoot ? 1 : 2, { owner: this.#host.frameOwner });
    if (!haveRoot) {
      this.#root = this.#views.get(pfns[1]!);
      this.#root.fill(0);
      this.#rootAddress = pfns[1]! * PAGE_SIZE;
    }
    const contextPfn = pfns[0]!;
    this.#views.get(contextPfn).fill(0);
    const r = bus * ROOT_ENTRY_WORDS;
    this.#root[r + 1] = Math.floor(contextPfn / 0x100000);
    this.#root[r] = ((contextPfn % 0x100000) * PAGE_SIZE + ROOT_PRESENT) >>> 0;
  }

  /**
   * Writes a present context entry, present bit last. The entry must be not present: software
   * clears and invalidates before changing a live entry (VT-d 6.5.2.1).
   */
  writeContextEntry(requesterId: number, fields: ContextEntryFields): void {
    this.prepareContext(requesterId);
    const table = this.#contextTable(requesterId >>> 8);
    const c = (requesterId & 0xff) * CONTEXT_ENTRY_WORDS;
    if ((table[c]! & CONTEXT_PRESENT) !== 0) {
      throw new PlatformError("bad-state", `context entry of ${requesterId} on ${this.name} is present`);
    }
    const address = fields.pageTableAddress;
    table[c + 3] = 0;
    table[c + 2] = (AW_48_BIT | (fields.domainId << CONTEXT_DID_SHIFT)) >>> 0;
    table[c + 1] = Math.floor(address / TWO_POW_32);
    table[c] =
      ((address % TWO_POW_32) +
        (fields.translationType << CONTEXT_TT_SHIFT) +
        (fields.faultProcessingDisable ? CONTEXT_FPD : 0) +
        CONTEXT_PRESENT) >>>
      0;
  }

  /** Clears a context entry, present bit first. The caller then invalidates (VT-d 6.5.2.1). */
  clearContextEntry(requesterId: number): void {
    checkRequesterId(requesterId);
    const table = this.#contextTable(requesterId >>> 8);
    if (table === ZERO_TABLE) return;
    const c = (requesterId & 0xff) * CONTEXT_ENTRY_WORDS;
    table[c] = 0;
    table[c + 1] = 0;
    table[c + 2] = 0;
    table[c + 3] = 0;
  }

  /** The lowest free domain id from 2 up (Linux starts there: 0 and 1 are reserved). */
  allocateDomainId(): number {
    const did = this.#domainIds.indexOf(0, PASSTHROUGH_DOMAIN_ID + 1);
    if (did < 0) throw new PlatformError("no-memory", `${this.name} has no free domain id`);
    this.#domainIds[did] = 1;
    return did;
  }

  releaseDomainId(domainId: number): void {
    this.#checkDomainId(domainId);
    if (domainId <= PASSTHROUGH_DOMAIN_ID) {
      throw new PlatformError("bad-handle", `domain id ${domainId} is reserved on ${this.name}`);
    }
    this.#domainIds[domainId] = 0;
  }

  /** True for allocated ids and the reserved ids 0 and 1. */
  isDomainIdAllocated(domainId: number): boolean {
    return (
      Number.isInteger(domainId) && domainId >= 0 && domainId < DOMAIN_IDS && this.#domainIds[domainId] === 1
    );
  }

  #checkDomainId(domainId: number): void {
    if (!this.isDomainIdAllocated(domainId)) {
      throw new PlatformError("bad-handle", `domain id ${String(domainId)} is not allocated on ${this.name}`);
    }
  }

  /** The context table of `bus` as software knows it; ZERO_TABLE when it was never created. */
  #contextTable(bus: number): Uint32Array {
    const r = bus * ROOT_ENTRY_WORDS;
    const r0 = this.#root[r]!;
    if ((r0 & ROOT_PRESENT) === 0) return ZERO_TABLE;
    return this.#views.get(entryPfn(r0, this.#root[r + 1]!));
  }
}
