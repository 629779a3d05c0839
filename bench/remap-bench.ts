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
 * - strategy_pairs_per_sec_*: the same three workloads on RemapMapping alone (allocate registers,
 *   MapTransfer, FlushAdapterBuffers, free registers), to tell the strategy's share of a pair from
 *   the dispatcher's (list memory, wait queues, IRQL checks).
 */
import "reflect-metadata";
import type { AdapterObject } from "../src/hal/adapter-object.js";
import { Hal } from "../src/hal/hal.js";
import {
  type DEVICE_DESCRIPTION,
  DEVICE_DESCRIPTION_VERSION2,
  PCIBus,
  zeroedDeviceDescription,
} from "../src/hal/wdm/device-description.js";
import type { DEVICE_OBJECT } from "../src/hal/wdm/device-object.js";
import { DISPATCH_LEVEL } from "../src/hal/wdm/irql.js";
import type { SCATTER_GATHER_LIST } from "../src/hal/wdm/scatter-gather-list.js";
import { Machine } from "../src/machine/machine.js";
import { FrameAllocator } from "../src/platform/frame-allocator.js";
import { KernelMemory } from "../src/platform/kernel-memory.js";
import type { Mdl } from "../src/platform/mdl.js";
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

interface Setup {
  readonly machine: Machine;
  readonly adapter: AdapterObject;
  readonly pdo: DEVICE_OBJECT;
  readonly mdl: Mdl;
  readonly va: number;
  readonly length: number;
}

function setUp(remapping: "strict" | "lazy", pages: number): Setup {
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
  const adapter = machine.get(Hal).getDmaAdapter(pdo, description).Adapter as AdapterObject;
  const length = pages * PAGE_SIZE;
  const owner = machine.get(FrameAllocator).registerOwner("bench");
  const va = machine.get(KernelMemory).allocateNonPaged(length, { owner });
  const mm = machine.get(MemoryManager);
  const mdl = mm.allocateMdl(va, length);
  mm.buildForNonPagedPool(mdl);
  if (pages > 1 && mdl.pfns.every((pfn, i) => i === 0 || pfn === mdl.pfns[i - 1]! + 1)) {
    throw new Error("the benchmark buffer should be physically fragmented");
  }
  return { machine, adapter, pdo, mdl, va, length };
}

/** GetScatterGatherList + PutScatterGatherList through the adapter's DMA_OPERATIONS. */
function listPairsPerSecond(remapping: "strict" | "lazy", pages: number): number {
  const { machine, adapter, pdo, mdl, va, length } = setUp(remapping, pages);
  const ops = adapter.DmaOperations;

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

/** The strategy's part of a pair alone: what GetScatterGatherList and Put ask of RemapMapping. */
function strategyPairsPerSecond(remapping: "strict" | "lazy", pages: number): number {
  const { adapter, mdl, va, length } = setUp(remapping, pages);
  const strategy = adapter.strategy;
  return throughput(() => {
    for (let i = 0; i < BATCH; i++) {
      const file = strategy.tryAllocateMapRegisters(adapter, pages)!;
      strategy.mapTransfer(adapter, file, mdl, va, length, true);
      strategy.flushAdapterBuffers(adapter, file, mdl, va, length, true);
      strategy.freeMapRegisters(file);
    }
  }, BATCH);
}

export async function run(): Promise<Record<string, number>> {
  return {
    sgl_pairs_per_sec_1page_lazy: medianOf(RUNS, () => listPairsPerSecond("lazy", 1)),
    sgl_pairs_per_sec_1page_strict: medianOf(RUNS, () => listPairsPerSecond("strict", 1)),
    sgl_pairs_per_sec_16page_fragmented_strict: medianOf(RUNS, () => listPairsPerSecond("strict", 16)),
    strategy_pairs_per_sec_1page_lazy: medianOf(RUNS, () => strategyPairsPerSecond("lazy", 1)),
    strategy_pairs_per_sec_1page_strict: medianOf(RUNS, () => strategyPairsPerSecond("strict", 1)),
    strategy_pairs_per_sec_16page_fragmented_strict: medianOf(RUNS, () =>
      strategyPairsPerSecond("strict", 16),
    ),
  };
}
