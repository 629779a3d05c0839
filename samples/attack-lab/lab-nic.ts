/**
 * The attack lab's NIC: a rogue FPGA board (the ids of src/devices/rogue-device.ts, host-driven
 * reads and writes through its port) with the register file of drivers/attack-nic, so a correct
 * driver binds to it and hands it real logical addresses (Thunderclap's "masquerade as a NIC",
 * perf-security-anchors §8).
 *
 * As a NIC it does what it is told: a transmit reads the buffer, a receive fills it with `rxByte`,
 * then DONE and an interrupt; `deliver` puts arriving data in the receive ring. As an attacker it
 * remembers every address the driver programmed (`programmed`, `ringAddress`), may keep a
 * request's completion to itself (`withholdCompletion`: the transfer happens, DONE never comes),
 * and ignores its reset register. Its own reads and writes (`read`, `write`) are the attack's,
 * returned as records of what moved, apart from the NIC traffic.
 */
import {
  ATTACK_NIC_DEVICE_ID,
  ATTACK_NIC_ID_VALUE,
  ATTACK_NIC_VENDOR_ID,
  NIC_CONTROL_START,
  NIC_CONTROL_TO_MEMORY,
  NIC_REG_ADDRESS_HIGH,
  NIC_REG_ADDRESS_LOW,
  NIC_REG_CONTROL,
  NIC_REG_ID,
  NIC_REG_LENGTH,
  NIC_REG_RESET,
  NIC_REG_RING_HIGH,
  NIC_REG_RING_LENGTH,
  NIC_REG_RING_LOW,
  NIC_REG_STATUS,
  NIC_STATUS_DONE,
  NIC_STATUS_ERROR,
} from "../../drivers/attack-nic/attack-nic-hw.js";
import { ROGUE_CLASS_CODE } from "../../src/devices/rogue-device.js";
import { PciDevice } from "../../src/platform/pci-device.js";

const TWO_POW_32 = 2 ** 32;

/** A transfer the driver programmed. */
export interface ProgrammedTransfer {
  readonly address: number;
  readonly length: number;
  /** true: a receive (the device writes memory). */
  readonly toMemory: boolean;
  readonly timeNs: number;
}

/** One access the attacker made through the NIC's port. */
export interface LabAccess {
  readonly access: "read" | "write";
  readonly busAddress: number;
  readonly timeNs: number;
  /** Bytes that moved before the access ended (a fault stops it). */
  readonly bytesDone: number;
  /** A read: what came back (all ones past a fault). A write: what was sent. */
  readonly bytes: Uint8Array;
}

export class LabNic extends PciDevice {
  /** Every transfer the driver programmed, oldest first. */
  readonly programmed: ProgrammedTransfer[] = [];
  /** What transmits carried, in order. */
  readonly transmitted: Uint8Array[] = [];
  /** The attacker's switch: do the transfer, never report it done. */
  withholdCompletion = false;
  /** The byte a receive fills its buffer with. */
  rxByte = 0x5a;
  resetsIgnored = 0;
  #low = 0;
  #high = 0;
  #length = 0;
  #status = 0;
  #ringLow = 0;
  #ringHigh = 0;
  #ringLength = 0;

  constructor(name: string) {
    super(
      { name, vendorId: ATTACK_NIC_VENDOR_ID, deviceId: ATTACK_NIC_DEVICE_ID, classCode: ROGUE_CLASS_CODE },
      { barSize: 4096 },
    );
  }

  /** The attacker reads `length` bytes at any bus address. */
  read(busAddress: number, length: number): LabAccess {
    const bytes = new Uint8Array(length);
    const result = this.port.read(busAddress, bytes);
    return {
      access: "read",
      busAddress,
      timeNs: this.scheduler.now,
      bytesDone: result.ok ? length : result.bytesDone,
      bytes,
    };
  }

  /** The attacker writes `bytes` at any bus address. */
  write(busAddress: number, bytes: Uint8Array): LabAccess {
    const result = this.port.write(busAddress, bytes);
    return {
      access: "write",
      busAddress,
      timeNs: this.scheduler.now,
      bytesDone: result.ok ? bytes.length : result.bytesDone,
      bytes,
    };
  }

  /** The receive ring the driver programmed, undefined without one. */
  get ringAddress(): number | undefined {
    return this.#ringLength === 0 ? undefined : this.#ringHigh * TWO_POW_32 + this.#ringLow;
  }

  /** Data arriving from the wire, written by DMA at the start of the receive ring. */
  deliver(bytes: Uint8Array): boolean {
    const ring = this.ringAddress;
    if (ring === undefined || bytes.length > this.#ringLength) return false;
    return this.port.write(ring, bytes).ok;
  }

  protected registerValue(offset: number): number {
    switch (offset) {
      case NIC_REG_ID:
        return ATTACK_NIC_ID_VALUE;
      case NIC_REG_STATUS:
        return this.#status;
      default:
        return 0;
    }
  }

  protected onRegisterWrite(offset: number, value: number): void {
    switch (offset) {
      case NIC_REG_ADDRESS_LOW:
        this.#low = value;
        return;
      case NIC_REG_ADDRESS_HIGH:
        this.#high = value;
        return;
      case NIC_REG_LENGTH:
        this.#length = value;
        return;
      case NIC_REG_CONTROL:
        if ((value & NIC_CONTROL_START) !== 0) this.#start((value & NIC_CONTROL_TO_MEMORY) !== 0);
        return;
      case NIC_REG_STATUS:
        this.#status &= ~value;
        return;
      case NIC_REG_RESET:
        this.resetsIgnored++;
        return;
      case NIC_REG_RING_LOW:
        this.#ringLow = value;
        return;
      case NIC_REG_RING_HIGH:
        this.#ringHigh = value;
        return;
      case NIC_REG_RING_LENGTH:
        this.#ringLength = value;
        return;
    }
  }

  #start(toMemory: boolean): void {
    const address = this.#high * TWO_POW_32 + this.#low;
    const length = this.#length;
    this.programmed.push({ address, length, toMemory, timeNs: this.scheduler.now });
    this.afterTransfer(length, () => {
      let ok: boolean;
      if (toMemory) {
        ok = this.port.write(address, new Uint8Array(length).fill(this.rxByte)).ok;
      } else {
        const data = new Uint8Array(length);
        ok = this.port.read(address, data).ok;
        this.transmitted.push(data);
      }
      if (this.withholdCompletion) return;
      this.#status |= ok ? NIC_STATUS_DONE : NIC_STATUS_ERROR;
      this.raiseInterrupt();
    });
  }
}
