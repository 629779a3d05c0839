import "reflect-metadata";
import { Hal } from "../src/hal/hal.js";
import {
  DEVICE_DESCRIPTION_VERSION2,
  PCIBus,
  zeroedDeviceDescription,
} from "../src/hal/wdm/device-description.js";
import { DeallocateObjectKeepRegisters } from "../src/hal/wdm/io-allocation-action.js";
import { Machine } from "../src/machine/machine.js";
import { KernelMemory } from "../src/platform/kernel-memory.js";
import { MemoryManager } from "../src/platform/memory-manager.js";
import { GiB } from "../src/platform/page.js";
import { PciDevice } from "../src/platform/pci-device.js";

class D extends PciDevice {
  buf = new Uint8Array(65536);
  constructor() {
    super({ name: "d", vendorId: 1, deviceId: 1, classCode: 0 }, { barSize: 4096 });
  }
  fetch(a: number) {
    this.port.read(a, this.buf);
  }
  protected registerValue() {
    return 0;
  }
  protected onRegisterWrite() {}
}
const m = new Machine({ remapping: "off", memory: 8 * GiB });
const d = new D();
const rid = m.pci.attach(d, { busMaster: true });
const pdo = {
  DriverObject: undefined,
  DeviceExtension: {},
  CurrentIrp: undefined,
  AlignmentRequirement: 0,
  Flags: 0,
  NextDevice: undefined,
  AttachedDevice: undefined,
  DeviceObjectExtension: { requesterId: rid, external: false },
};
const { Adapter } = m
  .get(Hal)
  .getDmaAdapter(pdo, {
    ...zeroedDeviceDescription(),
    Version: DEVICE_DESCRIPTION_VERSION2,
    Master: true,
    ScatterGather: true,
    Dma32BitAddresses: true,
    InterfaceType: PCIBus,
    MaximumLength: 65536,
  });
const k = m.get(KernelMemory),
  mm = m.get(MemoryManager),
  o = m.frames.registerOwner("b");
const pfns = m.frames.allocate(16, { owner: o, minAddress: 4 * GiB });
const va = k.mapPages(pfns, o);
k.write(va, new Uint8Array(65536).fill(7));
const mdl = mm.allocateMdl(va, 65536);
mm.buildForNonPagedPool(mdl);
const ops = Adapter!.DmaOperations;
let base: any;
m.scheduler.runAtIrql(2, () =>
  ops.AllocateAdapterChannel(
    Adapter!,
    pdo,
    16,
    (_a, _b, g) => {
      base = g;
      return DeallocateObjectKeepRegisters;
    },
    undefined,
  ),
);
const r = ops.MapTransfer(Adapter!, mdl, base, va, 65536, true);
ops.FlushAdapterBuffers(Adapter!, mdl, base, va, 65536, true);
const mem = m.memory;
const tmp = new Uint8Array(4096);
const buf = Buffer.alloc(65536 * 4),
  dst = Buffer.alloc(65536),
  dev = Buffer.alloc(65536);
const srcs = Array.from({ length: 16 }, (_, i) => ((i * 7) % 64) * 4096);
function t(f: () => void, n = 20000) {
  for (let i = 0; i < 500; i++) f();
  const t0 = performance.now();
  for (let i = 0; i < n; i++) f();
  return ((performance.now() - t0) / n) * 1e3;
}
for (let rep = 0; rep < 3; rep++) {
  const base2 = t(() => {
    for (let i = 0; i < 16; i++) buf.copy(dst, i * 4096, srcs[i]!, srcs[i]! + 4096);
    for (let i = 0; i < 16; i++) dst.copy(dev, i * 4096, i * 4096, (i + 1) * 4096);
  });
  const mapOnly = t(() => {
    ops.MapTransfer(Adapter!, mdl, base, va, 65536, true);
    ops.FlushAdapterBuffers(Adapter!, mdl, base, va, 65536, true);
  });
  const fetch = t(() => d.fetch(r.LogicalAddress));
  const reads = t(() => {
    for (let i = 0; i < 16; i++) mem.read(pfns[i]! * 4096, tmp);
  });
  const big = t(() => mem.read(r.LogicalAddress, dev));
  console.log(
    `baseline ${base2.toFixed(2)}  map+flush ${mapOnly.toFixed(2)}  fetch ${fetch.toFixed(2)}  16 mem.read ${reads.toFixed(2)}  one 64K mem.read ${big.toFixed(2)} us`,
  );
}
const one = mm.allocateMdl(va, 4096);
mm.buildForNonPagedPool(one);
for (let rep = 0; rep < 3; rep++) {
  const small = t(() => {
    ops.MapTransfer(Adapter!, one, base, va, 4096, true);
    ops.FlushAdapterBuffers(Adapter!, one, base, va, 4096, true);
  }, 200000);
  const oneRead = t(() => mem.read(pfns[0]! * 4096, tmp), 200000);
  console.log(`1-page map+flush ${small.toFixed(3)} us, 1 mem.read ${oneRead.toFixed(3)}`);
}
