import { it } from "vitest";
import { Machine } from "../../src/machine/machine.js";
import { IoManager } from "../../src/ddi/io-manager.js";
import { Kernel } from "../../src/ddi/kernel.js";
import { BusMaster } from "../hal/support/hal-rig.js";
import { verifierModule } from "../../src/verifier/verifier-module.js";
import { FrameAllocator } from "../../src/platform/frame-allocator.js";
it("time", () => {
  for (const v of [false, true]) {
    const t0 = performance.now();
    for (let i = 0; i < 200; i++) {
      const m = new Machine({ memory: 1024 * 1024 * 1024, remapping: "strict", mapRegisterPoolPages: 16 }, v ? [verifierModule({ mode: "log" })] : []);
      m.pci.attach(new BusMaster(), { busMaster: true });
      m.pci.attach(new BusMaster(), { busMaster: true });
      m.get(IoManager).enumerate();
      m.get(Kernel);
    }
    console.log(v, (performance.now() - t0) / 200, "ms per machine");
  }
  const m = new Machine({ memory: 1024 * 1024 * 1024 });
  const f = m.get(FrameAllocator);
  m.get(Kernel);
  const names = [];
  for (let i = 1; i < 40; i++) { try { names.push(`${i}:${f.ownerName(i)}:${f.framesOwnedBy(i)}`); } catch { break; } }
  console.log(names.join(" "));
});
