/**
 * MapRegisterBase as drivers see it: an opaque handle (reference section 3: "could be real
 * hardware registers, DMA-controller registers, or HAL software entries"), standing for one grant
 * of map registers from the adapter's mapping strategy. The registry tells live handles from
 * freed and foreign ones, so a double free or a forged base is caught instead of freeing
 * someone else's registers.
 */
import type { AdapterObject } from "./adapter-object.js";
import type { MapRegisterFile } from "./dma-mapping-strategy.js";
import type { MAP_REGISTER_BASE } from "./wdm/dma-v3-types.js";

/** Who frees a grant: the channel owner (KeepObject), the driver, or a scatter/gather list. */
export type GrantOwner = "channel" | "driver" | "list";

export class MapRegisterGrant {
  readonly handle: MAP_REGISTER_BASE = Object.freeze({ kind: "MAP_REGISTER_BASE" as const });
  owner: GrantOwner = "channel";

  constructor(
    readonly adapter: AdapterObject,
    readonly file: MapRegisterFile,
  ) {}

  get count(): number {
    return this.file.count;
  }
}

export class MapRegisterGrants {
  readonly #live = new Map<MAP_REGISTER_BASE, MapRegisterGrant>();
  readonly #freed = new WeakSet<MAP_REGISTER_BASE>();

  get size(): number {
    return this.#live.size;
  }

  create(adapter: AdapterObject, file: MapRegisterFile): MapRegisterGrant {
    const grant = new MapRegisterGrant(adapter, file);
    this.#live.set(grant.handle, grant);
    return grant;
  }

  lookup(handle: MAP_REGISTER_BASE | undefined): MapRegisterGrant | undefined {
    return handle === undefined ? undefined : this.#live.get(handle);
  }

  wasFreed(handle: MAP_REGISTER_BASE): boolean {
    return this.#freed.has(handle);
  }

  /** Gives the registers back to the adapter's strategy. */
  release(grant: MapRegisterGrant): void {
    grant.adapter.strategy.freeMapRegisters(grant.file);
    this.#live.delete(grant.handle);
    this.#freed.add(grant.handle);
  }

  /** Live grants of `adapter`. */
  of(adapter: AdapterObject): MapRegisterGrant[] {
    return [...this.#live.values()].filter((grant) => grant.adapter === adapter);
  }
}
