/**
 * The hypervisor's trap handler for one guest: the Hypercalls a guest's container is given. Each
 * call is one trap, charged `trapNs` plus `perPageNs` per guest page handled (HypervisorOptions),
 * counted in the guest's counters and the host's ("virt.hypercall", ".ns", ".pages", and one
 * counter per kind), and announced on the host bus ("virt.hypercall").
 *
 * The simulator runs guest code in zero virtual time, so a trap's cost cannot stall the guest's
 * vCPU on the shared clock: it is charged to the guest's account instead, like steal time, and
 * the reports read it from there.
 */
import type { IommuDomain } from "../iommu/iommu-domain.js";
import { PAGE_SIZE, spanPages } from "../platform/page.js";
import { PlatformError } from "../platform/platform-error.js";
import type { CounterCell, Counters } from "../trace/counters.js";
import type { EventBus } from "../trace/event-bus.js";
import type { Guest } from "./guest.js";
import type { GuestFrames, Hypercalls, ParavirtualAttachment } from "./hypercalls.js";
import type { ParavirtualHost } from "./paravirtual-host.js";
import type { ShadowTables } from "./shadow-tables.js";
import type { HypercallKind } from "./virt-events.js";
import type { HypervisorOptions } from "./virt-options.js";
import "./virt-events.js";

const KINDS: readonly HypercallKind[] = [
  "invalidate-pages",
  "invalidate-domain",
  "invalidate-all",
  "context",
  "pv-attach",
  "pv-map",
  "pv-sync",
  "pv-coherent",
];

/** The cells one side (guest or host) counts a trap in. */
interface TrapCells {
  readonly calls: CounterCell;
  readonly ns: CounterCell;
  readonly pages: CounterCell;
  readonly byKind: ReadonlyMap<HypercallKind, CounterCell>;
}

function trapCells(counters: Counters): TrapCells {
  return {
    calls: counters.cell("virt.hypercall"),
    ns: counters.cell("virt.hypercall.ns"),
    pages: counters.cell("virt.hypercall.pages"),
    byKind: new Map(KINDS.map((kind) => [kind, counters.cell(`virt.hypercall.${kind}`)])),
  };
}

export class GuestHypercalls implements Hypercalls {
  readonly #options: HypervisorOptions;
  readonly #pv: ParavirtualHost;
  readonly #events: EventBus;
  readonly #host: TrapCells;
  #guest: Guest | undefined;
  #shadows: ShadowTables | undefined;
  #cells: TrapCells | undefined;

  constructor(options: HypervisorOptions, pv: ParavirtualHost, events: EventBus, hostCounters: Counters) {
    this.#options = options;
    this.#pv = pv;
    this.#events = events;
    this.#host = trapCells(hostCounters);
  }

  /** Binds the handler to its guest once the guest's container exists. */
  connect(guest: Guest, shadows: ShadowTables): void {
    this.#guest = guest;
    this.#shadows = shadows;
    this.#cells = trapCells(guest.counters);
  }

  invalidatePages(domain: IommuDomain, iova: number, pages: number): void {
    this.#charge("invalidate-pages", this.#shadowTables().sync(domain, iova, pages));
  }

  invalidateDomain(domain: IommuDomain): void {
    this.#charge("invalidate-domain", this.#shadowTables().resync(domain));
  }

  invalidateAll(): void {
    this.#charge("invalidate-all", this.#shadowTables().resyncAll());
  }

  contextChanged(requesterId: number): void {
    const assignment = this.#connected().assignmentFor(requesterId);
    this.#charge("context", assignment === undefined ? 0 : this.#shadowTables().follow(assignment));
  }

  pvAttach(
    requesterId: number,
    firstPfn: number,
    pages: number,
    addressLimit: number,
  ): ParavirtualAttachment {
    const guest = this.#connected();
    const result = this.#pv.attach(guest, guest.assignmentFor(requesterId), firstPfn, pages, addressLimit);
    this.#charge("pv-attach", result.kind === "aperture" ? pages : 0);
    return result;
  }

  pvMap(requesterId: number, frames: GuestFrames, _writeToDevice: boolean, addressLimit: number): number {
    const guest = this.#assigned(requesterId);
    const busAddress = this.#pv.map(guest, frames, addressLimit);
    this.#charge("pv-map", pagesOf(frames));
    return busAddress;
  }

  pvSync(requesterId: number, busAddress: number, frames: GuestFrames, copyBack: boolean): void {
    const guest = this.#assigned(requesterId);
    this.#pv.sync(guest, busAddress, frames, copyBack);
    this.#charge("pv-sync", pagesOf(frames));
  }

  pvCoherent(requesterId: number, firstPfn: number, pages: number, addressLimit: number): number {
    const guest = this.#assigned(requesterId);
    const busAddress = this.#pv.coherent(guest, firstPfn, pages, addressLimit);
    this.#charge("pv-coherent", pages);
    return busAddress;
  }

  #connected(): Guest {
    if (this.#guest === undefined || this.#guest.destroyed) {
      throw new PlatformError("bad-state", "hypercall from a guest that is not running");
    }
    return this.#guest;
  }

  #shadowTables(): ShadowTables {
    this.#connected();
    return this.#shadows!;
  }

  /** The guest, when `requesterId` is one of its assigned devices. */
  #assigned(requesterId: number): Guest {
    const guest = this.#connected();
    if (guest.assignmentFor(requesterId) === undefined) {
      throw new PlatformError(
        "bad-handle",
        `${guest.name} has no assigned device at requester ${String(requesterId)}`,
      );
    }
    return guest;
  }

  #charge(kind: HypercallKind, pages: number): void {
    const cost = this.#options.trapNs + pages * this.#options.perPageNs;
    count(this.#cells!, kind, cost, pages);
    count(this.#host, kind, cost, pages);
    if (this.#events.hasListeners("virt.hypercall")) {
      this.#events.emit("virt.hypercall", { guest: this.#guest!.name, kind, pages, costNs: cost });
    }
  }
}

function pagesOf(frames: GuestFrames): number {
  return spanPages(frames.offset % PAGE_SIZE, frames.length);
}

function count(cells: TrapCells, kind: HypercallKind, cost: number, pages: number): void {
  cells.calls.value++;
  cells.ns.value += cost;
  cells.pages.value += pages;
  cells.byKind.get(kind)!.value++;
}
