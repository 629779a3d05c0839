/**
 * The DMA choke point's cost: device reads and writes through a DmaPort with remapping on (IOTLB
 * warm), divided by the host's own limit for the same memory (Buffer.copy of the same frames).
 * Keys: port_copy_ratio_64k_scattered, port_copy_ratio_1m_superpage, port_copy_ratio_4k.
 */
import { IoPermission } from "../src/iommu/io-page-table.js";
import { Machine } from "../src/machine/machine.js";
import type { DmaPort } from "../src/platform/dma-port.js";
import { LARGE_PAGE_SIZE, PAGE_SIZE } from "../src/platform/page.js";
import { PciDevice } from "../src/platform/pci-device.js";
import { medianOf, throughput } from "./measure.js";

class BenchDevice extends PciDevice {
  constructor() {
    super(
      { name: "bench bus master", vendorId: 0x1234, deviceId: 0x0001, classCode: 0xff0000 },
      { barSize: PAGE_SIZE },
    );
  }
  get dma(): DmaPort {
    return this.port;
  }
  protected registerValue(): number {
    return 0;
  }
  protected onRegisterWrite(): void {}
}

const RUNS = 5;
const IOVA_BASE = 0x40000000;

function buffers(frames: readonly number[], machine: Machine): Buffer[] {
  return frames.map((pfn) => {
    const view = machine.memory.frame(pfn);
    return Buffer.from(view.buffer, view.byteOffset, view.byteLength);
  });
}

export async function run(): Promise<Record<string, number>> {
  const machine = new Machine({ remapping: "strict", seed: 7 });
  const device = new BenchDevice();
  const rid = machine.pci.attach(device, { busMaster: true });
  const port = device.dma;
  const domain = machine.iommu.createDomain();
  machine.iommu.attach(rid, domain);
  const owner = machine.frames.registerOwner("bench");

  // 64 KiB on 16 scattered frames, mapped at one contiguous IOVA range.
  const scattered = machine.frames.allocate(16, { owner, zone: "any" });
  scattered.forEach((pfn, i) => {
    machine.memory.fill(pfn * PAGE_SIZE, PAGE_SIZE, i);
    domain.map(IOVA_BASE + i * PAGE_SIZE, pfn * PAGE_SIZE, PAGE_SIZE, IoPermission.ReadWrite);
  });
  const source64k = Buffer.alloc(16 * PAGE_SIZE, 0x5a);
  const sink64k = Buffer.alloc(16 * PAGE_SIZE);
  const frameBuffers = buffers(scattered, machine);
  const portScattered = (): void => {
    port.write(IOVA_BASE, source64k);
    port.read(IOVA_BASE, sink64k);
  };
  const hostScattered = (): void => {
    for (let i = 0; i < 16; i++) source64k.copy(frameBuffers[i]!, 0, i * PAGE_SIZE, (i + 1) * PAGE_SIZE);
    for (let i = 0; i < 16; i++) frameBuffers[i]!.copy(sink64k, i * PAGE_SIZE);
  };

  // 1 MiB inside a 2 MiB superpage on contiguous frames (touched in one write: one host run).
  const huge = machine.frames.allocate(512, { owner, contiguous: true, alignment: 512 });
  const hugeBase = huge[0]! * PAGE_SIZE;
  machine.memory.fill(hugeBase, LARGE_PAGE_SIZE, 1);
  const hugeIova = 0x80000000;
  domain.map(hugeIova, hugeBase, LARGE_PAGE_SIZE, IoPermission.ReadWrite);
  const source1m = Buffer.alloc(1 << 20, 0x33);
  const sink1m = Buffer.alloc(1 << 20);
  const hostView = machine.memory.frame(huge[0]!);
  const host1m = Buffer.from(hostView.buffer, hostView.byteOffset, 1 << 20);
  const portSuperpage = (): void => {
    port.write(hugeIova, source1m);
    port.read(hugeIova, sink1m);
  };
  const hostSuperpage = (): void => {
    source1m.copy(host1m);
    host1m.copy(sink1m);
  };

  // One 4 KiB page.
  const source4k = source64k.subarray(0, PAGE_SIZE);
  const sink4k = sink64k.subarray(0, PAGE_SIZE);
  const page = frameBuffers[0]!;
  const port4k = (): void => {
    port.write(IOVA_BASE, source4k);
    port.read(IOVA_BASE, sink4k);
  };
  const host4k = (): void => {
    source4k.copy(page);
    page.copy(sink4k);
  };

  const ratio = (viaPort: () => void, host: () => void, batch: number): number =>
    medianOf(RUNS, () => {
      const repeat = (fn: () => void) => (): void => {
        for (let i = 0; i < batch; i++) fn();
      };
      return throughput(repeat(viaPort), batch) / throughput(repeat(host), batch);
    });

  const figures = {
    port_copy_ratio_64k_scattered: ratio(portScattered, hostScattered, 64),
    port_copy_ratio_1m_superpage: ratio(portSuperpage, hostSuperpage, 4),
    port_copy_ratio_4k: ratio(port4k, host4k, 1024),
  };
  if (machine.counters.get("iommu.faults") !== 0) throw new Error("benchmark DMA faulted");
  return figures;
}
