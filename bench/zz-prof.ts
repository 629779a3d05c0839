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
import { throughput } from "./measure.js";

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
const us = (t: number) => ((65536 / t) * 1e6).toFixed(2) + " us";
console.log(
  "map+flush",
  us(
    throughput(
      () => {
        ops.MapTransfer(Adapter!, mdl, base, va, 65536, true);
        ops.FlushAdapterBuffers(Adapter!, mdl, base, va, 65536, true);
      },
      65536,
      500,
    ),
  ),
);
console.log("device fetch", us(throughput(() => d.fetch(r.LogicalAddress), 65536, 500)));
const mem = m.memory;
const tmp = new Uint8Array(4096);
console.log(
  "16 memory.read 4K",
  us(
    throughput(
      () => {
        for (let i = 0; i < 16; i++) mem.read(pfns[i]! * 4096, tmp);
      },
      65536,
      500,
    ),
  ),
);
const buf = Buffer.alloc(65536 * 4),
  dst = Buffer.alloc(65536);
console.log(
  "16 buffer copies",
  us(
    throughput(
      () => {
        for (let i = 0; i < 16; i++) buf.copy(dst, i * 4096, i * 8192, i * 8192 + 4096);
      },
      65536,
      500,
    ),
  ),
);
console.log(
  "16 u8 set",
  us(
    throughput(
      () => {
        for (let i = 0; i < 16; i++) dst.set(buf.subarray(i * 8192, i * 8192 + 4096), i * 4096);
      },
      65536,
      500,
    ),
  ),
);
const t0 = performance.now();
for (let i = 0; i < 20000; i++) {
  ops.MapTransfer(Adapter!, mdl, base, va, 65536, true);
  ops.FlushAdapterBuffers(Adapter!, mdl, base, va, 65536, true);
}
console.log("loop", (((performance.now() - t0) / 20000) * 1000).toFixed(2), "us");
