/**
 * A device's PCI configuration header (type 0, PCI Local Bus 3.0 section 6.1), reduced to what
 * the simulation uses: identity, the command register, one memory BAR and the interrupt line.
 *
 * The bus plays firmware: it assigns the BAR and the line at attach and enables memory decoding.
 * Bus mastering stays off until software sets it (PCI 6.2.2: the command register resets to 0;
 * Windows' pci.sys sets it when it starts the device, Linux drivers call pci_set_master). BARs are
 * read-only here: there is no sizing protocol, since nobody but the bus places them.
 */
import { PlatformError } from "./platform-error.js";

/** A device's identity as data, as `lspci -nn` shows it. */
export interface PciIdentity {
  /** The model's name in traces and reports ("e1000-like NIC"). */
  readonly name: string;
  readonly vendorId: number;
  readonly deviceId: number;
  /** 24-bit class code: base class, subclass, programming interface (0x020000 = Ethernet). */
  readonly classCode: number;
  readonly revisionId?: number;
  readonly subsystemVendorId?: number;
  readonly subsystemId?: number;
}

/** Command register bits (offset 0x04). */
export const PciCommand = {
  memorySpace: 1 << 1,
  busMaster: 1 << 2,
  interruptDisable: 1 << 10,
} as const;

/** Configuration space offsets used by the model. */
export const PciConfigOffset = {
  id: 0x00,
  command: 0x04,
  classRevision: 0x08,
  header: 0x0c,
  bar0: 0x10,
  bar1: 0x14,
  subsystem: 0x2c,
  interrupt: 0x3c,
} as const;

export const PCI_CONFIG_SIZE = 256;
const WRITABLE_COMMAND_BITS = PciCommand.memorySpace | PciCommand.busMaster | PciCommand.interruptDisable;
/** BAR bits 2:1 = 10b: a 64-bit memory BAR (PCI 6.2.5.1). */
const BAR_TYPE_64 = 0b100;

export class PciConfigSpace {
  readonly identity: PciIdentity;
  #command = 0;
  #barAddress = 0;
  #barSize = 0;
  #interruptLine = 0xff;

  constructor(identity: PciIdentity) {
    checkField(identity.vendorId, "vendor id", 0xffff);
    checkField(identity.deviceId, "device id", 0xffff);
    checkField(identity.classCode, "class code", 0xffffff);
    checkField(identity.revisionId ?? 0, "revision id", 0xff);
    checkField(identity.subsystemVendorId ?? 0, "subsystem vendor id", 0xffff);
    checkField(identity.subsystemId ?? 0, "subsystem id", 0xffff);
    if (identity.vendorId === 0xffff) {
      throw new PlatformError("out-of-range", "vendor id 0xffff means 'no device' on PCI and cannot be used");
    }
    this.identity = { ...identity };
  }

  get command(): number {
    return this.#command;
  }

  get busMasterEnabled(): boolean {
    return (this.#command & PciCommand.busMaster) !== 0;
  }

  get memorySpaceEnabled(): boolean {
    return (this.#command & PciCommand.memorySpace) !== 0;
  }

  get interruptDisabled(): boolean {
    return (this.#command & PciCommand.interruptDisable) !== 0;
  }

  get barAddress(): number {
    return this.#barAddress;
  }

  get barSize(): number {
    return this.#barSize;
  }

  /** 0xff when no line is assigned (the "unknown" value of the Interrupt Line register). */
  get interruptLine(): number {
    return this.#interruptLine;
  }

  /** The bus (as firmware) places the BAR, routes the line and enables memory decoding. */
  assignResources(barAddress: number, barSize: number, interruptLine: number): void {
    this.#barAddress = barAddress;
    this.#barSize = barSize;
    this.#interruptLine = interruptLine;
    this.#command = PciCommand.memorySpace;
  }

  /** The bus removes the device: no decoding, no bus mastering, no resources. */
  releaseResources(): void {
    this.#command = 0;
    this.#barAddress = 0;
    this.#barSize = 0;
    this.#interruptLine = 0xff;
  }

  setCommandBit(bit: number, enabled: boolean): void {
    this.#command = enabled ? this.#command | bit : this.#command & ~bit;
  }

  /** A 32-bit configuration read; unmodelled registers read as zero. */
  read32(offset: number): number {
    checkOffset(offset);
    const id = this.identity;
    switch (offset) {
      case PciConfigOffset.id:
        return ((id.deviceId << 16) | id.vendorId) >>> 0;
      case PciConfigOffset.command:
        return this.#command;
      case PciConfigOffset.classRevision:
        return ((id.classCode << 8) | (id.revisionId ?? 0)) >>> 0;
      case PciConfigOffset.bar0:
        return this.#barAddress === 0 ? 0 : ((this.#barAddress % 2 ** 32) | this.#barType()) >>> 0;
      case PciConfigOffset.bar1:
        return this.#barType() === BAR_TYPE_64 ? Math.floor(this.#barAddress / 2 ** 32) : 0;
      case PciConfigOffset.subsystem:
        return (((id.subsystemId ?? 0) << 16) | (id.subsystemVendorId ?? 0)) >>> 0;
      case PciConfigOffset.interrupt:
        return (1 << 8) | this.#interruptLine;
      default:
        return 0;
    }
  }

  /**
   * A 32-bit configuration write. Only the command register's memory, bus-master and
   * interrupt-disable bits are writable; other writes are ignored, as writes to read-only
   * registers are on hardware. (The Interrupt Line byte is read-only too: the bus routes lines.)
   */
  write32(offset: number, value: number): void {
    checkOffset(offset);
    checkField(value, "configuration value", 0xffffffff);
    if (offset === PciConfigOffset.command) {
      this.#command = (this.#command & ~WRITABLE_COMMAND_BITS) | (value & WRITABLE_COMMAND_BITS);
    }
  }

  #barType(): number {
    return this.#barAddress >= 2 ** 32 ? BAR_TYPE_64 : 0;
  }
}

function checkOffset(offset: number): void {
  if (!Number.isInteger(offset) || offset < 0 || offset >= PCI_CONFIG_SIZE || offset % 4 !== 0) {
    throw new PlatformError(
      "bad-address",
      `PCI configuration offset ${String(offset)} is not a dword-aligned offset below ${PCI_CONFIG_SIZE}`,
    );
  }
}

function checkField(value: number, what: string, max: number): void {
  if (!Number.isInteger(value) || value < 0 || value > max) {
    throw new PlatformError(
      "out-of-range",
      `${what} ${String(value)} is not an integer in [0, 0x${max.toString(16)}]`,
    );
  }
}
