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
  constructor() {
    super({ name: "d", vendorId: 1, deviceId: 1, classCode: 0 }, { barSize: 4096 });
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
const one = mm.allocateMdl(va, 64);
mm.buildForNonPagedPool(one);
const t0 = performance.now();
for (let i = 0; i < 3e6; i++) {
  ops.MapTransfer(Adapter!, one, base, va, 64, true);
  ops.FlushAdapterBuffers(Adapter!, one, base, va, 64, true);
}
console.log((((performance.now() - t0) / 3e6) * 1e3).toFixed(3), "us");
