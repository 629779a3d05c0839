/**
 * One physical device given to one guest, and the host IOMMU domain its DMA translates through.
 * The device keeps its host requester id; every bus address it uses is translated by the HOST
 * IOMMU in the domain this assignment sets up, so whatever a guest programs into it (guest-
 * physical addresses, host-physical addresses it has no business knowing, garbage) can only
 * reach what that domain maps: pages of this guest's RAM, never the host's or another guest's.
 *
 * The domain, by the guest's DMA interface:
 * - static: all of the guest's RAM, guest-physical to host-physical (VFIO's type1 container
 *   with the guest's memory pinned and mapped at its GPAs). Runs of host-contiguous frames become
 *   one map each, so superpages are used where the backing allows.
 * - shadow: a mirror of the guest-IOMMU domain the guest attached the device to, page by page,
 *   kept current by the guest's caching-mode invalidations (ShadowTables); 4 KiB pages only.
 * - aperture: only the paravirtual region, at an IOVA window below the device's reach.
 * - blocked: no context entry at all (a trapped guest that has not attached the device yet):
 *   every DMA faults with reason 2.
 * - unprotected: the host has no DMA remapping; the device's bus addresses are host-physical.
 */
import { IoPermission } from "../iommu/io-page-table.js";
import type { Iommu } from "../iommu/iommu.js";
import type { IommuDomain } from "../iommu/iommu-domain.js";
import { PAGE_SIZE } from "../platform/page.js";
import { PciCommand } from "../platform/pci-config-space.js";
import type { PciDevice } from "../platform/pci-device.js";
import { PlatformError } from "../platform/platform-error.js";
import type { GuestPhysicalMemory } from "./guest-physical-memory.js";
import type { PassthroughFunction } from "./passthrough-function.js";

export type AssignmentMode = "static" | "shadow" | "aperture" | "blocked" | "unprotected";

/** The paravirtual region as the device sees it. */
export interface Aperture {
  /** First IOVA of the window. */
  readonly base: number;
  readonly pages: number;
  /** First guest frame of the region. */
  readonly firstPfn: number;
}

export class DeviceAssignment {
  readonly device: PciDevice;
  readonly guestFunction: PassthroughFunction;
  readonly hostRequesterId: number;
  readonly guestRequesterId: number;
  readonly #iommu: Iommu;
  readonly #memory: GuestPhysicalMemory;
  #mode: AssignmentMode = "blocked";
  #domain: IommuDomain | undefined;
  #guestDomain: IommuDomain | undefined;
  #aperture: Aperture | undefined;
  #released = false;

  constructor(
    device: PciDevice,
    guestFunction: PassthroughFunction,
    guestRequesterId: number,
    iommu: Iommu,
    memory: GuestPhysicalMemory,
  ) {
    this.device = device;
    this.guestFunction = guestFunction;
    this.hostRequesterId = device.requesterId;
    this.guestRequesterId = guestRequesterId;
    this.#iommu = iommu;
    this.#memory = memory;
  }

  get mode(): AssignmentMode {
    return this.#mode;
  }

  /** The host domain the device translates through, if it has one. */
  get domain(): IommuDomain | undefined {
    return this.#domain;
  }

  /** shadow: the guest-IOMMU domain being mirrored. */
  get guestDomain(): IommuDomain | undefined {
    return this.#guestDomain;
  }

  get aperture(): Aperture | undefined {
    return this.#aperture;
  }

  get released(): boolean {
    return this.#released;
  }

  /** Maps all guest RAM at its guest-physical addresses in a fresh domain. */
  useStatic(): void {
    const domain = this.#iommu.createDomain();
    try {
      let runGuest = -1;
      let runHost = -1;
      let runPages = 0;
      const flush = (): void => {
        if (runPages > 0) {
          domain.map(runGuest * PAGE_SIZE, runHost * PAGE_SIZE, runPages * PAGE_SIZE, IoPermission.ReadWrite);
        }
      };
      this.#memory.forEachBacking((guestPfn, hostPfn) => {
        if (runPages > 0 && guestPfn === runGuest + runPages && hostPfn === runHost + runPages) {
          runPages++;
          return;
        }
        flush();
        runGuest = guestPfn;
        runHost = hostPfn;
        runPages = 1;
      });
      flush();
    } catch (error) {
      this.#iommu.destroyDomain(domain);
      throw error;
    }
    this.#use("static", domain, undefined);
  }

  /** An empty domain mirroring `guestDomain`; ShadowTables fills it. */
  useShadow(guestDomain: IommuDomain): void {
    this.#use("shadow", this.#iommu.createDomain({ superpages: false }), guestDomain);
  }

  /** An empty domain, for the paravirtual region to be mapped into. */
  useAperture(): void {
    this.#use("aperture", this.#iommu.createDomain({ superpages: false }), undefined);
  }

  /** No context entry: the device's DMA faults. */
  useBlocked(): void {
    this.#use("blocked", undefined, undefined);
  }

  /** No remapping on the host: nothing to set up, nothing protects. */
  useUnprotected(): void {
    this.#use("unprotected", undefined, undefined);
  }

  /**
   * Shadow: makes IOVA page `iovaPfn` translate to `hostAddress` with `permissions`, or to
   * nothing when `hostAddress` is negative. Returns true when an entry the IOTLB may hold was
   * removed or changed (the caller invalidates).
   */
  shadowPage(iovaPfn: number, hostAddress: number, permissions: IoPermission): boolean {
    const domain = this.#domain!;
    const iova = iovaPfn * PAGE_SIZE;
    const current = domain.lookup(iova);
    let stale = false;
    if (current !== undefined) {
      if (
        hostAddress >= 0 &&
        current.physicalAddress + (iova - current.iova) === hostAddress &&
        current.permissions === permissions
      ) {
        return false;
      }
      domain.unmap(iova, PAGE_SIZE);
      stale = true;
    }
    if (hostAddress >= 0) domain.map(iova, hostAddress, PAGE_SIZE, permissions);
    return stale;
  }

  /** Aperture: maps the region's guest frames, DMA-contiguous from IOVA `base`. */
  mapAperture(base: number, firstPfn: number, pages: number): void {
    if (this.#mode !== "aperture") {
      throw new PlatformError("bad-state", `the device at ${this.hostRequesterId} has no aperture domain`);
    }
    const domain = this.#domain!;
    if (this.#aperture !== undefined) {
      domain.unmap(this.#aperture.base, this.#aperture.pages * PAGE_SIZE);
      this.#iommu.flushRange(domain, this.#aperture.base, this.#aperture.pages);
      this.#aperture = undefined;
    }
    let done = 0;
    while (done < pages) {
      const host = this.#memory.hostFrame(firstPfn + done);
      let run = 1;
      while (done + run < pages && this.#memory.hostFrame(firstPfn + done + run) === host + run) run++;
      domain.map(base + done * PAGE_SIZE, host * PAGE_SIZE, run * PAGE_SIZE, IoPermission.ReadWrite);
      done += run;
    }
    this.#aperture = { base, pages, firstPfn };
  }

  /** Takes the device back: no context entry, the domain freed, bus mastering off. */
  release(): void {
    if (this.#released) return;
    this.#use("blocked", undefined, undefined);
    this.device.config.setCommandBit(PciCommand.busMaster, false);
    this.#released = true;
  }

  /** Attaches the new domain (or clears the context entry), then frees the old domain. */
  #use(mode: AssignmentMode, domain: IommuDomain | undefined, guestDomain: IommuDomain | undefined): void {
    const rid = this.hostRequesterId;
    const old = this.#domain;
    if (domain !== undefined) this.#iommu.attach(rid, domain);
    else if (this.#iommu.attachment(rid) !== undefined) this.#iommu.detach(rid);
    if (old !== undefined) this.#iommu.destroyDomain(old);
    this.#mode = mode;
    this.#domain = domain;
    this.#guestDomain = guestDomain;
    this.#aperture = undefined;
  }
}
