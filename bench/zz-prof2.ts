import "reflect-metadata";
import { Machine } from "../src/machine/machine.js";
import { CpuMemory } from "../src/platform/cpu-memory.js";
import { checkAddress, GiB } from "../src/platform/page.js";

const m = new Machine({ remapping: "off", memory: 8 * GiB });
const o = m.frames.registerOwner("b");
const pfns = m.frames.allocate(16, { owner: o, minAddress: 4 * GiB });
const mem = m.memory;
const cpu = m.get(CpuMemory);
for (const p of pfns) mem.write(p * 4096, new Uint8Array(4096).fill(1));
const tmp = new Uint8Array(4096);
function t(name: string, f: () => void, n = 200000) {
  for (let i = 0; i < 1000; i++) f();
  const t0 = performance.now();
  for (let i = 0; i < n; i++) f();
  console.log(name, (((performance.now() - t0) / n) * 1e3).toFixed(1), "ns");
}
t("memory.read 4K", () => mem.read(pfns[3]! * 4096, tmp));
t("cpu.read 4K", () => cpu.read(pfns[3]! * 4096, tmp));
t("u8 set 4K", () => tmp.set(tmp.subarray(0, 4096), 0));
let x = 0;
t(
  "checkAddress",
  () => {
    x += checkAddress(pfns[3]! * 4096, "physical address");
  },
  2000000,
);
t(
  "isRam",
  () => {
    x += mem.isRam(pfns[3]! * 4096, 4096) ? 1 : 0;
  },
  2000000,
);
