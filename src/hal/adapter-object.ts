/**
 * The HAL's adapter object. It IS the DMA_ADAPTER a driver holds (header first, as in ReactOS's
 * ADAPTER_OBJECT), plus what IoGetDmaAdapter decided from the DEVICE_DESCRIPTION. Channel and
 * queue bookkeeping lives with the dispatcher; per-strategy state (a domain, a bounce pool) sits in
 * `mapping`.
 */

import type { DmaMappingStrategy } from "./dma-mapping-strategy.js";
import { ListLookaside } from "./list-lookaside.js";
import type { DEVICE_OBJECT } from "./wdm/device-object.js";
import type { DMA_ADAPTER, DMA_OPERATIONS } from "./wdm/dma-operations.js";

/** What IoGetDmaAdapter decided (shared/reference/windows-dma-ddi.md section 2). */
export interface AdapterCapabilities {
  /** DMA_OPERATIONS table version handed out: 1, 2 or 3. */
  readonly tableVersion: 1 | 2 | 3;
  readonly master: boolean;
  readonly scatterGather: boolean;
  /** Device address width in bits (24, 32, 64 or a VERSION3 DmaAddressWidth). */
  readonly addressBits: number;
  /** Highest logical address the device can drive, inclusive (MAX_SAFE_INTEGER: everything). */
  readonly addressLimit: number;
  readonly maximumLength: number;
  /** NumberOfMapRegisters returned to the driver: the per-request maximum. */
  readonly numberOfMapRegisters: number;
}

export class AdapterObject implements DMA_ADAPTER {
  readonly Version = 1;
  /** sizeof(DMA_ADAPTER) on x64. */
  readonly Size = 16;
  released = false;
  /** Strategy-private state (the remapping domain, the bounce pool). */
  mapping: unknown = undefined;
  /** The dispatcher's memory of put-back scatter/gather lists, for the adapter's next ones. */
  readonly listLookaside = new ListLookaside();
  readonly #brand = true;

  constructor(
    /** Per machine, in IoGetDmaAdapter order: the same run names the same adapters. */
    readonly id: number,
    readonly DmaOperations: DMA_OPERATIONS,
    readonly physicalDeviceObject: DEVICE_OBJECT,
    readonly capabilities: AdapterCapabilities,
    readonly strategy: DmaMappingStrategy,
  ) {}

  /**
   * `value instanceof AdapterObject`, checked by private name: under tsx, esbuild's keepNames
   * redefines every class's `name`, after which V8's instanceof is several times slower, and
   * every DMA_OPERATIONS member asks this.
   */
  static is(value: unknown): value is AdapterObject {
    return typeof value === "object" && value !== null && #brand in value;
  }

  get requesterId(): number | undefined {
    return this.physicalDeviceObject.DeviceObjectExtension.requesterId;
  }

  /** External (hot-plug) devices get the untrusted policy: strict unmaps, sub-page bouncing. */
  get untrusted(): boolean {
    return this.physicalDeviceObject.DeviceObjectExtension.external;
  }
}
