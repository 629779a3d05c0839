/**
 * A guest's view of the host's scheduler: one virtual clock, one run loop, one processor for
 * host and guests alike (a vCPU is time-sliced on the host CPU, and nothing here runs guest
 * code in parallel with host code), so the guest's timers, DPCs and IRQL are the host's.
 *
 * What differs is the interrupt line namespace. The guest's PCI bus numbers its lines from 16 as
 * the host's does; a line the guest connects or raises is routed to a host line first (the
 * hypervisor's interrupt routing: an assigned device's own host line, posted straight to the
 * guest as VT-d posted interrupts do, or a line set aside for the guest's emulated devices).
 *
 * It is a Scheduler so the guest's container can hand it to every class that injects one; all
 * of the base class's state stays unused.
 */
import type { Scheduler as SchedulerShape, TimerHandle } from "../platform/scheduler.js";
import { Scheduler } from "../platform/scheduler.js";
import type { Counters } from "../trace/counters.js";
import type { EventBus } from "../trace/event-bus.js";

/** Maps a guest interrupt line to the host line that carries it. */
export type InterruptRoute = (guestLine: number) => number;

export class GuestScheduler extends Scheduler {
  readonly #host: SchedulerShape;
  readonly #route: InterruptRoute;

  constructor(host: SchedulerShape, route: InterruptRoute, events: EventBus, counters: Counters) {
    super(events, counters);
    this.#host = host;
    this.#route = route;
  }

  override get now(): number {
    return this.#host.now;
  }

  override get irql(): number {
    return this.#host.irql;
  }

  override get pending(): number {
    return this.#host.pending;
  }

  override schedule(delayNs: number, callback: () => void, label?: string): TimerHandle {
    return this.#host.schedule(delayNs, callback, label);
  }

  override cancel(handle: TimerHandle): boolean {
    return this.#host.cancel(handle);
  }

  override raiseIrql(level: number): number {
    return this.#host.raiseIrql(level);
  }

  override lowerIrql(level: number): void {
    this.#host.lowerIrql(level);
  }

  override runAtIrql<T>(level: number, fn: () => T): T {
    return this.#host.runAtIrql(level, fn);
  }

  override queueDpc(routine: () => void, label?: string): void {
    this.#host.queueDpc(routine, label);
  }

  override connectInterrupt(line: number, isr: () => boolean, level?: number): () => void {
    return this.#host.connectInterrupt(this.#route(line), isr, level);
  }

  override requestInterrupt(line: number): void {
    this.#host.requestInterrupt(this.#route(line));
  }

  override isConnected(line: number): boolean {
    return this.#host.isConnected(this.#route(line));
  }

  override runUntilIdle(maxEvents?: number): void {
    this.#host.runUntilIdle(maxEvents);
  }

  override runFor(ns: number): void {
    this.#host.runFor(ns);
  }

  override runUntil(predicate: () => boolean, limitNs?: number): boolean {
    return this.#host.runUntil(predicate, limitNs);
  }
}
