/**
 * The HAL's front door: IoGetDmaAdapter (reference section 2) and the books a teardown check
 * reads. IoGetDmaAdapter applies the DEVICE_DESCRIPTION rules, picks the mapping strategy from the
 * machine's remapping mode ("off" and "passthrough": DirectMapping; "strict" and "lazy":
 * RemapMapping), computes NumberOfMapRegisters as Windows does, BYTES_TO_PAGES(MaximumLength) + 1
 * capped by what the platform allows (the bounce pool of the device's reach; the IOVA pages below
 * its reach), and hands out an AdapterObject whose DMA_OPERATIONS table is the one bound to the
 * DmaOperations token (so a verifier's decorator is what drivers call), with the Size of the
 * version the description asked for.
 *
 * Adapter ids count from 1 per Hal, in IoGetDmaAdapter order, so the same run names the same
 * adapters. The Hal does not hold HalDmaOperations' decorator chain in a cycle: the dispatcher
 * never needs the Hal.
 */
import { inject, injectable } from "inversify";
import { PAGE_SIZE } from "../platform/page.js";
import { PlatformError } from "../platform/platform-error.js";
import { Scheduler } from "../platform/scheduler.js";
import { type AdapterCapabilities, AdapterObject } from "./adapter-object.js";
import { describeAdapter, mapRegistersWanted } from "./device-description-rules.js";
import { DirectMapping } from "./direct-mapping.js";
import type { DmaMappingStrategy } from "./dma-mapping-strategy.js";
import { dmaOperationsTable } from "./dma-operations-table.js";
import { checkIrql } from "./hal-bug-checks.js";
import { HalDmaOperations } from "./hal-dma-operations.js";
import type { HalOptions as HalOptionsShape } from "./hal-options.js";
import { RemapMapping } from "./remap-mapping.js";
import { DmaOperations, HalOptions } from "./tokens.js";
import type { DEVICE_DESCRIPTION } from "./wdm/device-description.js";
import type { DEVICE_OBJECT } from "./wdm/device-object.js";
import type { DMA_OPERATIONS, IoGetDmaAdapterResult } from "./wdm/dma-operations.js";

const NULL_ADAPTER: IoGetDmaAdapterResult = Object.freeze({ Adapter: undefined, NumberOfMapRegisters: 0 });
/** Highest IOVA a 4-level table translates. */
const IOVA_MAX = 2 ** 48 - 1;

/** What the HAL holds right now: all zero after every driver has cleaned up. */
export interface HalResources {
  /** Adapters IoGetDmaAdapter handed out and PutDmaAdapter has not released. */
  readonly adaptersOpen: number;
  /** Map registers granted (bounce pages or IOVA window pages), whoever holds them. */
  readonly mapRegistersGranted: number;
  /** Bounce pages in use (the no-remapping path). */
  readonly bouncePages: number;
  /** IOVA pages allocated, including those waiting in a lazy flush queue. */
  readonly iovaPages: number;
  readonly commonBuffers: number;
  readonly commonBufferVectors: number;
  /** Scatter/gather lists handed out and not yet put back. */
  readonly scatterGatherLists: number;
  /** Requests waiting for an adapter channel or for map registers. */
  readonly queuedRequests: number;
  /** Adapter channels kept after a KeepObject. */
  readonly channelsHeld: number;
}

@injectable()
export class Hal {
  private readonly options: HalOptionsShape;
  private readonly dispatcher: HalDmaOperations;
  private readonly direct: DirectMapping;
  private readonly remap: RemapMapping;
  private readonly scheduler: Scheduler;
  private readonly tables: Readonly<Record<1 | 2 | 3, DMA_OPERATIONS>>;
  private nextId = 1;

  constructor(
    @inject(HalOptions) options: HalOptionsShape,
    @inject(DmaOperations) operations: DMA_OPERATIONS,
    @inject(HalDmaOperations) dispatcher: HalDmaOperations,
    @inject(DirectMapping) direct: DirectMapping,
    @inject(RemapMapping) remap: RemapMapping,
    @inject(Scheduler) scheduler: Scheduler,
  ) {
    this.options = options;
    this.dispatcher = dispatcher;
    this.direct = direct;
    this.remap = remap;
    this.scheduler = scheduler;
    this.tables = {
      1: dmaOperationsTable(operations, 1),
      2: dmaOperationsTable(operations, 2),
      3: dmaOperationsTable(operations, 3),
    };
  }

  /** The strategy this machine's remapping mode uses. */
  get strategy(): DmaMappingStrategy {
    return this.options.remapping === "strict" || this.options.remapping === "lazy"
      ? this.remap
      : this.direct;
  }

  /**
   * IoGetDmaAdapter, PASSIVE_LEVEL. NULL (Adapter undefined, NumberOfMapRegisters 0) for a
   * description IoGetDmaAdapter refuses (device-description-rules.ts), a PDO that is not a device
   * object, or a device the platform cannot serve (no bounce pages below its reach).
   */
  getDmaAdapter(pdo: DEVICE_OBJECT, description: DEVICE_DESCRIPTION): IoGetDmaAdapterResult {
    checkIrql(this.scheduler.irql, "passive", "IoGetDmaAdapter");
    if (typeof pdo !== "object" || pdo === null || typeof pdo.DeviceObjectExtension !== "object")
      return NULL_ADAPTER;
    const described = describeAdapter(description, pdo.DeviceObjectExtension.requesterId !== undefined);
    if (described === undefined) return NULL_ADAPTER;
    const strategy = this.strategy;
    let limit: number;
    try {
      limit = this.mapRegisterLimit(strategy, described.scatterGather, described.addressLimit);
    } catch (error) {
      if (error instanceof PlatformError) return NULL_ADAPTER;
      throw error;
    }
    const capabilities: AdapterCapabilities = {
      tableVersion: described.tableVersion,
      master: described.master,
      scatterGather: described.scatterGather,
      addressBits: described.addressBits,
      addressLimit: described.addressLimit,
      maximumLength: described.maximumLength,
      numberOfMapRegisters: Math.min(mapRegistersWanted(described.maximumLength), limit),
    };
    const adapter = new AdapterObject(
      this.nextId,
      this.tables[capabilities.tableVersion],
      pdo,
      capabilities,
      strategy,
    );
    try {
      this.dispatcher.registerAdapter(adapter);
    } catch (error) {
      if (error instanceof PlatformError) return NULL_ADAPTER;
      throw error;
    }
    this.nextId++;
    return { Adapter: adapter, NumberOfMapRegisters: capabilities.numberOfMapRegisters };
  }

  /** What every adapter and strategy holds: the shared teardown check wants all of it zero. */
  resources(): HalResources {
    const direct = this.direct.resources();
    const remap = this.remap.resources();
    const dispatcher = this.dispatcher.resources();
    return {
      adaptersOpen: this.dispatcher.openAdapters,
      mapRegistersGranted: direct.mapRegisters + remap.mapRegisters,
      bouncePages: direct.bouncePages + remap.bouncePages,
      iovaPages: direct.iovaPages + remap.iovaPages,
      commonBuffers: direct.commonBuffers + remap.commonBuffers,
      commonBufferVectors: dispatcher.commonBufferVectors,
      scatterGatherLists: dispatcher.scatterGatherLists,
      queuedRequests: dispatcher.queuedRequests,
      channelsHeld: dispatcher.channelsHeld,
    };
  }

  /**
   * The most map registers one request may take: the bounce pool's size for a device that needs
   * bouncing, the IOVA pages below the device's reach when remapping, unbounded otherwise.
   */
  private mapRegisterLimit(
    strategy: DmaMappingStrategy,
    scatterGather: boolean,
    addressLimit: number,
  ): number {
    if (strategy === this.direct) return this.direct.mapRegisterLimit(scatterGather, addressLimit);
    return Math.floor((Math.min(addressLimit, IOVA_MAX) + 1) / PAGE_SIZE) - 1;
  }
}
