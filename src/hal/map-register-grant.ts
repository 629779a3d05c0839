/**
 * MapRegisterBase as drivers see it: an opaque handle (reference section 3: "could be real
 * hardware registers, DMA-controller registers, or HAL software entries"), standing for one grant
 * of map registers from the adapter's mapping strategy. The registry tells live handles from
 * freed and foreign ones, so a double free or a forged base is caught instead of freeing
 * someone else's registers.
 *
 * The handle carries its grant as a hidden reference (hidden-reference.ts) and is made only when
 * a driver is given it: a scatter/gather list's registers never leave the HAL, so the list path
 * makes no handle at all. Live grants sit in an array with swap-remove, so create and release
 * are O(1) without hashing.
 */
import type { AdapterObject } from "./adapter-object.js";
import type { MapRegisterFile } from "./dma-mapping-strategy.js";
import { attachHiddenReference, hiddenReference } from "./hidden-reference.js";
import type { MAP_REGISTER_BASE } from "./wdm/dma-v3-types.js";

/** Who frees a grant: the channel owner (KeepObject), the driver, or a scatter/gather list. */
export type GrantOwner = "channel" | "driver" | "list";

export class MapRegisterGrant {
  owner: GrantOwner = "channel";
  /** Given back (FreeMapRegisters, PutScatterGatherList, ...): its handle is a freed one now. */
  released = false;
  /** Position in the registry's live array while not released. */
  slot = -1;
  #handle: MAP_REGISTER_BASE | undefined = undefined;

  constructor(
    readonly registry: MapRegisterGrants,
    readonly adapter: AdapterObject,
    readonly file: MapRegisterFile,
  ) {}

  get count(): number {
    return this.file.count;
  }

  /** The MAP_REGISTER_BASE the driver holds: the same frozen object on every call. */
  get handle(): MAP_REGISTER_BASE {
    if (this.#handle === undefined) {
      const handle = { kind: "MAP_REGISTER_BASE" as const };
      attachHiddenReference(handle, this);
      this.#handle = Object.freeze(handle);
    }
    return this.#handle;
  }
}

export class MapRegisterGrants {
  readonly #live: MapRegisterGrant[] = [];

  get size(): number {
    return this.#live.length;
  }

  create(adapter: AdapterObject, file: MapRegisterFile): MapRegisterGrant {
    const grant = new MapRegisterGrant(this, adapter, file);
    grant.slot = this.#live.length;
    this.#live.push(grant);
    return grant;
  }

  lookup(handle: MAP_REGISTER_BASE | undefined): MapRegisterGrant | undefined {
    const grant = this.#mine(handle);
    return grant === undefined || grant.released ? undefined : grant;
  }

  wasFreed(handle: MAP_REGISTER_BASE): boolean {
    return this.#mine(handle)?.released === true;
  }

  /** Gives the registers back to the adapter's strategy. */
  release(grant: MapRegisterGrant): void {
    grant.adapter.strategy.freeMapRegisters(grant.file);
    const live = this.#live;
    const last = live.pop()!;
    if (last !== grant) {
      live[grant.slot] = last;
      last.slot = grant.slot;
    }
    grant.slot = -1;
    grant.released = true;
  }

  /** Live grants of `adapter`. */
  of(adapter: AdapterObject): MapRegisterGrant[] {
    return this.#live.filter((grant) => grant.adapter === adapter);
  }

  #mine(handle: MAP_REGISTER_BASE | undefined): MapRegisterGrant | undefined {
    const grant = hiddenReference(handle);
    return grant instanceof MapRegisterGrant && grant.registry === this ? grant : undefined;
  }
}
