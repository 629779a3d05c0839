/**
 * The hypervisor's shadow of a trapped guest's IOMMU tables (QEMU's vtd_sync_shadow_page_table
 * feeding VFIO's MAP/UNMAP, iommu-anchors §1.6 and §9.2). For each invalidated page it walks the
 * guest's own table (in guest memory) and makes the host domain of every assigned device attached
 * to that guest domain translate the IOVA to the host frame behind the guest-physical page the
 * guest named, with the guest's permissions, or to nothing. A guest-physical address outside the
 * guest's RAM is never shadowed: the device faults there, as it would on the host.
 *
 * It also remembers, per guest domain, which IOVA pages the guest has announced mapped, so a
 * domain-selective or global invalidation can re-check them, and a device the guest attaches to
 * an already populated domain (JoinDmaDomain) gets the domain's mappings replayed.
 */
import type { IoPermission } from "../iommu/io-page-table.js";
import type { Iommu } from "../iommu/iommu.js";
import type { IommuDomain } from "../iommu/iommu-domain.js";
import { PAGE_SIZE } from "../platform/page.js";
import type { DeviceAssignment } from "./device-assignment.js";
import type { Guest } from "./guest.js";

export class ShadowTables {
  readonly #guest: Guest;
  readonly #hostIommu: Iommu;
  /** Guest domain -> IOVA page numbers it maps, as last seen. */
  readonly #known = new Map<IommuDomain, Set<number>>();
  /** The walk's result for one page, reused: host address (-1: none) and permissions. */
  #hostAddress = -1;
  #permissions: IoPermission = 3;

  constructor(guest: Guest, hostIommu: Iommu) {
    this.#guest = guest;
    this.#hostIommu = hostIommu;
  }

  /** IOVA pages the shadow knows mapped, over all of the guest's domains. */
  get knownPages(): number {
    let pages = 0;
    for (const set of this.#known.values()) pages += set.size;
    return pages;
  }

  /** A page-selective invalidation of [iova, +pages) in `domain`. Returns the pages handled. */
  sync(domain: IommuDomain, iova: number, pages: number): number {
    const first = iova / PAGE_SIZE;
    const targets = this.#shadowing(domain);
    const stale = new Array<boolean>(targets.length).fill(false);
    for (let pfn = first; pfn < first + pages; pfn++) {
      this.#walk(domain, pfn);
      for (let i = 0; i < targets.length; i++) {
        if (targets[i]!.shadowPage(pfn, this.#hostAddress, this.#permissions)) stale[i] = true;
      }
    }
    for (let i = 0; i < targets.length; i++) {
      if (stale[i]) this.#hostIommu.flushRange(targets[i]!.domain!, iova, pages);
    }
    return pages;
  }

  /** A domain-selective invalidation: re-checks every page known mapped in `domain`. */
  resync(domain: IommuDomain): number {
    const known = this.#known.get(domain);
    if (known === undefined) return 0;
    const pages = [...known];
    const targets = this.#shadowing(domain);
    const stale = new Array<boolean>(targets.length).fill(false);
    for (const pfn of pages) {
      this.#walk(domain, pfn);
      for (let i = 0; i < targets.length; i++) {
        if (targets[i]!.shadowPage(pfn, this.#hostAddress, this.#permissions)) stale[i] = true;
      }
    }
    for (let i = 0; i < targets.length; i++) {
      if (stale[i]) this.#hostIommu.flushDomain(targets[i]!.domain!);
    }
    return pages.length;
  }

  /** A global invalidation: every known domain. */
  resyncAll(): number {
    let pages = 0;
    for (const domain of [...this.#known.keys()]) pages += this.resync(domain);
    return pages;
  }

  /**
   * The guest rewrote the context entry of `assignment`'s guest function: follow it. Returns the
   * pages the new host domain got.
   */
  follow(assignment: DeviceAssignment): number {
    const attached = this.#guest.machine.iommu.attachment(assignment.guestRequesterId);
    if (attached === undefined) {
      assignment.useBlocked();
      return 0;
    }
    if (attached === "passthrough") {
      assignment.useStatic();
      return this.#guest.memory.ramBytes / PAGE_SIZE;
    }
    assignment.useShadow(attached);
    const known = this.#known.get(attached);
    if (known === undefined) return 0;
    for (const pfn of known) {
      this.#walk(attached, pfn);
      assignment.shadowPage(pfn, this.#hostAddress, this.#permissions);
    }
    return known.size;
  }

  #shadowing(domain: IommuDomain): DeviceAssignment[] {
    return this.#guest.assignments.filter((a) => a.mode === "shadow" && a.guestDomain === domain);
  }

  /** Reads the guest's entry for IOVA page `pfn` and records what it maps, if anything. */
  #walk(domain: IommuDomain, pfn: number): void {
    this.#hostAddress = -1;
    const mapping = domain.destroyed ? undefined : domain.lookup(pfn * PAGE_SIZE);
    const memory = this.#guest.memory;
    if (mapping !== undefined) {
      const gpa = mapping.physicalAddress + (pfn * PAGE_SIZE - mapping.iova);
      if (memory.isRam(gpa, PAGE_SIZE)) {
        this.#hostAddress = memory.hostAddress(gpa);
        this.#permissions = mapping.permissions;
      }
    }
    let known = this.#known.get(domain);
    if (this.#hostAddress >= 0) {
      if (known === undefined) {
        known = new Set();
        this.#known.set(domain, known);
      }
      known.add(pfn);
    } else if (known !== undefined) {
      known.delete(pfn);
      if (known.size === 0) this.#known.delete(domain);
    }
  }
}
