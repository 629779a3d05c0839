/**
 * A virtual machine: a whole Machine of its own (frame allocator, kernel memory, MDLs, HAL, DDI,
 * PCI bus, drivers) built from the same layer modules as the host's, on two rebinds:
 *
 * - PhysicalMemory is a GuestPhysicalMemory: guest-physical addresses backed by host frames the
 *   hypervisor allocated for this guest under its own owner tag;
 * - Scheduler is a GuestScheduler: the host's clock and run loop, with the guest's interrupt
 *   lines routed onto host lines.
 *
 * Everything above runs unchanged on guest-physical addresses, so the sample drivers run inside a
 * guest as they are. The guest's DMA interface adds its own rebinds (guestPlatformModule): a
 * caching-mode IOMMU and its HAL flushes ("trapped"), or the paravirtual mapping strategy
 * ("paravirtual").
 */
import type { ContainerModule } from "inversify";
import { Machine } from "../machine/machine.js";
import type { Counters } from "../trace/counters.js";
import type { DeviceAssignment } from "./device-assignment.js";
import type { GuestPhysicalMemory } from "./guest-physical-memory.js";
import type { ResolvedGuestOptions } from "./virt-options.js";

/** What the guest's traps cost so far (its own counters, "virt.hypercall*"). */
export interface HypercallTotals {
  readonly hypercalls: number;
  /** Virtual ns charged to the guest's vCPU for them. */
  readonly ns: number;
  /** Guest pages the hypervisor handled in them. */
  readonly pages: number;
}

export class Guest {
  readonly id: number;
  readonly name: string;
  readonly options: ResolvedGuestOptions;
  readonly memory: GuestPhysicalMemory;
  /** The host frame owner of this guest's RAM. */
  readonly hostOwner: number;
  readonly machine: Machine;
  readonly #assignments: DeviceAssignment[] = [];
  #destroyed = false;

  constructor(
    id: number,
    options: ResolvedGuestOptions,
    memory: GuestPhysicalMemory,
    hostOwner: number,
    platform: ContainerModule,
  ) {
    this.id = id;
    this.name = options.name;
    this.options = options;
    this.memory = memory;
    this.hostOwner = hostOwner;
    this.machine = new Machine(
      {
        memory: options.memory,
        remapping: options.dmaInterface === "trapped" ? options.remapping : "off",
        seed: options.seed,
        coherent: options.coherent,
      },
      [platform, ...options.modules],
    );
  }

  get destroyed(): boolean {
    return this.#destroyed;
  }

  /** Devices assigned to the guest, in assignment order. */
  get assignments(): readonly DeviceAssignment[] {
    return this.#assignments;
  }

  /** The guest's own counters (its HAL's, its devices', and its traps as "virt.hypercall*"). */
  get counters(): Counters {
    return this.machine.counters;
  }

  get hypercalls(): HypercallTotals {
    const counters = this.machine.counters;
    return {
      hypercalls: counters.get("virt.hypercall"),
      ns: counters.get("virt.hypercall.ns"),
      pages: counters.get("virt.hypercall.pages"),
    };
  }

  /** The assignment whose guest-visible function has requester id `guestRequesterId`. */
  assignmentFor(guestRequesterId: number): DeviceAssignment | undefined {
    return this.#assignments.find((a) => a.guestRequesterId === guestRequesterId);
  }

  /** Host-physical address behind guest-physical `gpa`. */
  hostAddress(gpa: number): number {
    return this.memory.hostAddress(gpa);
  }

  /** Called by the Hypervisor only. */
  addAssignment(assignment: DeviceAssignment): void {
    this.#assignments.push(assignment);
  }

  /** Called by the Hypervisor only. */
  removeAssignment(assignment: DeviceAssignment): void {
    const index = this.#assignments.indexOf(assignment);
    if (index >= 0) this.#assignments.splice(index, 1);
  }

  /** Called by the Hypervisor only, once its frames are back with the host. */
  markDestroyed(): void {
    this.#destroyed = true;
  }
}
