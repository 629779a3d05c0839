import { it } from "vitest";
import { HalRig, pattern } from "./support/hal-rig.js";

it("debug", () => {
  const rig = new HalRig({ remapping: "off" });
  const { adapter, ops, device, pdo } = rig.open({ Dma64BitAddresses: false, Dma32BitAddresses: true });
  const data = pattern(20000, 3);
  const buf = rig.buffer(20000, data);
  console.log(
    "pfns",
    buf.mdl.pfns.map((p) => (p * 4096).toString(16)),
    buf.mdl.byteOffset,
  );
  rig.atDispatch(() => {
    ops.GetScatterGatherList(
      adapter,
      pdo,
      buf.mdl,
      buf.va,
      20000,
      (_d, _i, sgl) => {
        console.log(sgl.Elements.map((e) => [e.Address.toString(16), e.Length]));
        let off = 0;
        for (const e of sgl.Elements) {
          const b = device.read(e.Address, e.Length).bytes;
          const exp = data.subarray(off, off + e.Length);
          let bad = -1;
          for (let i = 0; i < b.length; i++)
            if (b[i] !== exp[i]) {
              bad = i;
              break;
            }
          console.log("elem", e.Address.toString(16), "firstbad", bad);
          off += e.Length;
        }
        ops.PutScatterGatherList(adapter, sgl, true);
      },
      undefined,
      true,
    );
  });
});
