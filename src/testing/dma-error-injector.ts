/**
 * Injected DMA errors: a DmaRemapper decorator in front of the IOMMU, at the one choke point every
 * device access crosses (DESIGN.md "The one choke point"). A rule makes the accesses it matches
 * fail as a translation fault with the reason it names, so a test can make any device model see a
 * failing transfer, in any remapping mode, without building page tables that fault.
 *
 * An injected error is the port's, not the IOMMU's: it is not written to the fault recording
 * registers and emits no "iommu.fault" (the kit's fault matchers see only real ones). The device
 * gets the same DmaResult a real fault gives it: { ok: false, kind: "iommu-fault", faultReason }.
 */
import { inject, injectable } from "inversify";
import { FaultReason } from "../iommu/fault-reason.js";
import { Iommu } from "../iommu/iommu.js";
import type { DmaAccess, DmaRemapper, DmaTranslation } from "../platform/dma-remapper.js";
import { checkAddress, checkLength, PAGE_SIZE } from "../platform/page.js";
import { checkRequesterId } from "../platform/pci-address.js";
import { PlatformError } from "../platform/platform-error.js";

export interface DmaErrorRule {
  /** Only this requester's accesses (default: every device). */
  readonly requesterId?: number;
  /** First bus address of the failing range. */
  readonly address: number;
  /** Bytes from `address` (default 1); every page the range touches fails. */
  readonly length?: number;
  /** Only reads or only writes (default both). */
  readonly access?: DmaAccess;
  /** VT-d fault reason of the failure (default: 6 for a read, 5 for a write, a PTE without the right). */
  readonly reason?: number;
  /** Fail this many accesses, then let them pass (default: all of them). */
  readonly times?: number;
}

/** A live rule: how often it fired. */
export class InjectedDmaError {
  hits = 0;

  constructor(
    readonly rule: DmaErrorRule,
    /** Pages [firstPage, endPage) of bus addresses it covers. */
    readonly firstPage: number,
    readonly endPage: number,
  ) {}

  get exhausted(): boolean {
    return this.rule.times !== undefined && this.hits >= this.rule.times;
  }
}

@injectable()
export class DmaErrorInjector implements DmaRemapper {
  // TypeScript `private`, not `#`: tsx lowers #-members of decorated classes to WeakMap lookups,
  // which would sit on the translate path.
  private readonly inner: DmaRemapper;
  private rules: InjectedDmaError[] = [];

  constructor(@inject(Iommu) inner: Iommu) {
    this.inner = inner;
  }

  /** Adds a rule; it applies from the next access on. */
  inject(rule: DmaErrorRule): InjectedDmaError {
    checkAddress(rule.address, "injected error address");
    const length = checkLength(
      rule.length ?? 1,
      "injected error length",
      Number.MAX_SAFE_INTEGER - rule.address,
    );
    if (rule.requesterId !== undefined) checkRequesterId(rule.requesterId);
    if (rule.access !== undefined && rule.access !== "read" && rule.access !== "write") {
      throw new PlatformError(
        "out-of-range",
        `injected error access ${String(rule.access)} is neither read nor write`,
      );
    }
    if (rule.reason !== undefined) checkLength(rule.reason, "injected fault reason", 0xff);
    if (rule.times !== undefined) checkLength(rule.times, "injected error count");
    const firstPage = Math.floor(rule.address / PAGE_SIZE);
    const endPage = Math.floor((rule.address + Math.max(length, 1) - 1) / PAGE_SIZE) + 1;
    const injected = new InjectedDmaError({ ...rule }, firstPage, endPage);
    this.rules = [...this.rules, injected];
    return injected;
  }

  /** Removes one rule, or every rule. */
  clear(injected?: InjectedDmaError): void {
    this.rules = injected === undefined ? [] : this.rules.filter((r) => r !== injected);
  }

  translate(requesterId: number, busAddress: number, access: DmaAccess, out: DmaTranslation): boolean {
    if (this.rules.length > 0) {
      const page = Math.floor(busAddress / PAGE_SIZE);
      for (const injected of this.rules) {
        const { rule } = injected;
        if (
          page >= injected.firstPage &&
          page < injected.endPage &&
          (rule.requesterId === undefined || rule.requesterId === requesterId) &&
          (rule.access === undefined || rule.access === access) &&
          !injected.exhausted
        ) {
          injected.hits++;
          out.faultReason =
            rule.reason ?? (access === "read" ? FaultReason.ReadNotPermitted : FaultReason.WriteNotPermitted);
          return false;
        }
      }
    }
    return this.inner.translate(requesterId, busAddress, access, out);
  }
}
