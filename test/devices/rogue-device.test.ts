import { describe, expect, it } from "vitest";
import { RogueDevice } from "../../src/devices/rogue-device.js";
import { FaultReason } from "../../src/iommu/fault-reason.js";
import { GiB, MiB, PAGE_SIZE } from "../../src/platform/page.js";
import { PlatformError } from "../../src/platform/platform-error.js";
import { makeRig, plug } from "./device-rig.js";

const SECRET = new TextEncoder().encode("-----BEGIN PRIVATE KEY----- hunter2");
const SECRET_AT = 0x12_3400;

describe("RogueDevice", () => {
  it("reads and writes any memory when remapping is off", () => {
    const rig = makeRig();
    rig.memory.write(SECRET_AT, SECRET);
    const rogue = plug(rig, new RogueDevice());
    const sweep = rogue.read(SECRET_AT - 0x400, 0x1000);
    expect(sweep.outcome).toBe("complete");
    expect(sweep.result.ok).toBe(true);
    expect(rogue.sawBytes(SECRET)).toBe(true);

    const high = rogue.write(4 * GiB + 5 * MiB, new Uint8Array([0xde, 0xad]));
    expect(high.outcome).toBe("complete");
    expect([...rig.readPhysical(4 * GiB + 5 * MiB, 2)]).toEqual([0xde, 0xad]);
    expect(rogue.log).toHaveLength(2);
  });

  it("is blocked where the IOMMU faults, and leaks nothing", () => {
    const rig = makeRig();
    rig.injectDmaError({ address: SECRET_AT, length: SECRET.length });
    rig.memory.write(SECRET_AT, SECRET);
    const rogue = plug(rig, new RogueDevice());
    const attempt = rogue.read(SECRET_AT, SECRET.length);
    expect(attempt.outcome).toBe("blocked");
    expect(attempt.result).toMatchObject({
      ok: false,
      kind: "iommu-fault",
      faultReason: FaultReason.ReadNotPermitted,
    });
    expect(attempt.bytes.every((b) => b === 0xff)).toBe(true);
    expect(rogue.sawBytes(SECRET)).toBe(false);

    const overwrite = rogue.write(SECRET_AT, new Uint8Array(SECRET.length));
    expect(overwrite.outcome).toBe("blocked");
    expect(rig.readPhysical(SECRET_AT, SECRET.length)).toEqual(SECRET);
  });

  it("gets the bytes before a faulting page and nothing after it", () => {
    const rig = makeRig();
    rig.injectDmaError({ address: 0x20_0000 + PAGE_SIZE });
    rig.memory.fill(0x20_0000, 2 * PAGE_SIZE, 0x41);
    const rogue = plug(rig, new RogueDevice());
    const access = rogue.read(0x20_0000, 2 * PAGE_SIZE);
    expect(access.outcome).toBe("partial");
    expect(access.bytesDone).toBe(PAGE_SIZE);
    expect(access.bytes.subarray(0, PAGE_SIZE).every((b) => b === 0x41)).toBe(true);
    expect(access.bytes.subarray(PAGE_SIZE).every((b) => b === 0xff)).toBe(true);
  });

  it("is blocked while its Bus Master Enable bit is clear", () => {
    const rig = makeRig();
    const rogue = new RogueDevice();
    rig.pci.attach(rogue);
    expect(rogue.read(0x1000, 16).result).toMatchObject({ ok: false, kind: "bus-master-disabled" });
  });

  it("rejects impossible requests as bad input", () => {
    const rig = makeRig();
    const rogue = plug(rig, new RogueDevice());
    expect(() => rogue.read(-1, 16)).toThrow(PlatformError);
    expect(() => rogue.read(0x1000, 1.5)).toThrow(PlatformError);
    expect(() => rogue.read(0x1000, 512 * MiB)).toThrow(PlatformError);
    expect(rogue.log).toHaveLength(0);
  });
});
