import { expect, it } from "vitest";
import { STATUS_DEVICE_DATA_ERROR, STATUS_SUCCESS } from "../../src/ddi/index.js";
import {
  forEachMode,
  type RemappingMode,
  ScriptableDevice,
  type TestMachine,
  testBytes,
  testMachine,
} from "../../src/testing/index.js";
import sensorModule from "./drivers/sensor-module.js";

/** A machine with the sensor driver loaded and a 32-bit scriptable device without scatter/gather. */
function sensorMachine(remapping: RemappingMode): { t: TestMachine; sensor: ScriptableDevice } {
  const t = testMachine({ remapping, modules: [sensorModule] });
  const sensor = t.plug(new ScriptableDevice({ addressBits: 32, scatterGather: false }));
  t.loadDrivers();
  return { t, sensor };
}

forEachMode((mode) => {
  it("reads a block of samples into the caller's buffer", () => {
    const { t, sensor } = sensorMachine(mode);
    const samples = testBytes(3 * 4096, 7);
    sensor.load(samples);
    const buffer = t.buffer(samples.length);
    expect(t.runUntilCompleted(t.sendRead(sensor, buffer))).toEqual({
      Status: STATUS_SUCCESS,
      Information: samples.length,
    });
    expect(buffer.read()).toEqual(samples);
    expect(sensor).toHaveTransferred(samples);
    expect(t).toHaveNoIommuFaults();
  });

  it("reaches a buffer above 4 GiB: bounced without remapping, directly with it", () => {
    const { t, sensor } = sensorMachine(mode);
    const buffer = t.buffer(4096, { minAddress: 2 ** 32 });
    t.runUntilCompleted(t.sendRead(sensor, buffer));
    expect(buffer.read()).toEqual(testBytes(4096, 1));
    if (mode === "strict" || mode === "lazy") expect(t).toHaveNoBounces();
    else expect(t).toHaveBounced(1);
  });

  it("fails the read when the device reports an error", () => {
    const { t, sensor } = sensorMachine(mode);
    sensor.onNextDoorbell([{ op: "fail" }, { op: "interrupt" }]);
    expect(t.runUntilCompleted(t.sendRead(sensor, t.buffer(512))).Status).toBe(STATUS_DEVICE_DATA_ERROR);
  });
});

it("a device gone rogue is stopped by the IOMMU, and nothing else changes", () => {
  const { t, sensor } = sensorMachine("strict");
  const secret = t.buffer(64, { fill: 0x5e, maxAddress: 2 ** 32 - 1 });
  const buffer = t.buffer(512);
  const snapshot = t.snapshot({ except: [buffer] });
  sensor.onNextDoorbell([
    { op: "write", address: secret.physicalAddress(), bytes: new Uint8Array(64) },
    { op: "complete" },
    { op: "interrupt" },
  ]);
  t.runUntilCompleted(t.sendRead(sensor, buffer));
  expect(t).toHaveIommuFaults([
    { requesterId: sensor.requesterId, address: secret.physicalAddress(), access: "write" },
  ]);
  expect(snapshot).toBeUnchanged();
});
