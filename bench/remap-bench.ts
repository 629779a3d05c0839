/**
 * Remapping-path benchmarks: GetScatterGatherList + PutScatterGatherList pairs per second through
 * the DMA_OPERATIONS of an adapter from IoGetDmaAdapter (the execution routine included), at
 * DISPATCH_LEVEL as a driver's DPC would issue them. Each figure is the median of several runs.
 *
 * - sgl_pairs_per_sec_1page_lazy: one page, lazy policy (flush queue: one domain-selective
 *   invalidation per 256 unmaps).
 * - sgl_pairs_per_sec_1page_strict: one page, strict policy (a page-selective invalidation at
 *   every Put).
 * - sgl_pairs_per_sec_16page_fragmented_strict: 16 pages on scattered frames, strict: each list
 *   is ONE element over a 16-page IOVA window.
 */
import "reflect-metadata";
import { Hal } from "../src/hal/hal.js";
import { type DEVICE_DESCRIPTION, DEVICE_DESCRIPTION_VERSION2, PCIBus, zeroedDeviceDescription } from "../src/hal/wdm/device-description.js";
import type { DEVICE_OBJECT } from "../src/hal/wdm/device-object.js";
import { DISPATCH_LEVEL } from "../src/hal/wdm/irql.js";
import type { SCATTER_GATHER_LIST } from "../src/hal/wdm/scatter-gather-list.js";
import { Machine } from "../src/machine/machine.js";
import { FrameAllocator } from "../src/platform/frame-allocator.js";
import { KernelMemory } from "../src/platform/kernel-memory.js";
import { MemoryManager } from "../src/platform/memory-manager.js";
import { MiB, PAGE_SIZE } from "../src/platform/page.js";
import { PciDevice } from "../src/platform/pci-device.js";
import { medianOf, throughput } from "./measure.js";

const RUNS = 5;
const BATCH = 5_000;

/** A bus master that is only plugged in: the benchmark measures the driver side. */
class BenchDevice extends PciDevice {
  constructor() {
    super({ name: "bench-nic", vendorId: 0x8086, deviceId: 0x10d3, classCode: 0x020000 }, { barSize: 4096 });
  }

  protected registerValue(): number {
    return 0;
  }

  protected onRegisterWrite(): void {}
}

function pairsPerSecond(remapping: "strict" | "lazy", pages: number): number {
  const machine = new Machine({ remapping });
  const device = new BenchDevice();
  machine.pci.attach(device, { busMaster: true });
  const pdo: DEVICE_OBJECT = {
    DriverObject: undefined,
    DeviceExtension: {},
    CurrentIrp: undefined,
    AlignmentRequirement: 0,
    Flags: 0,
    NextDevice: undefined,
    AttachedDevice: undefined,
    DeviceObjectExtension: { requesterId: device.requesterId, external: false },
  };
  const description: DEVICE_DESCRIPTION = {
    ...zeroedDeviceDescription(),
    Version: DEVICE_DESCRIPTION_VERSION2,
    Master: true,
    ScatterGather: true,
    Dma64BitAddresses: true,
    InterfaceType: PCIBus,
    MaximumLength: MiB,
  };
  const adapter = machine.get(Hal).getDmaAdapter(pdo, description).Adapter!;
  const ops = adapter.DmaOperations;
  const length = pages * PAGE_SIZE;
  const owner = machine.get(FrameAllocator).registerOwner("bench");
  const va = machine.get(KernelMemory).allocateNonPaged(length, { owner });
  const mm = machine.get(MemoryManager);
  const mdl = mm.allocateMdl(va, length);
  mm.buildForNonPagedPool(mdl);
  if (pages > 1 && mdl.pfns.every((pfn, i) => i === 0 || pfn === mdl.pfns[i - 1]! + 1)) {
    throw new Error("the benchmark buffer should be physically fragmented");
  }

  let list: SCATTER_GATHER_LIST | undefined;
  const executionRoutine = (_device: DEVICE_OBJECT, _irp: unknown, sgl: SCATTER_GATHER_LIST): void => {
    list = sgl;
  };
  const pairs = (): void => {
    for (let i = 0; i < BATCH; i++) {
      ops.GetScatterGatherList(adapter, pdo, mdl, va, length, executionRoutine, undefined, true);
      ops.PutScatterGatherList(adapter, list!, true);
    }
  };
  machine.scheduler.runAtIrql(DISPATCH_LEVEL, pairs);
  if (list?.NumberOfElements !== 1) throw new Error(`expected one element, got ${list?.NumberOfElements}`);
  return throughput(() => machine.scheduler.runAtIrql(DISPATCH_LEVEL, pairs), BATCH);
}

export async function run(): Promise<Record<string, number>> {
  return {
    sgl_pairs_per_sec_1page_lazy: medianOf(RUNS, () => pairsPerSecond("lazy", 1)),
    sgl_pairs_per_sec_1page_strict: medianOf(RUNS, () => pairsPerSecond("strict", 1)),
    sgl_pairs_per_sec_16page_fragmented_strict: medianOf(RUNS, () => pairsPerSecond("strict", 16)),
  };
}
