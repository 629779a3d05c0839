/**
 * The switch inside an SR-IOV NIC (a Virtual Ethernet Bridge, PCI-SIG SR-IOV 1.1 and Intel's
 * 82576 "VMDq/VEB"): frames one virtual function sends to another VF's MAC address never leave
 * the card; they are looped back to that VF's receive queue. Broadcast and multicast frames go
 * to every other VF; frames to an address no VF has go out of the physical port (the uplink),
 * which here is unplugged, so they are counted and dropped.
 *
 * Each VF still does its own DMA through its own requester id: a frame from guest A to guest B is
 * read from A's memory by A's VF (through A's domain) and written to B's memory by B's VF
 * (through B's domain). The bridge moves bytes between the two queues, never memory.
 */
import type { NicDevice, NicLink } from "../devices/nic-device.js";
import { PlatformError } from "../platform/platform-error.js";

export interface BridgeStats {
  /** Unicast frames delivered to the VF owning their destination address. */
  forwarded: number;
  /** Broadcast or multicast frames, counted once however many VFs got them. */
  flooded: number;
  /** Frames for an address no VF has: they went to the (unplugged) uplink. */
  uplink: number;
  /** Deliveries a receiving VF refused (no descriptor, receiver off, DMA failure). */
  dropped: number;
}

export class VirtualEthernetBridge implements NicLink {
  readonly stats: BridgeStats = { forwarded: 0, flooded: 0, uplink: 0, dropped: 0 };
  readonly #ports: NicDevice[] = [];

  /** Functions connected to the bridge. */
  get ports(): readonly NicDevice[] {
    return this.#ports;
  }

  /** Connects a VF; its MAC address must be unique on the bridge. */
  connect(nic: NicDevice): void {
    if (this.#ports.includes(nic))
      throw new PlatformError("bad-state", `${nic.name} is already on the bridge`);
    if (this.#ports.some((port) => sameMac(port.mac, nic.mac, 0))) {
      throw new PlatformError(
        "bad-state",
        `another function on the bridge has the MAC address of ${nic.name}`,
      );
    }
    nic.connectLink(this);
    this.#ports.push(nic);
  }

  deliver(from: NicDevice, frame: Uint8Array, _timeNs: number): void {
    if (!this.#ports.includes(from))
      throw new PlatformError("not-owner", `${from.name} is not on this bridge`);
    if (frame.length < 6) return;
    if ((frame[0]! & 1) !== 0) {
      this.stats.flooded++;
      for (const port of this.#ports) if (port !== from && !port.receive(frame)) this.stats.dropped++;
      return;
    }
    const target = this.#ports.find((port) => port !== from && sameMac(port.mac, frame, 0));
    if (target === undefined) {
      this.stats.uplink++;
      return;
    }
    this.stats.forwarded++;
    if (!target.receive(frame)) this.stats.dropped++;
  }
}

function sameMac(mac: Uint8Array, bytes: Uint8Array, at: number): boolean {
  for (let i = 0; i < 6; i++) if (mac[i] !== bytes[at + i]) return false;
  return true;
}
