/**
 * A malicious bus master (a Thunderclap- or PCILeech-style FPGA board): no driver programs it. The
 * attacker drives it from the host side, reading or writing any bus address with any length, and
 * it keeps a log of what it got: the bytes and the DmaResult. Without an IOMMU every access
 * reaches RAM ("leaked"); with remapping on, only its own mappings do and the rest fault
 * ("blocked"), which is the whole argument for routing every DMA through the DMA DDI.
 *
 * An access happens at the current virtual time, when the attacker asks: an attack does not wait
 * for a doorbell. Schedule the call to time it. The device still needs Bus Master Enable (attach it
 * with `busMaster: true`): the DmaPort gates every requester on it, where real malicious firmware
 * would just ignore its own command register.
 */
import type { DmaResult } from "../platform/dma-result.js";
import { checkLength, MiB } from "../platform/page.js";
import { PciDevice, type PciDeviceOptions } from "../platform/pci-device.js";
import { PlatformError } from "../platform/platform-error.js";

/** complete: every byte moved. partial: some moved before a fault. blocked: nothing moved. */
export type RogueOutcome = "complete" | "partial" | "blocked";

export interface RogueAccess {
  readonly access: "read" | "write";
  readonly busAddress: number;
  readonly length: number;
  /** Virtual time (ns) of the access. */
  readonly timeNs: number;
  readonly result: DmaResult;
  /** Bytes moved before the access ended. */
  readonly bytesDone: number;
  /** A read: what came back (all ones past a fault). A write: what was sent. Owned by the log. */
  readonly bytes: Uint8Array;
  readonly outcome: RogueOutcome;
}

export interface RogueDeviceOptions extends Partial<PciDeviceOptions> {
  readonly name?: string;
}

/** The Xilinx vendor id and a default FPGA endpoint id (10ee:0666), as attack boards keep them. */
export const ROGUE_VENDOR_ID = 0x10ee;
export const ROGUE_DEVICE_ID = 0x0666;
/** It presents itself as an ordinary Ethernet controller. */
export const ROGUE_CLASS_CODE = 0x020000;
/** Longest single access the attacker may ask for. */
export const MAX_ROGUE_ACCESS = 256 * MiB;

export class RogueDevice extends PciDevice {
  readonly #log: RogueAccess[] = [];

  constructor(options: RogueDeviceOptions = {}) {
    super(
      {
        name: options.name ?? "rogue bus master",
        vendorId: ROGUE_VENDOR_ID,
        deviceId: ROGUE_DEVICE_ID,
        classCode: ROGUE_CLASS_CODE,
      },
      { barSize: 4096, latencyNs: options.latencyNs, bandwidth: options.bandwidth },
    );
  }

  /** Every access so far, oldest first. */
  get log(): readonly RogueAccess[] {
    return this.#log;
  }

  /** Reads `length` bytes at any bus address. */
  read(busAddress: number, length: number): RogueAccess {
    checkLength(length, "rogue read length", MAX_ROGUE_ACCESS);
    const bytes = new Uint8Array(length);
    return this.#record("read", busAddress, bytes, this.port.read(busAddress, bytes));
  }

  /** Writes `bytes` at any bus address. */
  write(busAddress: number, bytes: Uint8Array): RogueAccess {
    if (!(bytes instanceof Uint8Array))
      throw new PlatformError("bad-length", "rogue write needs a Uint8Array");
    checkLength(bytes.length, "rogue write length", MAX_ROGUE_ACCESS);
    const copy = bytes.slice();
    return this.#record("write", busAddress, copy, this.port.write(busAddress, copy));
  }

  /** True when some read brought back `needle` (for instance a secret planted in kernel memory). */
  sawBytes(needle: Uint8Array): boolean {
    if (needle.length === 0) return false;
    return this.#log.some(
      (a) =>
        a.access === "read" &&
        Buffer.from(a.bytes.buffer, a.bytes.byteOffset, a.bytesDone).indexOf(needle) >= 0,
    );
  }

  protected override registerValue(): number {
    return 0;
  }

  protected override onRegisterWrite(): void {}

  #record(access: "read" | "write", busAddress: number, bytes: Uint8Array, result: DmaResult): RogueAccess {
    const bytesDone = result.ok ? bytes.length : result.bytesDone;
    const outcome: RogueOutcome = result.ok ? "complete" : bytesDone > 0 ? "partial" : "blocked";
    const entry: RogueAccess = {
      access,
      busAddress,
      length: bytes.length,
      timeNs: this.scheduler.now,
      result,
      bytesDone,
      bytes,
      outcome,
    };
    this.#log.push(entry);
    return entry;
  }
}
