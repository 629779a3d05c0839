/**
 * A bus-master PCI device whose behaviour the test writes, so that a mock driver can be tested
 * without writing a device model. The test chooses its DMA capabilities (address width,
 * scatter/gather, maximum transfer, alignment) and its script: what it does when the driver rings
 * the doorbell (src/testing/scriptable-registers.ts has the register interface). Like every device
 * model it reaches memory ONLY through its DmaPort, so the IOMMU, bounce buffers and tracing see
 * everything it does.
 *
 * Hardware behaviour it keeps:
 * - The address width is a wire width: a device with N address bits drives the low N bits of a
 *   bus address and loses the rest (a 32-bit device told 4 GiB + 8 KiB writes at 8 KiB), as the
 *   legacy bus master does (src/devices/legacy-dma-device.ts).
 * - Each DMA access takes the device's transfer time (latency + bytes / bandwidth) of virtual time
 *   before the next action runs; a `stall` adds more.
 * - A failed access stops the transfer where it failed and the command completes with ERROR.
 *
 * It records what it was asked (register writes, requests with their decoded segments) and what
 * it did (every DMA access with bus address, bytes and DmaResult; interrupts), for assertions.
 */
import type { DmaAccess } from "../platform/dma-remapper.js";
import type { DmaResult } from "../platform/dma-result.js";
import { checkLength, formatAddress } from "../platform/page.js";
import { PciDevice } from "../platform/pci-device.js";
import { PlatformError } from "../platform/platform-error.js";
import { concatBytes, testBytes } from "./bytes.js";
import {
  DESCRIPTOR_SIZE,
  SCRIPTABLE_DEVICE_ID,
  SCRIPTABLE_ID_VALUE,
  SCRIPTABLE_VENDOR_ID,
  ScriptableCommand,
  ScriptableError,
  ScriptableRegister,
  ScriptableStatus,
} from "./scriptable-registers.js";

export interface ScriptableDeviceOptions {
  readonly name?: string;
  readonly vendorId?: number;
  readonly deviceId?: number;
  /** Address bits the device drives: 24 to 64 (default 64). */
  readonly addressBits?: number;
  /** Accepts more than one descriptor per command (default true). */
  readonly scatterGather?: boolean;
  /** Largest command in bytes (default 16 MiB). */
  readonly maxTransfer?: number;
  /** Required alignment of buffer addresses in bytes, a power of two (default 1). */
  readonly alignment?: number;
  readonly latencyNs?: number;
  readonly bandwidth?: number;
  /** What every doorbell runs (default DEFAULT_SCRIPT). */
  readonly script?: Script;
}

/** One thing the device does. Actions run in order; DMA and stalls take virtual time. */
export type ScriptAction =
  /**
   * Carries out the programmed command on its segments: reads them (toDevice) or writes `bytes`
   * over them in order (fromDevice; default the bytes given to `load`, else testBytes). Checks the
   * capabilities first; a violation ends the command with that error and moves nothing.
   */
  | { readonly op: "transfer"; readonly bytes?: Uint8Array }
  /** A DMA read at a bus address the script chooses (a rogue or stray read). */
  | { readonly op: "read"; readonly address: number; readonly length: number }
  /** A DMA write at a bus address the script chooses. */
  | { readonly op: "write"; readonly address: number; readonly bytes: Uint8Array }
  | { readonly op: "stall"; readonly ns: number }
  | { readonly op: "interrupt" }
  /** Ends the command: DONE, with ERROR if a step failed. */
  | { readonly op: "complete" }
  /** Ends the command with ERROR and `code` (default ScriptableError.scripted): an injected device error. */
  | { readonly op: "fail"; readonly code?: number };

/** A script: the same actions for every request, or actions chosen per request. */
export type Script = readonly ScriptAction[] | ((request: ScriptRequest) => readonly ScriptAction[]);

/** Move the data, then complete and interrupt: what a well-behaved device does. */
export const DEFAULT_SCRIPT: readonly ScriptAction[] = Object.freeze([
  { op: "transfer" },
  { op: "complete" },
  { op: "interrupt" },
]);

/** One buffer of a command. */
export interface ScriptSegment {
  /** The address as programmed (register pair or descriptor). */
  readonly address: number;
  /** What the device drives on the bus: the address cut to its width (undefined: beyond 2^53). */
  readonly busAddress: number | undefined;
  readonly length: number;
}

/** A doorbell the device accepted, and how it went. */
export interface ScriptRequest {
  /** 0 for the first doorbell, then 1, 2 ... */
  readonly index: number;
  readonly time: number;
  readonly command: number;
  /** ADDRESS as programmed. */
  readonly address: number;
  /** ADDRESS as the device drives it (undefined: beyond 2^53). */
  readonly busAddress: number | undefined;
  readonly count: number;
  /** Filled once the descriptors are fetched. */
  segments: readonly ScriptSegment[];
  state: "running" | "done" | "error";
  /** ScriptableError. */
  error: number;
  /** Bytes the transfer moved. */
  bytesDone: number;
}

/** One DMA access the device made. */
export interface DeviceDmaRecord {
  /** The request it belongs to (-1 for none). */
  readonly request: number;
  readonly time: number;
  /** "read": the device read memory; "write": it wrote memory. */
  readonly access: DmaAccess;
  readonly purpose: "descriptors" | "transfer" | "script";
  readonly address: number;
  /** Address on the bus (after the device's width); undefined when not representable. */
  readonly busAddress: number | undefined;
  readonly length: number;
  /** Read: the bytes that arrived (0xFF after a failure). Write: the bytes sent. */
  readonly bytes: Uint8Array;
  readonly result: DmaResult;
}

export interface RegisterWrite {
  readonly time: number;
  readonly offset: number;
  readonly value: number;
}

const MAX_ADDRESS_BITS = 64;
const MIN_ADDRESS_BITS = 24;
/** Above this the simulator's bus addresses are not exact (and beyond any physical width). */
const BUS_LIMIT = 2 ** 53;
const DEFAULT_MAX_TRANSFER = 16 * 1024 * 1024;
/** Longest descriptor list the device fetches (a wild COUNT must not become a wild allocation). */
export const MAX_DESCRIPTORS = 4096;

export class ScriptableDevice extends PciDevice {
  readonly addressBits: number;
  readonly scatterGather: boolean;
  readonly maxTransfer: number;
  readonly alignment: number;
  /** Every register write, in order. */
  readonly registerWrites: RegisterWrite[] = [];
  /** Every doorbell the device accepted. */
  readonly requests: ScriptRequest[] = [];
  /** Every DMA access. */
  readonly accesses: DeviceDmaRecord[] = [];
  /** Virtual times at which the device raised its interrupt. */
  readonly interrupts: number[] = [];
  /** Doorbells rung while a command was running (ignored, as busy hardware ignores them). */
  ignoredDoorbells = 0;
  #script: Script;
  readonly #oneShot: Script[] = [];
  #payload: Uint8Array | undefined;
  #addressLow = 0;
  #addressHigh = 0;
  #length = 0;
  #count = 0;
  #status = 0;
  #bytesDone = 0;
  #error = 0;

  constructor(options: ScriptableDeviceOptions = {}) {
    const name = options.name ?? "scriptable device";
    super(
      {
        name,
        vendorId: options.vendorId ?? SCRIPTABLE_VENDOR_ID,
        deviceId: options.deviceId ?? SCRIPTABLE_DEVICE_ID,
        classCode: 0xff0000,
      },
      { barSize: 4096, latencyNs: options.latencyNs, bandwidth: options.bandwidth },
    );
    const bits = options.addressBits ?? MAX_ADDRESS_BITS;
    if (!Number.isInteger(bits) || bits < MIN_ADDRESS_BITS || bits > MAX_ADDRESS_BITS) {
      throw new PlatformError(
        "out-of-range",
        `${name}: address width ${String(bits)} is not an integer in [${MIN_ADDRESS_BITS}, ${MAX_ADDRESS_BITS}]`,
      );
    }
    const alignment = options.alignment ?? 1;
    if (
      !Number.isSafeInteger(alignment) ||
      alignment < 1 ||
      2 ** Math.round(Math.log2(alignment)) !== alignment
    ) {
      throw new PlatformError(
        "out-of-range",
        `${name}: alignment ${String(alignment)} is not a power of two`,
      );
    }
    this.addressBits = bits;
    this.scatterGather = options.scatterGather ?? true;
    this.maxTransfer = checkLength(
      options.maxTransfer ?? DEFAULT_MAX_TRANSFER,
      `${name}: maximum transfer`,
      2 ** 32 - 1,
    );
    this.alignment = alignment;
    this.#script = checkScript(options.script ?? DEFAULT_SCRIPT, name);
  }

  /** Sets the script every later doorbell runs. */
  onDoorbell(script: Script): this {
    this.#script = checkScript(script, this.name);
    return this;
  }

  /** Queues a script for the next doorbell only (several calls: the next ones, in order). */
  onNextDoorbell(script: Script): this {
    this.#oneShot.push(checkScript(script, this.name));
    return this;
  }

  /** The bytes a fromDevice transfer writes (until changed). */
  load(bytes: Uint8Array): this {
    if (!(bytes instanceof Uint8Array))
      throw new PlatformError("bad-length", `${this.name}: load needs a Uint8Array`);
    this.#payload = bytes.slice();
    return this;
  }

  /** A bus address as this device drives it: cut to its width; undefined beyond 2^53. */
  busAddressOf(address: number): number | undefined {
    if (!Number.isSafeInteger(address) || address < 0) return undefined;
    return this.addressBits >= 53 ? address : address % 2 ** this.addressBits;
  }

  /** Bytes moved by successful parts of transfer and script accesses, in order (descriptors left out). */
  transferred(access?: DmaAccess, request?: number): Uint8Array {
    return concatBytes(
      this.accesses
        .filter(
          (a) =>
            a.purpose !== "descriptors" &&
            (access === undefined || a.access === access) &&
            (request === undefined || a.request === request),
        )
        .map((a) => a.bytes.subarray(0, a.result.ok ? a.length : a.result.bytesDone)),
    );
  }

  protected registerValue(offset: number): number {
    switch (offset) {
      case ScriptableRegister.id:
        return SCRIPTABLE_ID_VALUE;
      case ScriptableRegister.capabilities:
        return (this.addressBits & 0xff) | (this.scatterGather ? 0x100 : 0);
      case ScriptableRegister.addressLow:
        return this.#addressLow;
      case ScriptableRegister.addressHigh:
        return this.#addressHigh;
      case ScriptableRegister.length:
        return this.#length;
      case ScriptableRegister.count:
        return this.#count;
      case ScriptableRegister.status:
        return this.#status;
      case ScriptableRegister.bytesDone:
        return this.#bytesDone;
      case ScriptableRegister.errorCode:
        return this.#error;
      case ScriptableRegister.maxTransfer:
        return this.maxTransfer;
      case ScriptableRegister.alignment:
        return this.alignment;
      default:
        return 0;
    }
  }

  protected onRegisterWrite(offset: number, value: number): void {
    this.registerWrites.push({ time: this.scheduler.now, offset, value });
    switch (offset) {
      case ScriptableRegister.addressLow:
        this.#addressLow = value;
        return;
      case ScriptableRegister.addressHigh:
        this.#addressHigh = value;
        return;
      case ScriptableRegister.length:
        this.#length = value;
        return;
      case ScriptableRegister.count:
        this.#count = value;
        return;
      case ScriptableRegister.status:
        this.#status &= ~(value & (ScriptableStatus.done | ScriptableStatus.error));
        return;
      case ScriptableRegister.doorbell:
        this.#ring(value);
        return;
    }
  }

  protected override onDetach(): void {
    this.#status = 0;
  }

  #ring(command: number): void {
    if ((this.#status & ScriptableStatus.busy) !== 0) {
      this.ignoredDoorbells++;
      return;
    }
    const address = this.#addressHigh * 2 ** 32 + this.#addressLow;
    const busAddress = this.#wire(this.#addressHigh, this.#addressLow);
    const request: ScriptRequest = {
      index: this.requests.length,
      time: this.scheduler.now,
      command,
      address,
      busAddress,
      count: this.#count,
      segments: [],
      state: "running",
      error: ScriptableError.none,
      bytesDone: 0,
    };
    this.requests.push(request);
    this.#status = ScriptableStatus.busy;
    this.#bytesDone = 0;
    this.#error = ScriptableError.none;
    const length = this.#length;
    const script = this.#oneShot.shift() ?? this.#script;
    this.after(this.latencyNs, () => {
      if (request.count === 0) {
        request.segments = [{ address, busAddress, length }];
      } else {
        request.segments = this.#fetchDescriptors(request);
      }
      const actions = typeof script === "function" ? checkActions(script(request), this.name) : script;
      this.#run(request, actions, 0);
    });
  }

  /** Reads the descriptor list; on failure the request has no segments and carries the error. */
  #fetchDescriptors(request: ScriptRequest): ScriptSegment[] {
    if (request.count > MAX_DESCRIPTORS) {
      request.error = ScriptableError.tooManySegments;
      return [];
    }
    const table = new Uint8Array(request.count * DESCRIPTOR_SIZE);
    if (!this.#dma(request, "read", "descriptors", request.address, request.busAddress, table)) {
      request.error = ScriptableError.dmaFault;
      return [];
    }
    const view = new DataView(table.buffer);
    const segments: ScriptSegment[] = [];
    for (let i = 0; i < request.count; i++) {
      const low = view.getUint32(i * DESCRIPTOR_SIZE, true);
      const high = view.getUint32(i * DESCRIPTOR_SIZE + 4, true);
      const address = high * 2 ** 32 + low;
      segments.push({
        address,
        busAddress: this.#wire(high, low),
        length: view.getUint32(i * DESCRIPTOR_SIZE + 8, true),
      });
    }
    return segments;
  }

  /** Runs actions from `index` until one takes time; the rest continue after it. */
  #run(request: ScriptRequest, actions: readonly ScriptAction[], index: number): void {
    for (let i = index; i < actions.length; i++) {
      const delay = this.#act(request, actions[i]!);
      if (delay > 0 && i + 1 < actions.length) {
        this.after(delay, () => this.#run(request, actions, i + 1));
        return;
      }
    }
  }

  /** Performs one action; returns the virtual time it takes. */
  #act(request: ScriptRequest, action: ScriptAction): number {
    switch (action.op) {
      case "transfer":
        return this.#transfer(request, action.bytes);
      case "read": {
        const bytes = new Uint8Array(action.length);
        this.#dma(request, "read", "script", action.address, this.busAddressOf(action.address), bytes);
        return this.transferTime(bytes.length);
      }
      case "write":
        this.#dma(
          request,
          "write",
          "script",
          action.address,
          this.busAddressOf(action.address),
          action.bytes,
        );
        return this.transferTime(action.bytes.length);
      case "stall":
        return action.ns;
      case "interrupt":
        this.interrupts.push(this.scheduler.now);
        this.raiseInterrupt();
        return 0;
      case "complete":
        this.#finish(request, request.error);
        return 0;
      case "fail":
        this.#finish(request, action.code ?? ScriptableError.scripted);
        return 0;
    }
  }

  #transfer(request: ScriptRequest, bytes: Uint8Array | undefined): number {
    if (request.error !== ScriptableError.none) return 0;
    const error = this.#check(request);
    if (error !== ScriptableError.none) {
      request.error = error;
      return 0;
    }
    const total = request.segments.reduce((sum, s) => sum + s.length, 0);
    const toDevice = request.command === ScriptableCommand.toDevice;
    const source = toDevice ? undefined : (bytes ?? this.#payload ?? testBytes(total, request.index + 1));
    let done = 0;
    for (const segment of request.segments) {
      const length = toDevice ? segment.length : Math.min(segment.length, source!.length - done);
      if (length <= 0) break;
      const buffer = toDevice ? new Uint8Array(length) : source!.subarray(done, done + length);
      const ok = this.#dma(
        request,
        toDevice ? "read" : "write",
        "transfer",
        segment.address,
        segment.busAddress,
        buffer,
      );
      const { result } = this.accesses.at(-1)!;
      done += result.ok ? length : result.bytesDone;
      if (!ok) {
        request.error = ScriptableError.dmaFault;
        break;
      }
    }
    request.bytesDone = done;
    this.#bytesDone = done;
    return this.transferTime(done);
  }

  #check(request: ScriptRequest): number {
    if (request.command !== ScriptableCommand.toDevice && request.command !== ScriptableCommand.fromDevice) {
      return ScriptableError.badCommand;
    }
    if (request.segments.length > 1 && !this.scatterGather) return ScriptableError.tooManySegments;
    const total = request.segments.reduce((sum, s) => sum + s.length, 0);
    if (total > this.maxTransfer) return ScriptableError.tooLong;
    const misaligned = request.segments.some(
      (s) => s.busAddress !== undefined && s.busAddress % this.alignment !== 0,
    );
    return misaligned ? ScriptableError.misaligned : ScriptableError.none;
  }

  /** One access through the port, recorded. Returns true when it moved every byte. */
  #dma(
    request: ScriptRequest,
    access: DmaAccess,
    purpose: DeviceDmaRecord["purpose"],
    address: number,
    busAddress: number | undefined,
    bytes: Uint8Array,
  ): boolean {
    let result: DmaResult;
    if (busAddress === undefined || busAddress + bytes.length > BUS_LIMIT) {
      if (access === "read") bytes.fill(0xff);
      result = { ok: false, kind: "unassigned", address: busAddress ?? 0, faultReason: 0, bytesDone: 0 };
    } else {
      result = access === "read" ? this.port.read(busAddress, bytes) : this.port.write(busAddress, bytes);
    }
    this.accesses.push({
      request: request.index,
      time: this.scheduler.now,
      access,
      purpose,
      address,
      busAddress,
      length: bytes.length,
      bytes: access === "write" ? bytes.slice() : bytes,
      result,
    });
    return result.ok;
  }

  /** The bus address of a 64-bit register or descriptor pair, exact, or undefined beyond 2^53. */
  #wire(high: number, low: number): number | undefined {
    if (this.addressBits <= 32) return low % 2 ** this.addressBits;
    const keptHigh = this.addressBits >= 53 ? high : high % 2 ** (this.addressBits - 32);
    return keptHigh >= 2 ** 21 ? undefined : keptHigh * 2 ** 32 + low;
  }

  #finish(request: ScriptRequest, error: number): void {
    request.error = error;
    request.state = error === ScriptableError.none ? "done" : "error";
    this.#error = error;
    this.#status = ScriptableStatus.done | (error === ScriptableError.none ? 0 : ScriptableStatus.error);
  }
}

function checkScript(script: Script, name: string): Script {
  return typeof script === "function" ? script : checkActions(script, name);
}

/** Validates a script's actions up front, so a typo fails in the test, not halfway through a run. */
function checkActions(actions: readonly ScriptAction[], name: string): readonly ScriptAction[] {
  if (!Array.isArray(actions)) throw new PlatformError("bad-state", `${name}: a script is a list of actions`);
  for (const action of actions) {
    const bad = (why: string): never => {
      throw new PlatformError("bad-state", `${name}: script action ${JSON.stringify(action)} ${why}`);
    };
    switch (action?.op) {
      case "transfer":
        if (action.bytes !== undefined && !(action.bytes instanceof Uint8Array))
          bad("needs bytes as a Uint8Array");
        break;
      case "read":
        if (!Number.isSafeInteger(action.address) || action.address < 0)
          bad(`has a bad address ${formatAddress(action.address)}`);
        checkLength(action.length, `${name}: script read length`, 2 ** 30);
        break;
      case "write":
        if (!Number.isSafeInteger(action.address) || action.address < 0)
          bad(`has a bad address ${formatAddress(action.address)}`);
        if (!(action.bytes instanceof Uint8Array)) bad("needs bytes as a Uint8Array");
        break;
      case "stall":
        checkLength(action.ns, `${name}: stall (ns)`);
        break;
      case "fail":
        if (action.code !== undefined) checkLength(action.code, `${name}: error code`, 0xffffffff);
        break;
      case "interrupt":
      case "complete":
        break;
      default:
        bad("is not one of transfer, read, write, stall, interrupt, complete, fail");
    }
  }
  return actions;
}
