/**
 * The calls a guest makes into its hypervisor: each one is a trap (a VM exit, the hypervisor's
 * work, a VM entry), counted and charged with the hypervisor's cost model. The guest side
 * (CachingModeIommu, CachingModeRemapMapping, ParavirtualMapping) injects this interface; the
 * host side (GuestHypercalls) implements it for one guest. Requester ids are the guest's: the
 * hypervisor knows which physical device stands behind each.
 *
 * Two families, after the two seeds:
 * - An emulated IOMMU in caching mode (iommu-anchors §1.6, seed 000): every IOTLB or context
 *   invalidation the guest issues traps, and the hypervisor syncs its shadow of the guest's tables
 *   into the host IOMMU. The guest's DMA layer makes one such call per map or unmap.
 * - A paravirtual IOMMU (seed 001, iommu-anchors §10): one call per device to map the guest's
 *   reserved region through the hardware IOMMU; without one, a call per map and per sync for
 *   host-side bouncing, and one per coherent buffer.
 */
import type { IommuDomain } from "../iommu/iommu-domain.js";

/** How the hypervisor serves a device's paravirtual DMA. */
export type ParavirtualAttachment =
  /** The region is mapped at IOVA `base`: every bus address of the device lies in the aperture. */
  | { readonly kind: "aperture"; readonly base: number; readonly pages: number }
  /** No hardware IOMMU: bus addresses are host-physical, bounce buffers the host's. */
  | { readonly kind: "bounce" }
  /** Not an assigned device (an emulated one): guest-physical addresses, nothing to ask. */
  | { readonly kind: "native" };

/** Guest frames of a transfer: `length` bytes from byte `offset` of the pages in `pfns`. */
export interface GuestFrames {
  readonly pfns: readonly number[];
  readonly offset: number;
  readonly length: number;
}

export interface Hypercalls {
  // ---- emulated IOMMU, caching mode

  /** A page-selective IOTLB invalidation of `pages` pages at `iova` in `domain`. */
  invalidatePages(domain: IommuDomain, iova: number, pages: number): void;
  /** A domain-selective IOTLB invalidation. */
  invalidateDomain(domain: IommuDomain): void;
  /** A global invalidation. */
  invalidateAll(): void;
  /** A context-entry change (attach, pass-through, detach) of guest requester `requesterId`. */
  contextChanged(requesterId: number): void;

  // ---- paravirtual IOMMU

  /**
   * Sets up paravirtual DMA for `requesterId` with the guest's reserved region (`pages` frames
   * from guest frame `firstPfn`), every bus address at most `addressLimit`.
   */
  pvAttach(requesterId: number, firstPfn: number, pages: number, addressLimit: number): ParavirtualAttachment;
  /**
   * Bounce mode: the host takes bounce memory below `addressLimit`, copies the guest's bytes in
   * when `writeToDevice`, and returns the bus address of the bounce buffer.
   */
  pvMap(requesterId: number, frames: GuestFrames, writeToDevice: boolean, addressLimit: number): number;
  /** Bounce mode, at the sync that ends a transfer: copies back when `copyBack`, then frees. */
  pvSync(requesterId: number, busAddress: number, frames: GuestFrames, copyBack: boolean): void;
  /**
   * Bounce mode: backs guest frames [firstPfn, +pages) with host memory that is contiguous and
   * below `addressLimit`, and returns its bus address (a coherent buffer the device can reach).
   */
  pvCoherent(requesterId: number, firstPfn: number, pages: number, addressLimit: number): number;
}
