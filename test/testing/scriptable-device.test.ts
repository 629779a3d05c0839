import { describe, expect, it } from "vitest";
import { FaultReason } from "../../src/iommu/fault-reason.js";
import { GiB, MiB, PAGE_SIZE } from "../../src/platform/page.js";
import { PlatformError } from "../../src/platform/platform-error.js";
import {
  DESCRIPTOR_SIZE,
  type Script,
  ScriptableCommand,
  ScriptableDevice,
  type ScriptableDeviceOptions,
  ScriptableError,
  ScriptableRegister,
  ScriptableStatus,
  type TestMachine,
  testBytes,
  testMachine,
} from "../../src/testing/index.js";

/** A machine without remapping (bus address = physical address) and a device with bus mastering on. */
function rig(options: ScriptableDeviceOptions = {}): { t: TestMachine; device: ScriptableDevice } {
  const t = testMachine({ remapping: "off", memory: 256 * MiB, mmioHoleStart: 128 * MiB });
  return { t, device: t.plug(new ScriptableDevice(options), { busMaster: true }) };
}

/** Programs one buffer (COUNT = 0) and rings the doorbell, as a driver would. */
function ringDirect(
  t: TestMachine,
  device: ScriptableDevice,
  address: number,
  length: number,
  command: number,
): void {
  t.mmioWrite64(device, ScriptableRegister.addressLow, address);
  t.mmioWrite(device, ScriptableRegister.length, length);
  t.mmioWrite(device, ScriptableRegister.count, 0);
  t.mmioWrite(device, ScriptableRegister.doorbell, command);
}

/** Writes a descriptor list at `table` and rings the doorbell for it. */
function ringList(
  t: TestMachine,
  device: ScriptableDevice,
  table: number,
  segments: readonly (readonly [number, number])[],
  command: number,
): void {
  const bytes = new Uint8Array(segments.length * DESCRIPTOR_SIZE);
  const view = new DataView(bytes.buffer);
  segments.forEach(([address, length], i) => {
    view.setUint32(i * DESCRIPTOR_SIZE, address % 2 ** 32, true);
    view.setUint32(i * DESCRIPTOR_SIZE + 4, Math.floor(address / 2 ** 32), true);
    view.setUint32(i * DESCRIPTOR_SIZE + 8, length, true);
  });
  t.writePhysical(table, bytes);
  t.mmioWrite64(device, ScriptableRegister.addressLow, table);
  t.mmioWrite(device, ScriptableRegister.count, segments.length);
  t.mmioWrite(device, ScriptableRegister.doorbell, command);
}

const status = (t: TestMachine, device: ScriptableDevice): number =>
  t.mmioRead(device, ScriptableRegister.status);

describe("ScriptableDevice", () => {
  it("fills one buffer with its payload, then completes and interrupts (the default script)", () => {
    const { t, device } = rig();
    const data = testBytes(5000, 4);
    device.load(data);
    ringDirect(t, device, 0x20_0000, data.length, ScriptableCommand.fromDevice);
    expect(status(t, device)).toBe(ScriptableStatus.busy);
    t.runUntilIdle();
    expect(status(t, device)).toBe(ScriptableStatus.done);
    expect(t.mmioRead(device, ScriptableRegister.bytesDone)).toBe(5000);
    expect(t.readPhysical(0x20_0000, 5000)).toEqual(data);
    expect(device).toHaveTransferred(data, { access: "write" });
    expect(device.interrupts).toHaveLength(1);
    expect(device.requests[0]).toMatchObject({
      index: 0,
      command: 2,
      address: 0x20_0000,
      count: 0,
      state: "done",
    });
    expect(device.requests[0]!.segments).toEqual([
      { address: 0x20_0000, busAddress: 0x20_0000, length: 5000 },
    ]);
    t.mmioWrite(device, ScriptableRegister.status, ScriptableStatus.done);
    expect(status(t, device)).toBe(0);
    expect(device.registerWrites.map((w) => w.offset)).toEqual([0x08, 0x0c, 0x10, 0x14, 0x18, 0x1c]);
  });

  it("reads a descriptor list's buffers in order and records each access", () => {
    const { t, device } = rig();
    const a = testBytes(100, 1);
    const b = testBytes(PAGE_SIZE, 2);
    t.writePhysical(0x30_0100, a);
    t.writePhysical(0x50_0000, b);
    ringList(
      t,
      device,
      0x10_0000,
      [
        [0x30_0100, 100],
        [0x50_0000, PAGE_SIZE],
      ],
      ScriptableCommand.toDevice,
    );
    t.runUntilIdle();
    expect(device).toHaveTransferred(new Uint8Array([...a, ...b]), { access: "read" });
    expect(device.accesses.map((x) => [x.purpose, x.busAddress, x.length])).toEqual([
      ["descriptors", 0x10_0000, 2 * DESCRIPTOR_SIZE],
      ["transfer", 0x30_0100, 100],
      ["transfer", 0x50_0000, PAGE_SIZE],
    ]);
    expect(device.requests[0]!.bytesDone).toBe(100 + PAGE_SIZE);
  });

  it("loses the address bits it does not drive: told 4 GiB + 8 KiB, a 32-bit device writes at 8 KiB", () => {
    const { t, device } = rig({ addressBits: 32 });
    device.load(testBytes(64, 9));
    ringDirect(t, device, 4 * GiB + 0x2000, 64, ScriptableCommand.fromDevice);
    t.runUntilIdle();
    expect(device.requests[0]).toMatchObject({ address: 4 * GiB + 0x2000, busAddress: 0x2000 });
    expect(t.readPhysical(0x2000, 64)).toEqual(testBytes(64, 9));
    expect(t.readPhysical(4 * GiB + 0x2000, 64).every((x) => x === 0)).toBe(true);
    expect(t.mmioRead(device, ScriptableRegister.capabilities)).toBe(32 | 0x100);
  });

  it.each<[string, ScriptableDeviceOptions, readonly (readonly [number, number])[], number]>([
    [
      "more segments than a device without scatter/gather takes",
      { scatterGather: false },
      [
        [0x30_0000, 8],
        [0x40_0000, 8],
      ],
      ScriptableError.tooManySegments,
    ],
    [
      "more bytes than its maximum transfer",
      { maxTransfer: 4096 },
      [[0x30_0000, 4097]],
      ScriptableError.tooLong,
    ],
    [
      "an address below its alignment",
      { alignment: 512 },
      [
        [0x30_0100, 8],
        [0x40_0000, 8],
      ],
      ScriptableError.misaligned,
    ],
  ])("refuses %s: ERROR, the code, nothing moved", (_what, options, segments, code) => {
    const { t, device } = rig(options);
    ringList(t, device, 0x10_0000, segments, ScriptableCommand.fromDevice);
    t.runUntilIdle();
    expect(status(t, device)).toBe(ScriptableStatus.done | ScriptableStatus.error);
    expect(t.mmioRead(device, ScriptableRegister.errorCode)).toBe(code);
    expect(device.accesses.filter((x) => x.purpose === "transfer")).toEqual([]);
    expect(device.interrupts).toHaveLength(1);
  });

  it("refuses a descriptor count beyond what it fetches, without fetching", () => {
    const { t, device } = rig();
    t.mmioWrite(device, ScriptableRegister.count, 0xffff_ffff);
    t.mmioWrite(device, ScriptableRegister.doorbell, ScriptableCommand.toDevice);
    t.runUntilIdle();
    expect(t.mmioRead(device, ScriptableRegister.errorCode)).toBe(ScriptableError.tooManySegments);
    expect(device.accesses).toEqual([]);
  });

  it("runs a script: stalls take virtual time, fail sets the code, no interrupt unless asked", () => {
    const { t, device } = rig();
    device.onDoorbell([
      { op: "stall", ns: 50_000 },
      { op: "fail", code: 0x77 },
    ]);
    ringDirect(t, device, 0x30_0000, 16, ScriptableCommand.fromDevice);
    t.advance(40_000);
    expect(status(t, device)).toBe(ScriptableStatus.busy);
    t.runUntilIdle();
    expect(status(t, device)).toBe(ScriptableStatus.done | ScriptableStatus.error);
    expect(t.mmioRead(device, ScriptableRegister.errorCode)).toBe(0x77);
    expect(device.interrupts).toEqual([]);
    expect(device.requests[0]!.state).toBe("error");
  });

  it("ignores a doorbell while busy, and a one-shot script applies to the next doorbell only", () => {
    const { t, device } = rig();
    const seen: number[] = [];
    const script: Script = (request) => {
      seen.push(request.index);
      return [{ op: "complete" }];
    };
    device.onNextDoorbell(script);
    ringDirect(t, device, 0x30_0000, 16, ScriptableCommand.fromDevice);
    t.mmioWrite(device, ScriptableRegister.doorbell, ScriptableCommand.fromDevice);
    expect(device.ignoredDoorbells).toBe(1);
    t.runUntilIdle();
    ringDirect(t, device, 0x30_0000, 16, ScriptableCommand.fromDevice);
    t.runUntilIdle();
    expect(seen).toEqual([0]);
    expect(device.requests).toHaveLength(2);
    expect(device.interrupts).toHaveLength(1);
  });

  it("stops a transfer at a failing page and completes with dmaFault and the bytes moved", () => {
    const { t, device } = rig();
    t.injectDmaError({ address: 0x30_0000 + PAGE_SIZE, access: "write" });
    ringDirect(t, device, 0x30_0000, 3 * PAGE_SIZE, ScriptableCommand.fromDevice);
    t.runUntilIdle();
    expect(t.mmioRead(device, ScriptableRegister.errorCode)).toBe(ScriptableError.dmaFault);
    expect(t.mmioRead(device, ScriptableRegister.bytesDone)).toBe(PAGE_SIZE);
    expect(device.accesses[0]!.result).toMatchObject({
      ok: false,
      kind: "iommu-fault",
      faultReason: FaultReason.WriteNotPermitted,
    });
    expect(device.transferred()).toEqual(testBytes(3 * PAGE_SIZE, 1).subarray(0, PAGE_SIZE));
  });

  it("goes rogue on request: a stray read is stopped by a strict IOMMU and recorded", () => {
    const t = testMachine({ remapping: "strict" });
    const device = t.plug(new ScriptableDevice(), { busMaster: true });
    device.onDoorbell([{ op: "read", address: 0x7000, length: 32 }, { op: "complete" }]);
    t.mmioWrite(device, ScriptableRegister.doorbell, ScriptableCommand.toDevice);
    t.runUntilIdle();
    expect(t).toHaveIommuFaults([{ requesterId: device.requesterId, address: 0x7000, access: "read" }]);
    expect(device.accesses[0]!.bytes.every((x) => x === 0xff)).toBe(true);
    expect(status(t, device)).toBe(ScriptableStatus.done);
  });

  it("refuses bad options and bad scripts when they are given, not when they run", () => {
    expect(() => new ScriptableDevice({ addressBits: 20 })).toThrow(PlatformError);
    expect(() => new ScriptableDevice({ alignment: 3 })).toThrow(PlatformError);
    const device = new ScriptableDevice();
    expect(() => device.onDoorbell([{ op: "jump" } as never])).toThrow(/not one of/);
    expect(() => device.onDoorbell([{ op: "read", address: -1, length: 4 }])).toThrow(PlatformError);
    expect(() => device.onDoorbell([{ op: "stall", ns: 1.5 }])).toThrow(PlatformError);
  });
});
