/**
 * Who gets an adapter channel and map registers, and when (reference section 3, ReactOS's
 * HalAllocateAdapterChannel / IoFreeAdapterChannel / IoFreeMapRegisters):
 *
 * - Two levels of waiting. Each adapter has a channel queue: one owner at a time, the others in
 *   arrival order. The owner then needs its map registers; if the global map-register queue is
 *   empty and the strategy has them, it gets them at once, else it joins that queue.
 * - The map-register queue is strict FIFO: whenever registers come free, the head is retried; if
 *   it still does not fit, nobody behind it is served, however small their request.
 * - A granted request's routine runs at DISPATCH_LEVEL: inside the call that made the request when
 *   everything was free, else inside the call that freed what it waited for. Its
 *   IO_ALLOCATION_ACTION decides what it keeps: KeepObject (channel and registers),
 *   DeallocateObject (nothing), DeallocateObjectKeepRegisters (registers only).
 * - Every entry point works at DISPATCH_LEVEL (as Windows holds the master adapter's spin lock),
 *   so DPCs queued by a routine run only after the queues are consistent again.
 *
 * Grants are served by one loop, never by recursion, so a long queue drains without deepening
 * the stack; a request made from inside a routine is handled by the same loop.
 */
import { Irql } from "../platform/irql.js";
import type { Scheduler } from "../platform/scheduler.js";
import type { CounterCell, Counters } from "../trace/counters.js";
import type { EventBus, ListenerFlag } from "../trace/event-bus.js";
import { AdapterChannel } from "./adapter-channel.js";
import type { AdapterObject } from "./adapter-object.js";
import { HalRule, halViolation } from "./hal-bug-checks.js";
import "./hal-events.js";
import type { DmaChannelEvent } from "./hal-events.js";
import type { MapRegisterGrant, MapRegisterGrants } from "./map-register-grant.js";
import type { WaitBlock } from "./wait-block.js";
import { WaitQueue } from "./wait-queue.js";
import { DeallocateObject, DeallocateObjectKeepRegisters, KeepObject } from "./wdm/io-allocation-action.js";

export type SubmitResult = "granted" | "queued" | "refused";

export class DmaArbiter {
  readonly #scheduler: Scheduler;
  readonly #grants: MapRegisterGrants;
  readonly #events: EventBus;
  readonly #channelListened: ListenerFlag;
  readonly #channelWaits: CounterCell;
  readonly #registerWaits: CounterCell;
  readonly #channelGrants: CounterCell;
  readonly #channels = new Map<AdapterObject, AdapterChannel>();
  /** The global map-register queue: requests that own their channel and wait for registers. */
  readonly #registerQueue = new WaitQueue<WaitBlock>();
  /** Adapters whose channel came free while others wait for it. */
  readonly #ready = new WaitQueue<AdapterObject>();
  #serving = false;

  constructor(scheduler: Scheduler, grants: MapRegisterGrants, events: EventBus, counters: Counters) {
    this.#scheduler = scheduler;
    this.#grants = grants;
    this.#events = events;
    this.#channelListened = events.listenerFlag("dma.channel");
    this.#channelWaits = counters.cell("hal.channel.waits");
    this.#registerWaits = counters.cell("hal.registers.waits");
    this.#channelGrants = counters.cell("hal.channel.grants");
  }

  /** Requests waiting for a channel or for map registers. */
  get queuedRequests(): number {
    let queued = this.#registerQueue.length;
    for (const channel of this.#channels.values()) queued += channel.waiting.length;
    return queued;
  }

  /** Channels owned after a KeepObject (or while a routine runs). */
  get channelsHeld(): number {
    let held = 0;
    for (const channel of this.#channels.values()) if (channel.owner !== undefined) held++;
    return held;
  }

  open(adapter: AdapterObject): void {
    this.#channels.set(adapter, new AdapterChannel());
  }

  channel(adapter: AdapterObject): AdapterChannel {
    return this.#channels.get(adapter)!;
  }

  /** True while a request owns the adapter's channel (also after PutDmaAdapter, as a leak). */
  holdsChannel(adapter: AdapterObject): boolean {
    return this.#channels.get(adapter)?.owner !== undefined;
  }

  /**
   * Queues `request` for its adapter's channel and registers; its routine runs before this
   * returns if nothing has to wait. A synchronous request (DMA_SYNCHRONOUS_CALLBACK) is refused
   * instead of queued, and then nothing about it is kept.
   */
  submit(request: WaitBlock, synchronous: boolean): SubmitResult {
    // The common caller (a DPC) is already at DISPATCH_LEVEL: no closure, no IRQL round trip.
    if (this.#scheduler.irql === Irql.dispatch) return this.#submit(request, synchronous);
    return this.#scheduler.runAtIrql(Irql.dispatch, () => this.#submit(request, synchronous));
  }

  /** Removes a waiting request: true if its routine will now never run. */
  cancel(request: WaitBlock): boolean {
    return this.#atDispatch(() => {
      const channel = this.channel(request.adapter);
      if (request.state === "wait-channel") {
        channel.waiting.remove(request);
      } else if (request.state === "wait-registers") {
        this.#registerQueue.remove(request);
        this.#release(request.adapter);
      } else {
        return false;
      }
      request.state = "cancelled";
      this.#announce(request, "cancel");
      return true;
    });
  }

  /**
   * FreeAdapterChannel / FreeAdapterObject: the owner gives the channel up; its held registers
   * are freed too unless `keepRegisters` (they then stay with the driver). The next waiter runs.
   */
  releaseChannel(adapter: AdapterObject, keepRegisters: boolean): void {
    this.#atDispatch(() => {
      const held = this.channel(adapter).heldGrant;
      if (held !== undefined) {
        if (keepRegisters) held.owner = "driver";
        else this.#grants.release(held);
      }
      this.#release(adapter);
    });
  }

  /** FreeMapRegisters / PutScatterGatherList: registers go back, and the map-register queue moves. */
  freeGrant(grant: MapRegisterGrant): void {
    if (this.#scheduler.irql === Irql.dispatch) this.#freeGrant(grant);
    else this.#scheduler.runAtIrql(Irql.dispatch, () => this.#freeGrant(grant));
  }

  /** PutDmaAdapter: the adapter's waiters are dropped (their routines never run) and returned. */
  close(adapter: AdapterObject): WaitBlock[] {
    return this.#atDispatch(() => {
      const channel = this.channel(adapter);
      const dropped = [
        ...channel.waiting.removeWhere(() => true),
        ...this.#registerQueue.removeWhere((request) => request.adapter === adapter),
      ];
      for (const request of dropped) {
        if (channel.owner === request) channel.owner = undefined;
        request.state = "cancelled";
        this.#announce(request, "cancel");
      }
      if (channel.owner === undefined) this.#channels.delete(adapter);
      this.#serve();
      return dropped;
    });
  }

  #submit(request: WaitBlock, synchronous: boolean): SubmitResult {
    const channel = this.channel(request.adapter);
    this.#announce(request, "request");
    if (channel.busy) {
      if (synchronous) return this.#refuse(request);
      request.state = "wait-channel";
      channel.waiting.push(request);
      this.#channelWaits.value++;
      this.#announce(request, "wait-channel");
      return "queued";
    }
    if (synchronous) {
      let grant: MapRegisterGrant | undefined;
      if (this.#needsGrant(request)) {
        grant = this.#registerQueue.length === 0 ? this.#tryGrant(request) : undefined;
        if (grant === undefined) return this.#refuse(request);
      }
      channel.owner = request;
      this.#run(request, channel, grant);
      return "granted";
    }
    channel.owner = request;
    this.#start(request, channel);
    return request.state === "wait-registers" ? "queued" : "granted";
  }

  #freeGrant(grant: MapRegisterGrant): void {
    const channel = this.channel(grant.adapter);
    if (channel.heldGrant === grant) channel.heldGrant = undefined;
    this.#grants.release(grant);
    this.#serve();
  }

  #atDispatch<T>(body: () => T): T {
    return this.#scheduler.irql === Irql.dispatch ? body() : this.#scheduler.runAtIrql(Irql.dispatch, body);
  }

  #needsGrant(request: WaitBlock): boolean {
    return request.mapRegisters > 0 && request.adapter.strategy.needsMapRegisters(request.adapter);
  }

  #tryGrant(request: WaitBlock): MapRegisterGrant | undefined {
    const file = request.adapter.strategy.tryAllocateMapRegisters(request.adapter, request.mapRegisters);
    return file === undefined ? undefined : this.#grants.create(request.adapter, file);
  }

  #refuse(request: WaitBlock): SubmitResult {
    this.#announce(request, "refuse");
    return "refused";
  }

  /** `request` owns its channel: run it now if its registers are free and nobody waits before it. */
  #start(request: WaitBlock, channel: AdapterChannel): void {
    if (!this.#needsGrant(request)) {
      this.#run(request, channel, undefined);
      return;
    }
    const grant = this.#registerQueue.length === 0 ? this.#tryGrant(request) : undefined;
    if (grant !== undefined) {
      this.#run(request, channel, grant);
      return;
    }
    request.state = "wait-registers";
    this.#registerQueue.push(request);
    this.#registerWaits.value++;
    this.#announce(request, "wait-registers");
  }

  /** Runs the routine of a request that holds its channel and registers, then applies its action. */
  #run(request: WaitBlock, channel: AdapterChannel, grant: MapRegisterGrant | undefined): void {
    request.state = "running";
    this.#channelGrants.value++;
    this.#announce(request, "grant");
    let action: number;
    try {
      action = request.routine(grant, request);
    } catch (error) {
      // A routine that throws (a bug check, a test's assertion) keeps what it held, as KeepObject.
      request.state = "done";
      channel.heldGrant = grant !== undefined && !request.grantTaken ? grant : undefined;
      throw error;
    }
    request.state = "done";
    const kept = grant !== undefined && !request.grantTaken ? grant : undefined;
    switch (action) {
      case KeepObject:
        channel.heldGrant = kept;
        return;
      case DeallocateObject:
        if (kept !== undefined) this.#grants.release(kept);
        this.#release(request.adapter, channel);
        return;
      case DeallocateObjectKeepRegisters:
        if (kept !== undefined) kept.owner = "driver";
        this.#release(request.adapter, channel);
        return;
      default:
        channel.heldGrant = kept;
        throw halViolation(
          HalRule.badAllocationAction,
          Number.isSafeInteger(action) ? action : 0,
          request.adapter.id,
          `an AdapterControl routine returned ${String(action)}; it must return KeepObject, DeallocateObject or DeallocateObjectKeepRegisters (the HAL kept the channel)`,
        );
    }
  }

  /** The channel is free: hand it to the next waiter, and move the queues. */
  #release(adapter: AdapterObject, channel = this.channel(adapter)): void {
    const owner = channel.owner;
    channel.owner = undefined;
    channel.heldGrant = undefined;
    if (owner !== undefined) this.#announce(owner, "release");
    if (channel.waiting.length > 0) this.#ready.push(adapter);
    this.#serve();
  }

  /** The one loop that grants: the map-register queue's head first, then freed channels. */
  #serve(): void {
    if (this.#serving) return;
    this.#serving = true;
    try {
      for (;;) {
        const head = this.#registerQueue.peek();
        if (head !== undefined) {
          const grant = this.#tryGrant(head);
          if (grant !== undefined) {
            this.#registerQueue.shift();
            this.#run(head, this.channel(head.adapter), grant);
            continue;
          }
        }
        const adapter = this.#ready.shift();
        if (adapter === undefined) return;
        const channel = this.channel(adapter);
        if (channel.owner !== undefined) continue;
        const next = channel.waiting.shift();
        if (next === undefined) continue;
        channel.owner = next;
        this.#start(next, channel);
      }
    } finally {
      this.#serving = false;
    }
  }

  #announce(request: WaitBlock, action: DmaChannelEvent["action"]): void {
    if (!this.#channelListened.active) return;
    this.#events.emit("dma.channel", {
      adapter: request.adapter.id,
      requesterId: request.adapter.requesterId ?? -1,
      action,
      mapRegisters: request.mapRegisters,
      kind: request.kind,
    });
  }
}
