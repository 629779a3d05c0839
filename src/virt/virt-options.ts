/**
 * Options of the hypervisor (its cost model) and of each guest it creates, with their checks.
 *
 * The default trap cost follows the vIOMMU measurements (perf-security-anchors §4 and §12): a
 * strict map plus unmap of one page costs about 6.9k cycles on bare metal and about 35k when
 * each traps to the hypervisor, so one trap adds about 14k cycles, some 4.7 µs at 3 GHz; the
 * hypervisor's own work per page (walk the guest's entry, update the host table, pin) is taken
 * as the bare-metal software part of one operation, about 1.2k cycles or 400 ns.
 */
import type { ContainerModule } from "inversify";
import { GiB, MiB, PAGE_SIZE } from "../platform/page.js";
import { PlatformError } from "../platform/platform-error.js";

export interface HypervisorOptions {
  /** Virtual ns one trap costs (VM exit, dispatch, VM entry). */
  readonly trapNs: number;
  /** Virtual ns of the hypervisor's work per guest page a trap handles. */
  readonly perPageNs: number;
}

export const DEFAULT_HYPERVISOR_OPTIONS: HypervisorOptions = { trapNs: 4_700, perPageNs: 400 };

/**
 * How a guest does DMA for the devices assigned to it:
 * - native: the guest sees no IOMMU; each assigned device's host domain maps all of the guest's
 *   RAM, guest-physical to host-physical, once (VFIO/KVM device assignment). No traps.
 * - trapped: the guest sees an IOMMU in caching mode and remaps (strict or lazy); every map and
 *   unmap traps, and the hypervisor shadows the guest's tables into the host IOMMU (seed 000).
 * - paravirtual: a reserved region of guest memory mapped once, bounce buffering into it; host-
 *   side bouncing with a trap per map and per sync when the host has no IOMMU (seed 001).
 */
export type GuestDmaInterface = "native" | "trapped" | "paravirtual";
export const GUEST_DMA_INTERFACES: readonly GuestDmaInterface[] = ["native", "trapped", "paravirtual"];

/** trapped: one invalidation per page (the per-page mapping path) or one per range (map_sg). */
export type InvalidationGranularity = "page" | "range";

/** Guest side: how the guest's caching-mode IOMMU issues its invalidations. */
export interface EmulatedIommuOptions {
  readonly invalidation: InvalidationGranularity;
}

/** Guest side: the paravirtual IOMMU's reserved region. */
export interface ParavirtualOptions {
  readonly regionBytes: number;
}

export interface GuestOptions {
  /** Unique among the hypervisor's guests. */
  readonly name: string;
  /** Guest RAM in bytes (default 64 MiB), whole pages, at least 16 MiB. */
  readonly memory?: number;
  readonly dmaInterface?: GuestDmaInterface;
  /** trapped: the guest HAL's unmap policy (default "strict"). */
  readonly remapping?: "strict" | "lazy";
  /** trapped: default "range". */
  readonly invalidation?: InvalidationGranularity;
  /** paravirtual: bytes of the reserved region (default 4 MiB), whole pages. */
  readonly regionBytes?: number;
  /** Driver packages (and test doubles) the guest's container loads. */
  readonly modules?: readonly ContainerModule[];
  /** The guest's own seed (frame placement inside the guest); default the host's options seed. */
  readonly seed?: number;
  readonly coherent?: boolean;
}

export interface ResolvedGuestOptions {
  readonly name: string;
  readonly memory: number;
  readonly dmaInterface: GuestDmaInterface;
  readonly remapping: "strict" | "lazy";
  readonly invalidation: InvalidationGranularity;
  readonly regionBytes: number;
  readonly modules: readonly ContainerModule[];
  readonly seed: number;
  readonly coherent: boolean;
}

/** Largest guest: 64 GiB of host frames allocated at creation is plenty for a simulation. */
const MAX_GUEST_MEMORY = 64 * GiB;

export function resolveHypervisorOptions(options: Partial<HypervisorOptions> = {}): HypervisorOptions {
  const resolved = { ...DEFAULT_HYPERVISOR_OPTIONS, ...options };
  for (const [name, value] of Object.entries(resolved)) {
    if (!Number.isSafeInteger(value) || value < 0) {
      throw new PlatformError("out-of-range", `hypervisor option ${name} ${String(value)} must be ns >= 0`);
    }
  }
  return resolved;
}

export function resolveGuestOptions(options: GuestOptions, defaultSeed: number): ResolvedGuestOptions {
  if (typeof options?.name !== "string" || options.name.length === 0) {
    throw new PlatformError("bad-handle", "a guest needs a non-empty name");
  }
  const memory = options.memory ?? 64 * MiB;
  if (
    !Number.isSafeInteger(memory) ||
    memory < 16 * MiB ||
    memory > MAX_GUEST_MEMORY ||
    memory % PAGE_SIZE !== 0
  ) {
    throw new PlatformError(
      "out-of-range",
      `guest memory ${String(memory)} must be whole pages between 16 MiB and 64 GiB`,
    );
  }
  const dmaInterface = options.dmaInterface ?? "native";
  if (!GUEST_DMA_INTERFACES.includes(dmaInterface)) {
    throw new PlatformError(
      "out-of-range",
      `guest DMA interface ${String(dmaInterface)} is not one of ${GUEST_DMA_INTERFACES.join(", ")}`,
    );
  }
  const remapping = options.remapping ?? "strict";
  if (remapping !== "strict" && remapping !== "lazy") {
    throw new PlatformError(
      "out-of-range",
      `guest remapping ${String(remapping)} is neither strict nor lazy`,
    );
  }
  const invalidation = options.invalidation ?? "range";
  if (invalidation !== "page" && invalidation !== "range") {
    throw new PlatformError("out-of-range", `invalidation ${String(invalidation)} is neither page nor range`);
  }
  const regionBytes = options.regionBytes ?? 4 * MiB;
  if (
    !Number.isSafeInteger(regionBytes) ||
    regionBytes < PAGE_SIZE ||
    regionBytes % PAGE_SIZE !== 0 ||
    regionBytes > memory / 2
  ) {
    throw new PlatformError(
      "out-of-range",
      `paravirtual region ${String(regionBytes)} must be whole pages, at most half the guest's memory`,
    );
  }
  const seed = options.seed ?? defaultSeed;
  if (!Number.isSafeInteger(seed))
    throw new PlatformError("out-of-range", `seed ${String(seed)} must be an integer`);
  const coherent = options.coherent ?? true;
  if (typeof coherent !== "boolean") throw new PlatformError("out-of-range", "coherent must be a boolean");
  return {
    name: options.name,
    memory,
    dmaInterface,
    remapping,
    invalidation,
    regionBytes,
    modules: [...(options.modules ?? [])],
    seed,
    coherent,
  };
}
