/**
 * An adapter's channel: who owns the adapter object right now, and the requests waiting for it in
 * arrival order (ReactOS's ChannelWaitQueue). Only one request owns the channel at a time; it
 * keeps it while waiting for map registers and, after a KeepObject, until FreeAdapterChannel.
 */
import type { MapRegisterGrant } from "./map-register-grant.js";
import type { WaitBlock } from "./wait-block.js";
import { WaitQueue } from "./wait-queue.js";

export class AdapterChannel {
  owner: WaitBlock | undefined = undefined;
  /** Registers kept together with the channel by a KeepObject. */
  heldGrant: MapRegisterGrant | undefined = undefined;
  readonly waiting = new WaitQueue<WaitBlock>();

  /** Owned, or others are already waiting for it (a newcomer queues behind them). */
  get busy(): boolean {
    return this.owner !== undefined || this.waiting.length > 0;
  }
}
