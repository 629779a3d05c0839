/**
 * The hypervisor of a host Machine (bound by virtModule): it creates guests, gives them PCI
 * devices, and answers their hypercalls.
 *
 * - createGuest: the guest's RAM is allocated from the host's frame allocator, page by page at
 *   scattered places, under an owner tag of its own ("guest:NAME"), and a guest Machine is built
 *   on it (Guest). Host and guests share one scheduler, so one virtual clock.
 * - assignDevice: a device on the HOST's bus becomes the guest's. It keeps its host requester id,
 *   host DmaPort and host interrupt line; the guest gets a PassthroughFunction on its own bus
 *   (registers and command bits pass through, its interrupt line is routed onto the device's),
 *   and the device's context entry in the host IOMMU points at a domain set up by the guest's DMA
 *   interface (DeviceAssignment). A device a host driver holds (its requester already attached
 *   to a host DMA domain) cannot be assigned; neither can any device when the host has no DMA
 *   remapping, unless the caller accepts an unprotected assignment (paravirtual guests always
 *   may: that is their bounce mode), because without remapping the device reaches all of the
 *   host's memory (seed 002: "you give that host an engine which is capable of overwriting any
 *   device-addressable memory on the system").
 * - unassign / destroyGuest give everything back: context entries, domains, routes, frames.
 */
import { inject, injectable } from "inversify";
import { Iommu } from "../iommu/iommu.js";
import { type ResolvedMachineOptions, resolveMachineOptions } from "../machine/machine-options.js";
import { MachineOptionsToken } from "../machine/tokens.js";
import { FrameAllocator } from "../platform/frame-allocator.js";
import { PAGE_SIZE } from "../platform/page.js";
import { PciBus, type PciSlotRequest } from "../platform/pci-bus.js";
import { PhysicalMemory } from "../platform/physical-memory.js";
import { PlatformError } from "../platform/platform-error.js";
import { Scheduler } from "../platform/scheduler.js";
import { Counters } from "../trace/counters.js";
import { EventBus } from "../trace/event-bus.js";
import { DeviceAssignment } from "./device-assignment.js";
import { Guest } from "./guest.js";
import { GuestHypercalls } from "./guest-hypercalls.js";
import { GuestPhysicalMemory } from "./guest-physical-memory.js";
import { guestPlatformModule } from "./guest-platform-module.js";
import { GuestScheduler } from "./guest-scheduler.js";
import { InterruptRouter } from "./interrupt-router.js";
import { ParavirtualHost } from "./paravirtual-host.js";
import { PassthroughFunction } from "./passthrough-function.js";
import { ShadowTables } from "./shadow-tables.js";
import { HypervisorOptions } from "./tokens.js";
import "./virt-events.js";
import {
  type GuestOptions,
  type HypervisorOptions as HypervisorOptionsShape,
  resolveGuestOptions,
} from "./virt-options.js";

export interface AssignOptions {
  /** Where the device appears on the guest's bus (default: the next free slot). */
  readonly slot?: PciSlotRequest;
  /** Assign even though the host has no DMA remapping: the device can reach all host memory. */
  readonly allowUnprotected?: boolean;
}

@injectable()
export class Hypervisor {
  readonly options: HypervisorOptionsShape;
  private readonly iommu: Iommu;
  private readonly memory: PhysicalMemory;
  private readonly frames: FrameAllocator;
  private readonly scheduler: Scheduler;
  private readonly pci: PciBus;
  private readonly events: EventBus;
  private readonly counters: Counters;
  private readonly seed: number;
  private readonly router: InterruptRouter;
  private readonly paravirtual: ParavirtualHost;
  private readonly guestList: Guest[] = [];
  private readonly assigned = new Map<number, { guest: Guest; assignment: DeviceAssignment }>();
  private nextGuestId = 1;

  constructor(
    @inject(HypervisorOptions) options: HypervisorOptionsShape,
    @inject(MachineOptionsToken) machine: ResolvedMachineOptions,
    @inject(Iommu) iommu: Iommu,
    @inject(PhysicalMemory) memory: PhysicalMemory,
    @inject(FrameAllocator) frames: FrameAllocator,
    @inject(Scheduler) scheduler: Scheduler,
    @inject(PciBus) pci: PciBus,
    @inject(EventBus) events: EventBus,
    @inject(Counters) counters: Counters,
  ) {
    this.options = options;
    this.seed = machine.platform.seed;
    this.iommu = iommu;
    this.memory = memory;
    this.frames = frames;
    this.scheduler = scheduler;
    this.pci = pci;
    this.events = events;
    this.counters = counters;
    this.router = new InterruptRouter(pci, scheduler);
    this.paravirtual = new ParavirtualHost(iommu, memory, frames);
  }

  /** Live guests, in creation order. */
  get guests(): readonly Guest[] {
    return this.guestList;
  }

  /** Host bounce buffers handed to paravirtual guests and not yet synced back. */
  get liveBounceBuffers(): number {
    return this.paravirtual.liveBounces;
  }

  /** A new guest: its RAM taken from the host (scattered frames), its Machine built on it. */
  createGuest(options: GuestOptions): Guest {
    const id = this.nextGuestId;
    const resolved = resolveGuestOptions(options, this.seed + id);
    if (this.guestList.some((guest) => guest.name === resolved.name)) {
      throw new PlatformError("bad-state", `a guest named ${resolved.name} already exists`);
    }
    const ranges = resolveMachineOptions({ memory: resolved.memory, seed: resolved.seed }).platform.ramRanges;
    const owner = this.frames.registerOwner(`guest:${resolved.name}`);
    const pfns = this.frames.allocate(resolved.memory / PAGE_SIZE, { owner });
    let guest: Guest;
    try {
      const memory = new GuestPhysicalMemory(ranges, this.memory, pfns);
      const scheduler = new GuestScheduler(
        this.scheduler,
        (line) => this.router.hostLine(id, line),
        this.events,
        this.counters,
      );
      const hypercalls = new GuestHypercalls(this.options, this.paravirtual, this.events, this.counters);
      guest = new Guest(
        id,
        resolved,
        memory,
        owner,
        guestPlatformModule(resolved, memory, scheduler, hypercalls),
      );
      hypercalls.connect(guest, new ShadowTables(guest, this.iommu));
    } catch (error) {
      this.frames.free(pfns, owner);
      throw error;
    }
    this.nextGuestId++;
    this.guestList.push(guest);
    this.counters.add("virt.guest.create");
    return guest;
  }

  /** Takes every device back, then returns the guest's RAM to the host. */
  destroyGuest(guest: Guest): void {
    this.checkGuest(guest);
    for (const assignment of [...guest.assignments]) this.unassign(assignment);
    this.paravirtual.releaseGuest(guest);
    this.router.release(guest.id);
    const pfns: number[] = [];
    guest.memory.forEachBacking((_pfn, hostPfn) => pfns.push(hostPfn));
    this.frames.free(pfns, guest.hostOwner);
    guest.markDestroyed();
    this.guestList.splice(this.guestList.indexOf(guest), 1);
    this.counters.add("virt.guest.destroy");
  }

  /** Gives the device at host requester id `hostRequesterId` to `guest` (see the file comment). */
  assignDevice(guest: Guest, hostRequesterId: number, options: AssignOptions = {}): DeviceAssignment {
    this.checkGuest(guest);
    const device = this.pci.device(hostRequesterId);
    const owner = this.assigned.get(hostRequesterId);
    if (owner !== undefined) {
      throw new PlatformError("bad-state", `${device.name} is already assigned to ${owner.guest.name}`);
    }
    if (this.iommu.attachment(hostRequesterId) !== undefined) {
      throw new PlatformError(
        "bad-state",
        `${device.name} is in use on the host: its requester is attached to a host DMA domain`,
      );
    }
    const dmaInterface = guest.options.dmaInterface;
    const remapping = this.iommu.translationEnabled;
    if (!remapping && dmaInterface !== "paravirtual" && options.allowUnprotected !== true) {
      throw new PlatformError(
        "bad-state",
        `assigning ${device.name} needs DMA remapping on the host: without it the device reaches all host memory`,
      );
    }
    const guestFunction = new PassthroughFunction(device);
    const guestRequesterId = guest.machine.pci.attach(guestFunction, options.slot ?? {});
    const assignment = new DeviceAssignment(
      device,
      guestFunction,
      guestRequesterId,
      this.iommu,
      guest.memory,
    );
    try {
      if (!remapping) assignment.useUnprotected();
      else if (dmaInterface === "native") assignment.useStatic();
      else if (dmaInterface === "paravirtual") assignment.useAperture();
      else assignment.useBlocked();
      this.router.route(guest.id, guestFunction.interruptLine, device.interruptLine);
    } catch (error) {
      assignment.release();
      guest.machine.pci.detach(guestRequesterId);
      throw error;
    }
    guest.addAssignment(assignment);
    this.assigned.set(hostRequesterId, { guest, assignment });
    this.counters.add("virt.assign");
    this.announce(guest, assignment, "assign");
    return assignment;
  }

  /** Takes a device back from its guest: it leaves the guest's bus, its DMA is blocked again. */
  unassign(assignment: DeviceAssignment): void {
    const entry = this.assigned.get(assignment.hostRequesterId);
    if (entry === undefined || entry.assignment !== assignment) {
      throw new PlatformError("bad-handle", "that assignment is not live");
    }
    const { guest } = entry;
    const line = assignment.guestFunction.interruptLine;
    guest.machine.pci.detach(assignment.guestRequesterId);
    this.router.unroute(guest.id, line);
    assignment.release();
    guest.removeAssignment(assignment);
    this.assigned.delete(assignment.hostRequesterId);
    this.counters.add("virt.unassign");
    this.announce(guest, assignment, "unassign");
  }

  /** The guest a host device is assigned to, if any. */
  guestOf(hostRequesterId: number): Guest | undefined {
    return this.assigned.get(hostRequesterId)?.guest;
  }

  private checkGuest(guest: Guest): void {
    if (!(guest instanceof Guest) || !this.guestList.includes(guest)) {
      throw new PlatformError("bad-handle", "not a live guest of this hypervisor");
    }
  }

  private announce(guest: Guest, assignment: DeviceAssignment, action: "assign" | "unassign"): void {
    if (!this.events.hasListeners("virt.assign")) return;
    this.events.emit("virt.assign", {
      guest: guest.name,
      action,
      hostRequesterId: assignment.hostRequesterId,
      guestRequesterId: assignment.guestRequesterId,
      dmaInterface: guest.options.dmaInterface,
    });
  }
}
