/**
 * "Copy this memory by the best method available": the one call the 2006 Kernel Summit asked for
 * instead of letting every caller look for DMA engines, allocate channels and code around
 * failures (seed 000; dmaengine's async_memcpy with its synchronous fallback, iommu-anchors §11).
 *
 *   const result = await copies.copy(destination, source, length);   // or { onComplete }
 *
 * The service, not the caller, decides:
 * - no running engine channel                         -> CPU ("no-engine");
 * - shorter than engineThresholdBytes                  -> CPU ("below-threshold");
 * - a channel with fewer than channelQueueDepth copies -> that channel, picked round-robin;
 * - every channel busy                                 -> CPU ("channels-busy");
 * - the channel refuses the copy, or the copy fails    -> CPU ("engine-refused", "engine-failed").
 * Engine copies go through the engine driver, which maps both buffers through its DMA adapter: with
 * remapping on, the engine reaches them by IOVA through the IOMMU like any other device.
 *
 * Time is virtual. An engine copy takes what the device model takes. A CPU copy occupies the
 * one simulated processor for cpuSetupNs + length / cpuBytesPerSecond: CPU copies run one after
 * another, the data moves (RtlCopyMemory) when the processor is done, and the completion follows.
 * The completion callback runs at DISPATCH_LEVEL for an engine copy (the driver's DPC) and at
 * PASSIVE_LEVEL for a CPU copy; the promise resolves after it, with the same result.
 */
import { inject, injectable, optional } from "inversify";
import type { DmaEngineChannel } from "../../drivers/dma-engine/dma-engine-channel.js";
import { DmaEngineDriver } from "../../drivers/dma-engine/dma-engine-driver.js";
import {
  Kernel,
  NT_SUCCESS,
  type NTSTATUS,
  type PVOID,
  STATUS_PENDING,
  STATUS_SUCCESS,
} from "../ddi/index.js";
import { Irql } from "../platform/irql.js";
import { KernelMemory } from "../platform/kernel-memory.js";
import { checkLength, formatAddress } from "../platform/page.js";
import { PlatformError } from "../platform/platform-error.js";
import { Scheduler } from "../platform/scheduler.js";
import { Counters } from "../trace/counters.js";
import { EventBus } from "../trace/event-bus.js";
import {
  type DmaCopyOptions as DmaCopyOptionsShape,
  type ResolvedDmaCopyOptions,
  resolveDmaCopyOptions,
} from "./dma-copy-options.js";
import {
  type CopyReason,
  type DmaCopyResult,
  type DmaCopyStatistics,
  FALLBACK_REASONS,
} from "./dma-copy-result.js";
import { DmaCopyOptions } from "./tokens.js";
import "./offload-events.js";

export interface CopyOptions {
  /** Runs once, when the copy is over, before the promise resolves. */
  readonly onComplete?: (result: DmaCopyResult) => void;
}

/** One copy in flight. */
interface Request {
  readonly destination: PVOID;
  readonly source: PVOID;
  readonly length: number;
  readonly submittedNs: number;
  readonly onComplete: ((result: DmaCopyResult) => void) | undefined;
  readonly resolve: (result: DmaCopyResult) => void;
}

/** The most bytes one copy may move (IoAllocateMdl's limit: 4 GiB less a page). */
const MAX_COPY = 4 * 1024 ** 3 - 4096;

@injectable()
export class DmaCopyService {
  readonly options: ResolvedDmaCopyOptions;
  readonly stats: DmaCopyStatistics = {
    copies: 0,
    engineCopies: 0,
    cpuCopies: 0,
    engineBytes: 0,
    cpuBytes: 0,
    failures: 0,
    fallbacks: Object.fromEntries(
      FALLBACK_REASONS.map((reason) => [reason, 0]),
    ) as DmaCopyStatistics["fallbacks"],
    cpuBusyNs: 0,
  };
  readonly #kernel: Kernel;
  readonly #memory: KernelMemory;
  readonly #scheduler: Scheduler;
  readonly #counters: Counters;
  readonly #events: EventBus;
  readonly #engines: DmaEngineDriver | undefined;
  /** Round-robin start for the next channel search. */
  #nextChannel = 0;
  /** When the simulated processor finishes the CPU copies already queued, ns. */
  #cpuFreeAt = 0;

  constructor(
    @inject(Kernel) kernel: Kernel,
    @inject(KernelMemory) memory: KernelMemory,
    @inject(Scheduler) scheduler: Scheduler,
    @inject(Counters) counters: Counters,
    @inject(EventBus) events: EventBus,
    @inject(DmaCopyOptions) options: DmaCopyOptionsShape,
    @inject(DmaEngineDriver) @optional() engines: DmaEngineDriver | undefined,
  ) {
    this.options = resolveDmaCopyOptions(options);
    this.#kernel = kernel;
    this.#memory = memory;
    this.#scheduler = scheduler;
    this.#counters = counters;
    this.#events = events;
    this.#engines = engines;
  }

  /** Engine channels the service may use right now. */
  get channels(): readonly DmaEngineChannel[] {
    return this.#engines?.channels() ?? [];
  }

  /**
   * Copies `length` bytes from `source` to `destination` (mapped kernel memory, not overlapping),
   * by the best method available; IRQL <= DISPATCH_LEVEL. The promise never rejects: a failure
   * is in the result's status. Bad arguments throw a PlatformError and start nothing.
   */
  copy(destination: PVOID, source: PVOID, length: number, options: CopyOptions = {}): Promise<DmaCopyResult> {
    this.#validate(destination, source, length, options);
    return new Promise((resolve) => {
      const request: Request = {
        destination,
        source,
        length,
        submittedNs: this.#scheduler.now,
        onComplete: options.onComplete,
        resolve,
      };
      this.#dispatch(request);
    });
  }

  #validate(destination: PVOID, source: PVOID, length: number, options: CopyOptions): void {
    checkLength(length, "copy length", MAX_COPY);
    if (length === 0) throw new PlatformError("bad-length", "a copy needs at least one byte");
    if (this.#scheduler.irql > Irql.dispatch) {
      throw new PlatformError(
        "bad-state",
        `copy called at IRQL ${this.#scheduler.irql}; it needs <= DISPATCH_LEVEL`,
      );
    }
    if (options.onComplete !== undefined && typeof options.onComplete !== "function") {
      throw new PlatformError("bad-handle", "onComplete must be a function");
    }
    for (const [what, va] of [
      ["source", source],
      ["destination", destination],
    ] as const) {
      if (!this.#memory.isMapped(va, length)) {
        throw new PlatformError(
          "not-mapped",
          `copy ${what} ${formatAddress(va)}+${length} is not mapped kernel memory`,
        );
      }
    }
    if (source < destination + length && destination < source + length) {
      throw new PlatformError(
        "bad-address",
        `copy source ${formatAddress(source)} and destination ${formatAddress(destination)} overlap over ${length} bytes`,
      );
    }
  }

  #dispatch(request: Request): void {
    const channels = this.channels;
    if (channels.length === 0) {
      this.#cpuCopy(request, "no-engine");
      return;
    }
    if (request.length < this.options.engineThresholdBytes) {
      this.#cpuCopy(request, "below-threshold");
      return;
    }
    const channel = this.#freeChannel(channels);
    if (channel === undefined) {
      this.#cpuCopy(request, "channels-busy");
      return;
    }
    const status = channel.submitCopy(
      request.destination,
      request.source,
      request.length,
      (done: NTSTATUS) => this.#engineDone(request, channel, done),
      undefined,
    );
    if (status !== STATUS_PENDING) this.#cpuCopy(request, "engine-refused");
  }

  /** The first channel, from the round-robin position on, with room in its queue. */
  #freeChannel(channels: readonly DmaEngineChannel[]): DmaEngineChannel | undefined {
    for (let i = 0; i < channels.length; i++) {
      const index = (this.#nextChannel + i) % channels.length;
      const channel = channels[index]!;
      if (channel.outstanding < this.options.channelQueueDepth) {
        this.#nextChannel = (index + 1) % channels.length;
        return channel;
      }
    }
    return undefined;
  }

  #engineDone(request: Request, channel: DmaEngineChannel, status: NTSTATUS): void {
    if (!NT_SUCCESS(status) && this.options.cpuRetryOnEngineError) {
      this.#counters.add("offload.copy.engine.failed");
      this.#cpuCopy(request, "engine-failed");
      return;
    }
    this.#complete(request, status, "engine", channel.name);
  }

  /** Queues the copy on the simulated processor; the data moves when its turn is over. */
  #cpuCopy(request: Request, reason: Exclude<CopyReason, "engine">): void {
    const now = this.#scheduler.now;
    const cost = this.options.cpuSetupNs + Math.ceil((request.length * 1e9) / this.options.cpuBytesPerSecond);
    const end = Math.max(now, this.#cpuFreeAt) + cost;
    this.#cpuFreeAt = end;
    this.stats.cpuBusyNs += cost;
    this.#scheduler.schedule(
      end - now,
      () => {
        this.#kernel.RtlCopyMemory(request.destination, request.source, request.length);
        this.#complete(request, STATUS_SUCCESS, reason, undefined);
      },
      "cpu copy",
    );
  }

  #complete(request: Request, status: NTSTATUS, reason: CopyReason, channel: string | undefined): void {
    const method = reason === "engine" ? "engine" : "cpu";
    const result: DmaCopyResult = {
      status,
      method,
      reason,
      channel,
      bytes: request.length,
      submittedNs: request.submittedNs,
      completedNs: this.#scheduler.now,
    };
    const stats = this.stats;
    stats.copies++;
    if (!NT_SUCCESS(status)) stats.failures++;
    if (method === "engine") {
      stats.engineCopies++;
      stats.engineBytes += request.length;
    } else {
      stats.cpuCopies++;
      stats.cpuBytes += request.length;
      stats.fallbacks[reason as Exclude<CopyReason, "engine">]++;
      this.#counters.add(`offload.copy.fallback.${reason}`);
    }
    this.#counters.add(`offload.copy.${method}`);
    this.#counters.add(`offload.copy.${method}.bytes`, request.length);
    if (this.#events.hasListeners("offload.copy")) {
      this.#events.emit("offload.copy", {
        method,
        reason,
        channel: channel ?? "",
        bytes: request.length,
        status,
        submittedNs: result.submittedNs,
        completedNs: result.completedNs,
      });
    }
    request.onComplete?.(result);
    request.resolve(result);
  }
}
