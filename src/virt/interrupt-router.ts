/**
 * Which host interrupt line carries each guest line (the hypervisor's interrupt remapping).
 *
 * - An assigned device keeps its own host line, and the guest line its guest-visible function
 *   got is routed straight onto it: the device's interrupt reaches the guest's ISR without a
 *   detour through the host, as with VT-d posted interrupts.
 * - Any other guest line (an emulated device on the guest's bus) gets a host line of its own on
 *   first use, taken from the top of the line space down, so it stays clear of the lines the
 *   host's PCI bus hands out from 16 up. A line in use on the host (a host device's, connected,
 *   or routed for another guest) is never taken.
 */
import type { PciBus } from "../platform/pci-bus.js";
import { PlatformError } from "../platform/platform-error.js";
import { MAX_INTERRUPT_LINE, type Scheduler } from "../platform/scheduler.js";

/** PCI lines start here on every bus (platform FIRST_PCI_INTERRUPT_LINE). */
const LOWEST_ROUTABLE_LINE = 16;

export class InterruptRouter {
  readonly #pci: PciBus;
  readonly #scheduler: Scheduler;
  /** Per guest id: guest line -> host line. */
  readonly #routes = new Map<number, Map<number, number>>();
  /** Host lines some guest line is routed to. */
  readonly #taken = new Set<number>();

  constructor(pci: PciBus, scheduler: Scheduler) {
    this.#pci = pci;
    this.#scheduler = scheduler;
  }

  /** The host line of `guestLine` for guest `guestId`, allocating one on first use. */
  hostLine(guestId: number, guestLine: number): number {
    const routes = this.#routesOf(guestId);
    const routed = routes.get(guestLine);
    if (routed !== undefined) return routed;
    const line = this.#freeLine(guestId, guestLine);
    routes.set(guestLine, line);
    this.#taken.add(line);
    return line;
  }

  /** Routes `guestLine` onto `hostLine` (an assigned device's own line). */
  route(guestId: number, guestLine: number, hostLine: number): void {
    const routes = this.#routesOf(guestId);
    const previous = routes.get(guestLine);
    if (previous !== undefined && this.#scheduler.isConnected(previous)) {
      throw new PlatformError(
        "bad-state",
        `guest ${guestId}: line ${guestLine} is already routed to host line ${previous} and connected`,
      );
    }
    if (previous !== undefined) this.#taken.delete(previous);
    routes.set(guestLine, hostLine);
    this.#taken.add(hostLine);
  }

  /** Forgets one route (an assigned device left the guest). */
  unroute(guestId: number, guestLine: number): void {
    const routes = this.#routes.get(guestId);
    const line = routes?.get(guestLine);
    if (line === undefined) return;
    routes!.delete(guestLine);
    this.#taken.delete(line);
  }

  /** Forgets every route of a guest (it was destroyed). */
  release(guestId: number): void {
    for (const line of this.#routes.get(guestId)?.values() ?? []) this.#taken.delete(line);
    this.#routes.delete(guestId);
  }

  #routesOf(guestId: number): Map<number, number> {
    let routes = this.#routes.get(guestId);
    if (routes === undefined) {
      routes = new Map();
      this.#routes.set(guestId, routes);
    }
    return routes;
  }

  #freeLine(guestId: number, guestLine: number): number {
    const hostLines = new Set(this.#pci.devices().map((device) => device.interruptLine));
    for (let line = MAX_INTERRUPT_LINE; line >= LOWEST_ROUTABLE_LINE; line--) {
      if (!this.#taken.has(line) && !hostLines.has(line) && !this.#scheduler.isConnected(line)) return line;
    }
    throw new PlatformError(
      "no-memory",
      `no free host interrupt line for line ${guestLine} of guest ${guestId}`,
    );
  }
}
