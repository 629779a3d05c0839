/**
 * The hypervisor's half of the paravirtual IOMMU (seed 001): what each pv* hypercall does.
 *
 * - With a hardware IOMMU (host translation on), attach maps the guest's reserved region into the
 *   device's domain once, DMA-contiguous, at an IOVA window that lies below the device's reach
 *   and clear of the MSI window: "map it dma contiguous using some kind of hardware IOMMU".
 *   Guest memory that is scattered on the host, or above the device's reach, is then no concern.
 * - Without one, attach answers "bounce": the host "reserves the memory for the DMA transaction
 *   (also recognizing the dma_mask) and copies it from/to the guest" at map and at sync. Bounce
 *   buffers are host frames, contiguous, below the device's reach, under their own owner tag.
 *   A coherent buffer's guest pages are moved onto host frames the device reaches.
 *
 * Every request is checked: guest frames must be the guest's RAM, and a sync must name a bounce
 * buffer this guest was given. A refused request throws a PlatformError and changes nothing.
 */
import type { Iommu } from "../iommu/iommu.js";
import type { FrameAllocator } from "../platform/frame-allocator.js";
import { formatAddress, GiB, LARGE_PAGE_SIZE, PAGE_SIZE, spanPages } from "../platform/page.js";
import type { PhysicalMemory } from "../platform/physical-memory.js";
import { PlatformError } from "../platform/platform-error.js";
import type { DeviceAssignment } from "./device-assignment.js";
import type { Guest } from "./guest.js";
import type { GuestFrames, ParavirtualAttachment } from "./hypercalls.js";

/** Frame owner of host bounce buffers. */
export const HOST_BOUNCE_OWNER = "hypervisor.bounce";
/** The MSI window is never DMA-translated (iommu-anchors §1.7): no aperture overlaps it. */
const MSI_START = 0xfee0_0000;
const MSI_END = 0xfef0_0000;
const FOUR_GIB = 4 * GiB;

interface HostBounce {
  readonly guest: Guest;
  readonly pfns: readonly number[];
}

export class ParavirtualHost {
  readonly #iommu: Iommu;
  readonly #memory: PhysicalMemory;
  readonly #frames: FrameAllocator;
  readonly #bounceOwner: number;
  /** Live bounce buffers by the bus address handed out. */
  readonly #bounces = new Map<number, HostBounce>();

  constructor(iommu: Iommu, memory: PhysicalMemory, frames: FrameAllocator) {
    this.#iommu = iommu;
    this.#memory = memory;
    this.#frames = frames;
    this.#bounceOwner = frames.registerOwner(HOST_BOUNCE_OWNER);
  }

  /** Bounce buffers handed out and not yet synced back. */
  get liveBounces(): number {
    return this.#bounces.size;
  }

  attach(
    guest: Guest,
    assignment: DeviceAssignment | undefined,
    firstPfn: number,
    pages: number,
    addressLimit: number,
  ): ParavirtualAttachment {
    if (assignment === undefined) return { kind: "native" };
    checkGuestRun(guest, firstPfn, pages);
    if (assignment.mode !== "aperture") return { kind: "bounce" };
    const base = placeAperture(pages, addressLimit);
    assignment.mapAperture(base, firstPfn, pages);
    return { kind: "aperture", base, pages };
  }

  /** Always copies in, whatever the direction, as swiotlb does: bytes the device does not write keep their value. */
  map(guest: Guest, frames: GuestFrames, addressLimit: number): number {
    checkFrames(guest, frames);
    const inPage = frames.offset % PAGE_SIZE;
    const pages = spanPages(inPage, frames.length);
    const pfns = this.#frames.allocate(pages, {
      owner: this.#bounceOwner,
      contiguous: true,
      maxAddress: Math.min(addressLimit, this.#memory.limit - 1),
    });
    const busAddress = pfns[0]! * PAGE_SIZE + inPage;
    this.#copy(guest, frames, busAddress, true);
    this.#bounces.set(busAddress, { guest, pfns });
    return busAddress;
  }

  sync(guest: Guest, busAddress: number, frames: GuestFrames, copyBack: boolean): void {
    const bounce = this.#bounces.get(busAddress);
    if (bounce === undefined || bounce.guest !== guest) {
      throw new PlatformError(
        "bad-handle",
        `${formatAddress(busAddress)} is not a bounce buffer of ${guest.name}`,
      );
    }
    checkFrames(guest, frames);
    if (spanPages(frames.offset % PAGE_SIZE, frames.length) > bounce.pfns.length) {
      throw new PlatformError(
        "out-of-range",
        `${frames.length} bytes do not fit the bounce buffer at ${formatAddress(busAddress)}`,
      );
    }
    if (copyBack) this.#copy(guest, frames, busAddress, false);
    this.#frames.free(bounce.pfns, this.#bounceOwner);
    this.#bounces.delete(busAddress);
  }

  coherent(guest: Guest, firstPfn: number, pages: number, addressLimit: number): number {
    if (this.#iommu.translationEnabled) {
      throw new PlatformError("bad-state", "coherent re-backing is for hosts without DMA remapping");
    }
    checkGuestRun(guest, firstPfn, pages);
    const pfns = this.#frames.allocate(pages, {
      owner: guest.hostOwner,
      contiguous: true,
      maxAddress: Math.min(addressLimit, this.#memory.limit - 1),
    });
    const old = guest.memory.replaceBacking(firstPfn, pfns);
    this.#frames.free(old, guest.hostOwner);
    return pfns[0]! * PAGE_SIZE;
  }

  /** Frees the bounce buffers a guest still holds (it is being destroyed). */
  releaseGuest(guest: Guest): void {
    for (const [busAddress, bounce] of [...this.#bounces]) {
      if (bounce.guest !== guest) continue;
      this.#frames.free(bounce.pfns, this.#bounceOwner);
      this.#bounces.delete(busAddress);
    }
  }

  /** Guest bytes to (toBounce) or from the bounce buffer, one host copy per guest page run. */
  #copy(guest: Guest, frames: GuestFrames, busAddress: number, toBounce: boolean): void {
    const { pfns, length } = frames;
    let position = frames.offset;
    let done = 0;
    while (done < length) {
      const inPage = position % PAGE_SIZE;
      const bytes = Math.min(PAGE_SIZE - inPage, length - done);
      const host = guest.memory.hostAddress(pfns[(position - inPage) / PAGE_SIZE]! * PAGE_SIZE + inPage);
      if (toBounce) this.#memory.copy(busAddress + done, host, bytes);
      else this.#memory.copy(host, busAddress + done, bytes);
      done += bytes;
      position += bytes;
    }
  }
}

/**
 * The highest window of `pages` below the device's reach and below 4 GiB (where a PCI device is
 * served first, as dma-iommu does), 2 MiB aligned when there is room, clear of the MSI window.
 */
export function placeAperture(pages: number, addressLimit: number): number {
  const size = pages * PAGE_SIZE;
  const top = Math.min(addressLimit + 1, FOUR_GIB);
  let base = alignDown(top - size);
  if (base < MSI_END && base + size > MSI_START) base = alignDown(MSI_START - size);
  if (base < PAGE_SIZE) {
    throw new PlatformError(
      "no-memory",
      `a ${size}-byte region does not fit below ${formatAddress(addressLimit)} (IOVA 0 is never used)`,
    );
  }
  return base;
}

/** 2 MiB aligned where the value allows, page aligned below that. */
function alignDown(value: number): number {
  const granule = value >= LARGE_PAGE_SIZE ? LARGE_PAGE_SIZE : PAGE_SIZE;
  return Math.floor(value / granule) * granule;
}

function checkGuestRun(guest: Guest, firstPfn: number, pages: number): void {
  if (
    !Number.isSafeInteger(firstPfn) ||
    !Number.isSafeInteger(pages) ||
    pages < 1 ||
    !guest.memory.isRam(firstPfn * PAGE_SIZE, pages * PAGE_SIZE)
  ) {
    throw new PlatformError(
      "out-of-range",
      `guest frames ${String(firstPfn)}+${String(pages)} are not ${guest.name}'s RAM`,
    );
  }
}

function checkFrames(guest: Guest, frames: GuestFrames): void {
  const { pfns, offset, length } = frames;
  if (
    !Array.isArray(pfns) ||
    !Number.isSafeInteger(offset) ||
    !Number.isSafeInteger(length) ||
    offset < 0 ||
    length < 1 ||
    Math.ceil((offset + length) / PAGE_SIZE) > pfns.length
  ) {
    throw new PlatformError(
      "out-of-range",
      `${String(length)} bytes at ${String(offset)} are not inside the frames given`,
    );
  }
  const first = Math.floor(offset / PAGE_SIZE);
  const last = Math.ceil((offset + length) / PAGE_SIZE);
  for (let i = first; i < last; i++) guest.memory.hostFrame(pfns[i]!);
}
