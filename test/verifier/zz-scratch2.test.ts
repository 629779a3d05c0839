import { describe, expect, it } from "vitest";
import { VerifierRig } from "./verifier-rig.js";
import { CorrectDriver } from "./drivers/correct-driver.js";
import { testPattern } from "./dma-test-device.js";

describe("scratch2", () => {
  it.each(["off", "passthrough", "strict", "lazy"] as const)("correct %s", (remapping) => {
    const rig = new VerifierRig(CorrectDriver, { machine: { remapping }, verifier: { mode: "log" } });
    const buffer = rig.poolBuffer(10000);
    const irp = rig.read(buffer);
    expect(irp.IoStatus.Status).toBe(0);
    expect(rig.bytes(buffer)).toEqual(testPattern(0x40, 10000));
    const w = rig.write(buffer);
    expect(w.IoStatus.Status).toBe(0);
    rig.remove();
    expect(rig.verifier!.violations).toEqual([]);
    expect(rig.hal.resources()).toMatchObject({ adaptersOpen: 0, mapRegistersGranted: 0, commonBuffers: 0 });
  });
});
