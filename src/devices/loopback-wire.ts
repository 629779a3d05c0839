/**
 * A cable between two NICs, or from one NIC back to itself (the demo case: what a NIC sends, it
 * receives). Host-side wiring, like v86's BusConnector pair between a NIC and its host adapter,
 * but with the peer a simulated NIC: a frame a NIC transmits is offered at once to the peer's
 * receive ring, which stores it or drops it (counted here and in the peer's MPC).
 *
 * Every frame can be captured to a pcap file, time-stamped with the virtual time it left.
 */
import { PlatformError } from "../platform/platform-error.js";
import type { PcapWriter } from "../trace/pcap-writer.js";
import type { NicDevice, NicLink } from "./nic-device.js";

export interface LoopbackWireStats {
  /** Frames put on the wire. */
  frames: number;
  bytes: number;
  /** Frames the receiving NIC did not take (no descriptor, receiver off, DMA failure). */
  dropped: number;
}

export class LoopbackWire implements NicLink {
  readonly stats: LoopbackWireStats = { frames: 0, bytes: 0, dropped: 0 };
  #a: NicDevice | undefined;
  #b: NicDevice | undefined;
  #capture: PcapWriter | undefined;

  constructor(options: { capture?: PcapWriter } = {}) {
    this.#capture = options.capture;
  }

  /** Connects `a` and `b`; with `b` omitted, `a` is looped back to itself. */
  plug(a: NicDevice, b: NicDevice = a): void {
    if (this.#a !== undefined)
      throw new PlatformError("bad-state", "this wire is already plugged; unplug it first");
    for (const nic of a === b ? [a] : [a, b]) {
      if (nic.link !== undefined)
        throw new PlatformError("bad-state", `${nic.name} already has a cable plugged in`);
    }
    this.#a = a;
    this.#b = b;
    a.connectLink(this);
    b.connectLink(this);
  }

  /** Pulls the cable from both ends. */
  unplug(): void {
    this.#a?.connectLink(undefined);
    this.#b?.connectLink(undefined);
    this.#a = undefined;
    this.#b = undefined;
  }

  /**
   * Starts (or replaces, or with undefined stops) recording every frame. The caller closes the
   * writer; a closed writer is no longer fed.
   */
  capture(writer: PcapWriter | undefined): void {
    this.#capture = writer;
  }

  deliver(from: NicDevice, frame: Uint8Array, timeNs: number): void {
    const peer = from === this.#a ? this.#b : from === this.#b ? this.#a : undefined;
    if (peer === undefined)
      throw new PlatformError("not-owner", `${from.name} is not plugged into this wire`);
    this.stats.frames++;
    this.stats.bytes += frame.length;
    if (this.#capture?.closed === false) this.#capture.writeFrame(timeNs, frame);
    if (!peer.receive(frame)) this.stats.dropped++;
  }
}
