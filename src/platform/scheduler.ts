/**
 * The deterministic discrete-event scheduler: virtual time in nanoseconds, one simulated
 * processor with one IRQL, interrupt lines with ISR chains, and a FIFO DPC queue.
 *
 * - Events fire in (time, insertion sequence) order; a callback runs at passive level unless it
 *   raises. Nothing here reads a real clock, so the same schedule gives the same trace.
 * - An interrupt is an event at `now`: its ISRs run at their device IRQL, in connection order,
 *   until one claims it (a shared line, as IoConnectInterrupt chains them).
 * - DPCs run at dispatch level, first-in first-out, whenever the IRQL drops from dispatch or
 *   above to below it, and before the run loop takes the next event (a DPC outranks passive work,
 *   as the DISPATCH software interrupt does on Windows).
 * - A callback that throws never leaves the IRQL raised: it is restored, then the error goes on.
 *   A callback that returns at another IRQL than it started is a bug (IRQL_UNEXPECTED_VALUE on
 *   Windows): the IRQL is restored and a PlatformError says which callback did it.
 */
import { inject, injectable } from "inversify";
import { Counters } from "../trace/counters.js";
import { EventBus } from "../trace/event-bus.js";
import { EventQueue, type QueueEntry } from "./event-queue.js";
import { checkIrql, Irql } from "./irql.js";
import { checkLength } from "./page.js";
import { PlatformError } from "./platform-error.js";
import "./platform-events.js";

/** A scheduled callback, for cancel. */
export interface TimerHandle {
  /** Virtual time (ns) at which it fires. */
  readonly time: number;
  readonly label: string | undefined;
  /** True while it is queued (not yet fired, not cancelled). */
  readonly pending: boolean;
}

/** Interrupt lines are 0..255, like x86 vectors. */
export const MAX_INTERRUPT_LINE = 255;
/** runUntilIdle's default guard against a callback that reschedules itself forever. */
export const DEFAULT_MAX_EVENTS = 10_000_000;

const NO_LINE = -1;

class ScheduledEvent implements QueueEntry, TimerHandle {
  index = -1;

  constructor(
    readonly owner: Scheduler,
    readonly time: number,
    readonly sequence: number,
    readonly callback: (() => void) | undefined,
    readonly line: number,
    readonly label: string | undefined,
  ) {}

  get pending(): boolean {
    return this.index >= 0;
  }
}

interface Isr {
  readonly isr: () => boolean;
  readonly level: number;
}

interface Dpc {
  readonly routine: () => void;
  readonly label: string | undefined;
}

/**
 * Fields and helpers are TypeScript `private`, not `#`: tsx lowers #-members of decorated classes
 * to WeakMap helpers, which would sit on every DMA.
 */
@injectable()
export class Scheduler {
  private readonly events: EventBus;
  private readonly counters: Counters;
  private readonly queue = new EventQueue<ScheduledEvent>();
  /** Line -> ISR chain. Chains are replaced, never mutated, so a disconnect inside an ISR is safe. */
  private readonly lines = new Map<number, readonly Isr[]>();
  private dpcs: Dpc[] = [];
  private dpcHead = 0;
  private clock = 0;
  private currentIrql: number = Irql.passive;
  private sequence = 0;
  private running = false;
  private inDpc = false;

  constructor(@inject(EventBus) events: EventBus, @inject(Counters) counters: Counters) {
    this.events = events;
    this.counters = counters;
  }

  /** Virtual time in nanoseconds. */
  get now(): number {
    return this.clock;
  }

  get irql(): number {
    return this.currentIrql;
  }

  /** Queued events (timers, device work, interrupts) plus queued DPCs. */
  get pending(): number {
    return this.queue.size + this.dpcs.length - this.dpcHead;
  }

  /** Runs `callback` at passive level `delayNs` of virtual time from now. */
  schedule(delayNs: number, callback: () => void, label?: string): TimerHandle {
    checkLength(delayNs, "timer delay (ns)", Number.MAX_SAFE_INTEGER - this.clock);
    const event = new ScheduledEvent(this, this.clock + delayNs, this.sequence++, callback, NO_LINE, label);
    this.queue.push(event);
    return event;
  }

  /** KeCancelTimer's contract: true if the callback was still queued and now never runs. */
  cancel(handle: TimerHandle): boolean {
    if (!(handle instanceof ScheduledEvent) || handle.owner !== this) {
      throw new PlatformError(
        "bad-handle",
        "cancel: the handle was not returned by this scheduler's schedule()",
      );
    }
    return this.queue.remove(handle);
  }

  /** KeRaiseIrql: returns the old level. Raising to a lower level is an error. */
  raiseIrql(level: number): number {
    checkIrql(level, "raiseIrql: level");
    const old = this.currentIrql;
    if (level < old) {
      throw new PlatformError(
        "bad-state",
        `raiseIrql(${level}) below the current IRQL ${old}; use lowerIrql`,
      );
    }
    this.currentIrql = level;
    return old;
  }

  /** KeLowerIrql: dropping from dispatch or above to below it runs the queued DPCs first. */
  lowerIrql(level: number): void {
    checkIrql(level, "lowerIrql: level");
    if (level > this.currentIrql) {
      throw new PlatformError(
        "bad-state",
        `lowerIrql(${level}) above the current IRQL ${this.currentIrql}; use raiseIrql`,
      );
    }
    this.setIrql(level);
  }

  /** Raises to `level`, runs `fn`, and lowers back, also when `fn` throws. */
  runAtIrql<T>(level: number, fn: () => T): T {
    const old = this.raiseIrql(level);
    let returned = false;
    try {
      const result = fn();
      returned = true;
      return result;
    } finally {
      this.restoreAfter(level, old, returned, "runAtIrql callback");
    }
  }

  /** KeInsertQueueDpc: FIFO, runs at dispatch once the IRQL drops below dispatch. */
  queueDpc(routine: () => void, label?: string): void {
    this.dpcs.push({ routine, label });
  }

  /**
   * IoConnectInterrupt: `isr` runs at `level` (a device IRQL above dispatch) when `line` fires,
   * and returns true if its device raised the interrupt. Returns the disconnect function.
   */
  connectInterrupt(line: number, isr: () => boolean, level: number = Irql.device): () => void {
    checkLine(line);
    checkIrql(level, "connectInterrupt: level");
    if (level <= Irql.dispatch) {
      throw new PlatformError(
        "out-of-range",
        `connectInterrupt: ISR level ${level} must be above dispatch (2)`,
      );
    }
    const entry: Isr = { isr, level };
    this.lines.set(line, [...(this.lines.get(line) ?? []), entry]);
    return () => {
      const chain = this.lines.get(line);
      if (chain === undefined || !chain.includes(entry)) return;
      const rest = chain.filter((e) => e !== entry);
      if (rest.length === 0) this.lines.delete(line);
      else this.lines.set(line, rest);
    };
  }

  /** A device asserts `line`: the ISR chain runs as an event at `now`, after what is already due. */
  requestInterrupt(line: number): void {
    checkLine(line);
    this.queue.push(new ScheduledEvent(this, this.clock, this.sequence++, undefined, line, undefined));
  }

  /** True when an ISR is connected to `line`. */
  isConnected(line: number): boolean {
    return this.lines.has(line);
  }

  /** Drains events, interrupts and DPCs until nothing is pending. */
  runUntilIdle(maxEvents = DEFAULT_MAX_EVENTS): void {
    checkLength(maxEvents, "runUntilIdle: maxEvents");
    this.run(Number.POSITIVE_INFINITY, undefined, maxEvents);
  }

  /** Runs everything due within `ns` of virtual time, then advances the clock by `ns`. */
  runFor(ns: number): void {
    checkLength(ns, "runFor: ns", Number.MAX_SAFE_INTEGER - this.clock);
    const deadline = this.clock + ns;
    this.run(deadline, undefined, DEFAULT_MAX_EVENTS);
    this.clock = deadline;
  }

  /**
   * Runs until `predicate` holds (checked before each event, DPCs drained). With `limitNs`, gives
   * up when the next event lies beyond the limit and advances the clock to it. Returns the
   * predicate's final value.
   */
  runUntil(predicate: () => boolean, limitNs?: number): boolean {
    if (limitNs !== undefined)
      checkLength(limitNs, "runUntil: limitNs", Number.MAX_SAFE_INTEGER - this.clock);
    const deadline = limitNs === undefined ? Number.POSITIVE_INFINITY : this.clock + limitNs;
    if (this.run(deadline, predicate, DEFAULT_MAX_EVENTS)) return true;
    if (limitNs !== undefined) this.clock = deadline;
    return predicate();
  }

  /** The run loop. Returns true when `until` held. */
  private run(deadline: number, until: (() => boolean) | undefined, maxEvents: number): boolean {
    if (this.running) {
      throw new PlatformError(
        "bad-state",
        "the scheduler is already running: a callback cannot run it again",
      );
    }
    if (this.currentIrql !== Irql.passive) {
      throw new PlatformError(
        "bad-state",
        `the scheduler runs from passive level, not IRQL ${this.currentIrql}`,
      );
    }
    this.running = true;
    try {
      let fired = 0;
      for (;;) {
        this.dispatchDpcs();
        if (until?.()) return true;
        const next = this.queue.peek();
        if (next === undefined || next.time > deadline) return false;
        if (++fired > maxEvents) {
          throw new PlatformError(
            "bad-state",
            `more than ${maxEvents} events without going idle; last "${describe(next)}" at ${next.time} ns`,
          );
        }
        this.queue.pop();
        this.clock = next.time;
        if (next.callback === undefined) this.deliver(next.line);
        else this.fire(next);
      }
    } finally {
      this.running = false;
    }
  }

  private fire(event: ScheduledEvent): void {
    this.counters.add("scheduler.events");
    if (this.events.hasListeners("scheduler.event")) {
      this.events.emit("scheduler.event", { time: this.clock, label: event.label ?? "" });
    }
    let returned = false;
    try {
      event.callback!();
      returned = true;
    } finally {
      this.restoreAfter(Irql.passive, Irql.passive, returned, `event "${describe(event)}"`);
    }
  }

  private deliver(line: number): void {
    this.counters.add("scheduler.interrupts");
    if (this.events.hasListeners("scheduler.interrupt")) {
      this.events.emit("scheduler.interrupt", { time: this.clock, line, label: `irq ${line}` });
    }
    const chain = this.lines.get(line);
    if (chain !== undefined) {
      for (const { isr, level } of chain) {
        if (this.runAtIrql(level, isr)) return;
      }
    }
    this.counters.add("scheduler.interrupts.unclaimed");
  }

  /** Sets the IRQL; dropping from dispatch or above to below it first drains the DPC queue. */
  private setIrql(level: number): void {
    if (this.currentIrql >= Irql.dispatch && level < Irql.dispatch && !this.inDpc) {
      this.currentIrql = Irql.dispatch;
      try {
        this.drainDpcs();
      } finally {
        this.currentIrql = level;
      }
    } else {
      this.currentIrql = level;
    }
  }

  /** The run loop at passive level: DPCs queued by passive work are delivered before the next event. */
  private dispatchDpcs(): void {
    if (this.dpcHead === this.dpcs.length) return;
    this.currentIrql = Irql.dispatch;
    this.setIrql(Irql.passive);
  }

  private drainDpcs(): void {
    this.inDpc = true;
    try {
      while (this.dpcHead < this.dpcs.length) {
        const dpc = this.dpcs[this.dpcHead]!;
        this.dpcHead++;
        if (this.dpcHead === this.dpcs.length) {
          this.dpcs = [];
          this.dpcHead = 0;
        }
        this.counters.add("scheduler.dpcs");
        if (this.events.hasListeners("scheduler.dpc")) {
          this.events.emit("scheduler.dpc", { time: this.clock, label: dpc.label ?? "dpc" });
        }
        let returned = false;
        try {
          dpc.routine();
          returned = true;
        } finally {
          this.restoreAfter(Irql.dispatch, Irql.dispatch, returned, `DPC "${dpc.label ?? "dpc"}"`);
        }
      }
    } finally {
      this.inDpc = false;
    }
  }

  /**
   * After a callback that ran at `expected`: go back to `old` (draining DPCs if that crosses
   * dispatch). After a throw, or when the callback changed the IRQL itself, `old` is forced
   * without running anything; the changed IRQL is the callback's bug and is reported.
   */
  private restoreAfter(expected: number, old: number, returned: boolean, what: string): void {
    const left = this.currentIrql;
    if (returned && left === expected) {
      this.setIrql(old);
      return;
    }
    this.currentIrql = old;
    if (returned)
      throw new PlatformError("bad-state", `${what} returned at IRQL ${left}, expected ${expected}`);
  }
}

function checkLine(line: number): void {
  if (!Number.isInteger(line) || line < 0 || line > MAX_INTERRUPT_LINE) {
    throw new PlatformError(
      "out-of-range",
      `interrupt line ${String(line)} is not an integer in [0, ${MAX_INTERRUPT_LINE}]`,
    );
  }
}

function describe(event: ScheduledEvent): string {
  return event.callback === undefined ? `irq ${event.line}` : (event.label ?? "timer");
}
