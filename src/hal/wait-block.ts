/**
 * A wait context block (WCB): one request for the adapter channel and `mapRegisters` map
 * registers, and the routine to run once both are held (reference section 3). AllocateAdapterChannel
 * uses the one WCB embedded in the device object, which is why a device object may have only one
 * such request outstanding; Get/BuildScatterGatherList and the V3 Ex routines bring their own.
 */
import type { AdapterObject } from "./adapter-object.js";
import type { MapRegisterGrant } from "./map-register-grant.js";
import type { IO_ALLOCATION_ACTION } from "./wdm/io-allocation-action.js";

/** new -> wait-channel -> wait-registers -> running -> done, or cancelled while waiting. */
export type WaitState = "new" | "wait-channel" | "wait-registers" | "running" | "done" | "cancelled";

export class WaitBlock {
  state: WaitState = "new";
  /** Set by a list request's routine: the grant now belongs to its scatter/gather list. */
  grantTaken = false;
  /** Undoes what the requester reserved for it (a list's pool memory, a transfer context) if it never runs. */
  cleanup: ((wait: WaitBlock) => void) | undefined = undefined;

  constructor(
    readonly adapter: AdapterObject,
    /** AllocateAdapterChannel(Ex) ("channel") or a scatter/gather list request ("list"). */
    readonly kind: "channel" | "list",
    readonly mapRegisters: number,
    /**
     * Runs at DISPATCH_LEVEL with the registers granted (undefined: none needed). It gets its
     * wait block too, so one routine can serve many requests (a subclass carries their data).
     */
    readonly routine: (grant: MapRegisterGrant | undefined, wait: WaitBlock) => IO_ALLOCATION_ACTION,
  ) {}

  /** Queued for the channel or for registers: its routine has not run and may be cancelled. */
  get waiting(): boolean {
    return this.state === "wait-channel" || this.state === "wait-registers";
  }
}
