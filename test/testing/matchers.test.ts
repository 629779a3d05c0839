import { describe, expect, it } from "vitest";
import { DRIVER_VERIFIER_DMA_VIOLATION, IRQL_NOT_LESS_OR_EQUAL } from "../../src/ddi/index.js";
import { BugCheck } from "../../src/hal/wdm/bug-check.js";
import { FaultReason } from "../../src/iommu/fault-reason.js";
import { GiB, PAGE_SIZE } from "../../src/platform/page.js";
import {
  ScriptableCommand,
  ScriptableDevice,
  ScriptableRegister,
  type TestMachine,
  testBytes,
  testMachine,
} from "../../src/testing/index.js";

/** A strict machine whose device reads `address` once (a stray read: it faults). */
function strayRead(address: number): { t: TestMachine; device: ScriptableDevice } {
  const t = testMachine({ remapping: "strict" });
  const device = t.plug(new ScriptableDevice(), { busMaster: true });
  device.onDoorbell([{ op: "read", address, length: 8 }, { op: "complete" }]);
  t.mmioWrite(device, ScriptableRegister.doorbell, ScriptableCommand.toDevice);
  t.runUntilIdle();
  return { t, device };
}

describe("DMA matchers", () => {
  it("toEqualBytes compares byte arrays in one go and shows the first difference", () => {
    const bytes = testBytes(64 * 1024, 3);
    expect(bytes.slice()).toEqualBytes(bytes);
    expect(() => expect(bytes.subarray(0, 10)).toEqualBytes(bytes.subarray(0, 12))).toThrow(
      /lengths differ \(10 actual, 12 expected\), first difference at byte 10:\n.*\[end\]/,
    );
    expect(() => expect(bytes).not.toEqualBytes(bytes)).toThrow(/to differ/);
  });

  it("toHaveTransferred compares the bytes moved and shows the first difference", () => {
    const t = testMachine({ remapping: "off" });
    const device = t.plug(new ScriptableDevice(), { busMaster: true });
    const data = testBytes(300, 2);
    t.writePhysical(0x10_0000, data);
    device.onDoorbell([{ op: "read", address: 0x10_0000, length: 300 }, { op: "complete" }]);
    t.mmioWrite(device, ScriptableRegister.doorbell, ScriptableCommand.toDevice);
    t.runUntilIdle();
    expect(device).toHaveTransferred(data);
    expect(device).toHaveTransferred(data, { access: "read", request: 0 });
    expect(device).toHaveTransferred(new Uint8Array(0), { access: "write" });
    const wrong = data.slice();
    wrong[17] ^= 0xff;
    expect(() => expect(device).toHaveTransferred(wrong)).toThrow(/300 bytes, first difference at byte 17/);
    expect(() => expect(device).not.toHaveTransferred(data)).toThrow(/not to have transferred/);
  });

  it("toHaveNoIommuFaults and toHaveIommuFaults list faults with requester, address, access and reason", () => {
    const { t, device } = strayRead(0x9000);
    const fault = { requesterId: device.requesterId, address: 0x9000, access: "read" as const };
    expect(t).toHaveIommuFaults([fault]);
    expect(t).toHaveIommuFaults([{ address: 0x9000 }]);
    expect(() => expect(t).toHaveNoIommuFaults()).toThrow(
      /expected no IOMMU faults, saw 1:\n.*read at 0x9000: reason \d+ \(/,
    );
    expect(() => expect(t).toHaveIommuFaults([])).toThrow(/saw:\n.*0x9000/);
    expect(() => expect(t).toHaveIommuFaults([{ ...fault, reason: FaultReason.WriteNotPermitted }])).toThrow(
      /reason 5 \(PTE Write access is not set\)/,
    );
    expect(testMachine()).toHaveNoIommuFaults();
  });

  it("toHaveNoBounces and toHaveBounced count bounce copies", () => {
    const t = testMachine({ remapping: "off" });
    expect(t).toHaveNoBounces();
    t.bounces.push({
      adapter: 1,
      requesterId: 8,
      direction: "out",
      logicalAddress: 0x5000,
      bytes: PAGE_SIZE,
    });
    expect(t).toHaveBounced(1);
    expect(() => expect(t).toHaveNoBounces()).toThrow(/adapter 1 out 4096 bytes at logical 0x5000/);
    expect(() => expect(t).toHaveBounced(2)).toThrow(/expected 2 bounce copies, saw 1/);
  });

  it("toThrowBugCheck matches the code and the parameters given", () => {
    const stop = (): never => {
      throw new BugCheck(DRIVER_VERIFIER_DMA_VIOLATION, [0x13, 1, 0, 2], "wrong IRQL");
    };
    expect(stop).toThrowBugCheck(DRIVER_VERIFIER_DMA_VIOLATION);
    expect(stop).toThrowBugCheck(DRIVER_VERIFIER_DMA_VIOLATION, [0x13, undefined, 0]);
    expect(() => expect(stop).toThrowBugCheck(DRIVER_VERIFIER_DMA_VIOLATION, [0x18])).toThrow(
      /expected BugCheck 0xe6 \(0x18, \*, \*, \*\), got \*\*\* STOP 0xe6/,
    );
    expect(() => expect(() => {}).toThrowBugCheck(IRQL_NOT_LESS_OR_EQUAL)).toThrow(/nothing was thrown/);
    expect(() => expect(() => JSON.parse("{")).toThrowBugCheck(0xa)).toThrow(/but got SyntaxError/);
    expect(new BugCheck(0xa, [1, 2, 3, 4], "x")).toThrowBugCheck(0xa, [1, 2, 3, 4]);
  });

  it("toBeUnchanged lists the frames that changed and their owners", () => {
    const t = testMachine();
    const buffer = t.buffer(16, { minAddress: 4 * GiB });
    const snapshot = t.snapshot();
    expect(snapshot).toBeUnchanged();
    buffer.write(new Uint8Array([7]));
    expect(() => expect(snapshot).toBeUnchanged()).toThrow(
      /1 did:\n\s+frame 0x[0-9a-f]+ \(owner test-buffer:1\)/,
    );
  });

  it("says what it expects when given the wrong subject", () => {
    expect(() => expect("abc").toEqualBytes(new Uint8Array(3))).toThrow(/expects a Uint8Array/);
    expect(() => expect({}).toHaveTransferred(new Uint8Array(1))).toThrow(/expects a ScriptableDevice/);
    expect(() => expect(42).toHaveNoIommuFaults()).toThrow(/expects a TestMachine/);
    expect(() => expect([]).toBeUnchanged()).toThrow(/expects a MemorySnapshot/);
  });
});
