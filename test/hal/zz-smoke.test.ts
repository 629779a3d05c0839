import { describe, expect, it } from "vitest";
import { DeallocateObjectKeepRegisters } from "../../src/hal/wdm/io-allocation-action.js";
import { HalRig, pattern, sameBytes } from "./support/hal-rig.js";

describe("smoke", () => {
  it.each(["off", "passthrough", "strict", "lazy"] as const)("sg list round trip %s", (mode) => {
    const rig = new HalRig({ remapping: mode });
    const { adapter, ops, device, pdo } = rig.open({ Dma64BitAddresses: false, Dma32BitAddresses: true });
    const data = pattern(20000, 3);
    const buf = rig.buffer(20000, data);
    let got: Uint8Array | undefined;
    rig.atDispatch(() => {
      const status = ops.GetScatterGatherList(
        adapter,
        pdo,
        buf.mdl,
        buf.va,
        20000,
        (_d, _i, sgl) => {
          const parts = sgl.Elements.map((e) => device.read(e.Address, e.Length).bytes);
          got = Buffer.concat(parts);
          ops.PutScatterGatherList(adapter, sgl, true);
        },
        undefined,
        true,
      );
      expect(status).toBe(0);
    });
    expect(sameBytes(got!, data)).toBe(true);
    expect(rig.hal.resources()).toMatchObject({ scatterGatherLists: 0, mapRegistersGranted: 0 });
    void DeallocateObjectKeepRegisters;
  });
});
