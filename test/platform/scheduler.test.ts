import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Irql } from "../../src/platform/irql.js";
import { PlatformError } from "../../src/platform/platform-error.js";
import { Scheduler } from "../../src/platform/scheduler.js";
import { Counters } from "../../src/trace/counters.js";
import { EventBus } from "../../src/trace/event-bus.js";

function setup(): { scheduler: Scheduler; events: EventBus; counters: Counters } {
  const events = new EventBus();
  const counters = new Counters();
  return { scheduler: new Scheduler(events, counters), events, counters };
}

function expectPlatformError(fn: () => unknown, code: string): void {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(PlatformError);
    expect((error as PlatformError).code).toBe(code);
    return;
  }
  throw new Error("expected a PlatformError");
}

/** A small machine-like scenario: timers with ties, a device interrupt, ISR -> DPC -> timer. */
function scenario(): string[] {
  const { scheduler, events } = setup();
  const trace: string[] = [];
  events.on("scheduler.event", (e) => trace.push(`event ${e.label} @${e.time}`));
  events.on("scheduler.interrupt", (e) => trace.push(`interrupt ${e.line} @${e.time}`));
  events.on("scheduler.dpc", (e) => trace.push(`dpc ${e.label} @${e.time}`));
  scheduler.connectInterrupt(20, () => {
    trace.push(`isr irql=${scheduler.irql}`);
    scheduler.queueDpc(() => {
      trace.push(`dpc body irql=${scheduler.irql}`);
      scheduler.schedule(50, () => trace.push("follow-up"), "follow-up");
    }, "completion");
    return true;
  });
  scheduler.schedule(100, () => scheduler.requestInterrupt(20), "device done");
  scheduler.schedule(100, () => trace.push("tie second"), "tie");
  scheduler.schedule(10, () => trace.push("first"), "early");
  scheduler.runUntilIdle();
  return trace;
}

describe("Scheduler", () => {
  it("gives the same trace for the same schedule, in (time, insertion) order", () => {
    const first = scenario();
    expect(scenario()).toEqual(first);
    expect(first).toEqual([
      "event early @10",
      "first",
      "event device done @100",
      "event tie @100",
      "tie second",
      "interrupt 20 @100",
      "isr irql=5",
      "dpc completion @100",
      "dpc body irql=2",
      "event follow-up @150",
      "follow-up",
    ]);
  });

  it("fires any schedule sorted by time, ties first-in first-out", () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 20 }), { maxLength: 60 }), (delays) => {
        const { scheduler } = setup();
        const fired: { time: number; index: number; now: number }[] = [];
        delays.forEach((delay, index) => {
          scheduler.schedule(delay, () => fired.push({ time: delay, index, now: scheduler.now }));
        });
        scheduler.runUntilIdle();
        const expected = delays.map((time, index) => ({ time, index, now: time }));
        expected.sort((a, b) => a.time - b.time || a.index - b.index);
        expect(fired).toEqual(expected);
        expect(scheduler.pending).toBe(0);
      }),
    );
  });

  it("runs scheduled callbacks at passive level and ISRs at their level", () => {
    const { scheduler } = setup();
    const seen: number[] = [];
    scheduler.connectInterrupt(
      30,
      () => {
        seen.push(scheduler.irql);
        return true;
      },
      9,
    );
    scheduler.schedule(5, () => {
      seen.push(scheduler.irql);
      scheduler.requestInterrupt(30);
    });
    scheduler.runUntilIdle();
    expect(seen).toEqual([Irql.passive, 9]);
    expect(scheduler.irql).toBe(Irql.passive);
  });

  it("enforces raise/lower ordering and valid levels", () => {
    const { scheduler } = setup();
    expect(scheduler.raiseIrql(Irql.dispatch)).toBe(Irql.passive);
    expectPlatformError(() => scheduler.raiseIrql(Irql.apc), "bad-state");
    expectPlatformError(() => scheduler.lowerIrql(Irql.device), "bad-state");
    expectPlatformError(() => scheduler.raiseIrql(16), "out-of-range");
    expectPlatformError(() => scheduler.raiseIrql(2.5), "out-of-range");
    expect(scheduler.irql).toBe(Irql.dispatch);
    expect(scheduler.raiseIrql(Irql.dispatch)).toBe(Irql.dispatch);
    scheduler.lowerIrql(Irql.passive);
    expect(scheduler.irql).toBe(Irql.passive);
  });

  it("runs DPCs at dispatch, in FIFO order, only once the IRQL drops below dispatch", () => {
    const { scheduler } = setup();
    const ran: string[] = [];
    scheduler.raiseIrql(Irql.device);
    scheduler.queueDpc(() => {
      ran.push(`a@${scheduler.irql}`);
      scheduler.queueDpc(() => ran.push(`c@${scheduler.irql}`));
    });
    scheduler.queueDpc(() => ran.push(`b@${scheduler.irql}`));
    scheduler.lowerIrql(Irql.dispatch);
    expect(ran).toEqual([]);
    expect(scheduler.pending).toBe(2);
    scheduler.lowerIrql(Irql.passive);
    expect(ran).toEqual(["a@2", "b@2", "c@2"]);
    expect(scheduler.pending).toBe(0);
  });

  it("delivers DPCs queued at passive level before the next event", () => {
    const { scheduler } = setup();
    const ran: string[] = [];
    scheduler.queueDpc(() => ran.push("queued at top level"));
    scheduler.schedule(0, () => {
      scheduler.queueDpc(() => ran.push("dpc"));
      ran.push("event 1");
    });
    scheduler.schedule(0, () => ran.push("event 2"));
    expect(scheduler.pending).toBe(3);
    scheduler.runUntilIdle();
    expect(ran).toEqual(["queued at top level", "event 1", "dpc", "event 2"]);
  });

  it("chains ISRs on a shared line until one claims the interrupt", () => {
    const { scheduler, counters } = setup();
    const calls: string[] = [];
    const disconnectFirst = scheduler.connectInterrupt(40, () => {
      calls.push("first");
      return false;
    });
    scheduler.connectInterrupt(40, () => {
      calls.push("second");
      return true;
    });
    scheduler.connectInterrupt(40, () => {
      calls.push("third");
      return true;
    });
    scheduler.requestInterrupt(40);
    scheduler.runUntilIdle();
    expect(calls).toEqual(["first", "second"]);
    disconnectFirst();
    disconnectFirst();
    scheduler.requestInterrupt(40);
    scheduler.requestInterrupt(41);
    scheduler.runUntilIdle();
    expect(calls).toEqual(["first", "second", "second"]);
    expect(counters.get("scheduler.interrupts")).toBe(3);
    expect(counters.get("scheduler.interrupts.unclaimed")).toBe(1);
  });

  it("rejects bad interrupt lines and ISR levels", () => {
    const { scheduler } = setup();
    expectPlatformError(() => scheduler.connectInterrupt(256, () => true), "out-of-range");
    expectPlatformError(() => scheduler.connectInterrupt(3, () => true, Irql.dispatch), "out-of-range");
    expectPlatformError(() => scheduler.requestInterrupt(-1), "out-of-range");
    expect(scheduler.pending).toBe(0);
  });

  it("restores the IRQL when a callback throws, then rethrows", () => {
    const { scheduler } = setup();
    expect(() =>
      scheduler.runAtIrql(Irql.dispatch, () => {
        throw new Error("boom");
      }),
    ).toThrow("boom");
    expect(scheduler.irql).toBe(Irql.passive);

    scheduler.schedule(1, () => {
      scheduler.raiseIrql(Irql.high);
      throw new Error("raised and threw");
    });
    expect(() => scheduler.runUntilIdle()).toThrow("raised and threw");
    expect(scheduler.irql).toBe(Irql.passive);

    scheduler.connectInterrupt(50, () => {
      throw new Error("isr failed");
    });
    scheduler.requestInterrupt(50);
    expect(() => scheduler.runUntilIdle()).toThrow("isr failed");
    expect(scheduler.irql).toBe(Irql.passive);
  });

  it("reports a callback that returns at another IRQL, and restores it", () => {
    const { scheduler } = setup();
    scheduler.schedule(
      1,
      () => {
        scheduler.raiseIrql(Irql.dispatch);
      },
      "leaky",
    );
    expectPlatformError(() => scheduler.runUntilIdle(), "bad-state");
    expect(scheduler.irql).toBe(Irql.passive);
    scheduler.queueDpc(() => scheduler.lowerIrql(Irql.passive), "lowers");
    expectPlatformError(() => scheduler.runUntilIdle(), "bad-state");
    expect(scheduler.irql).toBe(Irql.passive);
  });

  it("runAtIrql returns the callback's value and lowers back", () => {
    const { scheduler } = setup();
    const value = scheduler.runAtIrql(Irql.dispatch, () => scheduler.irql * 10);
    expect(value).toBe(20);
    expect(scheduler.irql).toBe(Irql.passive);
  });

  it("cancels timers that have not fired, and only those", () => {
    const { scheduler } = setup();
    const fired: string[] = [];
    const a = scheduler.schedule(10, () => fired.push("a"), "a");
    const b = scheduler.schedule(20, () => fired.push("b"), "b");
    expect(a.pending).toBe(true);
    expect(a.time).toBe(10);
    expect(scheduler.cancel(a)).toBe(true);
    expect(scheduler.cancel(a)).toBe(false);
    expect(a.pending).toBe(false);
    expect(scheduler.pending).toBe(1);
    scheduler.runUntilIdle();
    expect(fired).toEqual(["b"]);
    expect(scheduler.cancel(b)).toBe(false);
    expect(scheduler.now).toBe(20);
    const other = setup().scheduler.schedule(1, () => {});
    expectPlatformError(() => scheduler.cancel(other), "bad-handle");
    expectPlatformError(() => scheduler.cancel({ time: 0, label: undefined, pending: true }), "bad-handle");
  });

  it("cancels from inside another callback at the same time", () => {
    const { scheduler } = setup();
    const fired: string[] = [];
    let second: ReturnType<Scheduler["schedule"]> | undefined;
    scheduler.schedule(5, () => {
      fired.push("first");
      expect(scheduler.cancel(second!)).toBe(true);
    });
    second = scheduler.schedule(5, () => fired.push("second"));
    scheduler.runUntilIdle();
    expect(fired).toEqual(["first"]);
  });

  it("rejects bad delays without scheduling anything", () => {
    const { scheduler } = setup();
    expectPlatformError(() => scheduler.schedule(-1, () => {}), "bad-length");
    expectPlatformError(() => scheduler.schedule(1.5, () => {}), "bad-length");
    expectPlatformError(() => scheduler.schedule(Number.NaN, () => {}), "bad-length");
    expect(scheduler.pending).toBe(0);
  });

  it("runFor runs what is due and advances the clock", () => {
    const { scheduler } = setup();
    const fired: number[] = [];
    for (const t of [5, 10, 15]) scheduler.schedule(t, () => fired.push(scheduler.now));
    scheduler.runFor(10);
    expect(fired).toEqual([5, 10]);
    expect(scheduler.now).toBe(10);
    scheduler.runFor(100);
    expect(fired).toEqual([5, 10, 15]);
    expect(scheduler.now).toBe(110);
  });

  it("runUntil stops when the predicate holds, or gives up at the limit", () => {
    const { scheduler } = setup();
    let count = 0;
    const tick = (): void => {
      count++;
      scheduler.schedule(1_000_000, tick, "tick");
    };
    scheduler.schedule(1_000_000, tick, "tick");
    expect(scheduler.runUntil(() => count === 3)).toBe(true);
    expect(scheduler.now).toBe(3_000_000);
    expect(scheduler.runUntil(() => count === 100, 10_500_000)).toBe(false);
    expect(count).toBe(13);
    expect(scheduler.now).toBe(13_500_000);
    expect(scheduler.pending).toBe(1);
  });

  it("runUntil returns false when nothing is left to run", () => {
    const { scheduler } = setup();
    expect(scheduler.runUntil(() => false)).toBe(false);
    expect(scheduler.now).toBe(0);
  });

  it("stops a schedule that never goes idle", () => {
    const { scheduler } = setup();
    const again = (): void => {
      scheduler.schedule(0, again, "spin");
    };
    scheduler.schedule(0, again, "spin");
    expectPlatformError(() => scheduler.runUntilIdle(1000), "bad-state");
    expect(scheduler.irql).toBe(Irql.passive);
  });

  it("refuses to run from inside a callback or at raised IRQL", () => {
    const { scheduler } = setup();
    scheduler.schedule(1, () => scheduler.runUntilIdle());
    expectPlatformError(() => scheduler.runUntilIdle(), "bad-state");
    scheduler.raiseIrql(Irql.dispatch);
    expectPlatformError(() => scheduler.runUntilIdle(), "bad-state");
    scheduler.lowerIrql(Irql.passive);
    scheduler.runUntilIdle();
    expect(scheduler.pending).toBe(0);
  });
});
