/**
 * HAL benchmark: the cost of the no-remapping bounce path against the copies it cannot avoid.
 *
 * bounce_copy_ratio_64k: a 32-bit scatter/gather bus master reads 64 KiB that the CPU side wrote
 * into a buffer on scattered frames above 4 GiB, with remapping off: MapTransfer copies the 16
 * pages into bounce pages below 4 GiB, the device reads them through its DmaPort, then
 * FlushAdapterBuffers ends the transfer (packet-based DMA, registers kept across transfers). The
 * figure is its throughput divided by that of the two page-by-page Buffer copies bouncing needs
 * at least (driver pages -> bounce pages -> device). 1.0 would mean the HAL, the port and the
 * bookkeeping cost nothing; the goal is >= 0.7.
 *
 * bounce_copy_ratio_64k_sglist: the same through BuildScatterGatherList / PutScatterGatherList
 * (a list per transfer, in a buffer the driver preallocated as KMDF does), against the same
 * baseline.
 */
import "reflect-metadata";
import { Hal } from "../src/hal/hal.js";
import {
  DEVICE_DESCRIPTION_VERSION2,
  PCIBus,
  zeroedDeviceDescription,
} from "../src/hal/wdm/device-description.js";
import { type DEVICE_OBJECT } from "../src/hal/wdm/device-object.js";
import type { DMA_ADAPTER } from "../src/hal/wdm/dma-operations.js";
import type { MAP_REGISTER_BASE } from "../src/hal/wdm/dma-v3-types.js";
import { DeallocateObjectKeepRegisters } from "../src/hal/wdm/io-allocation-action.js";
import { DISPATCH_LEVEL } from "../src/hal/wdm/irql.js";
import type { SCATTER_GATHER_LIST } from "../src/hal/wdm/scatter-gather-list.js";
import { Machine } from "../src/machine/machine.js";
import { KernelMemory } from "../src/platform/kernel-memory.js";
import { MemoryManager } from "../src/platform/memory-manager.js";
import { GiB, KiB, PAGE_SIZE } from "../src/platform/page.js";
import { PciDevice } from "../src/platform/pci-device.js";
import { medianOf, throughput } from "./measure.js";

const BYTES = 64 * KiB;
const PAGES = BYTES / PAGE_SIZE;
const RUNS = 7;

/** The device side: one DMA read of the whole transfer into its own buffer. */
class ReadingDevice extends PciDevice {
  readonly received = new Uint8Array(BYTES);

  constructor() {
    super(
      { name: "bench bus master", vendorId: 0x1af4, deviceId: 0x10fd, classCode: 0xff0000 },
      { barSize: 4096 },
    );
  }

  fetch(busAddress: number, length: number): void {
    const result = this.port.read(busAddress, this.received.subarray(0, length));
    if (!result.ok) throw new Error(`DMA read failed: ${result.kind}`);
  }

  protected registerValue(): number {
    return 0;
  }

  protected onRegisterWrite(): void {}
}

interface Rig {
  readonly machine: Machine;
  readonly adapter: DMA_ADAPTER;
  readonly pdo: DEVICE_OBJECT;
  readonly device: ReadingDevice;
  readonly mdl: ReturnType<MemoryManager["allocateMdl"]>;
  readonly va: number;
  /** A nonpaged buffer for BuildScatterGatherList. */
  readonly listBuffer: number;
}

function rig(): Rig {
  const machine = new Machine({ remapping: "off", memory: 8 * GiB });
  const device = new ReadingDevice();
  const rid = machine.pci.attach(device, { busMaster: true });
  const pdo: DEVICE_OBJECT = {
    DriverObject: undefined,
    DeviceExtension: {},
    CurrentIrp: undefined,
    AlignmentRequirement: 0,
    Flags: 0,
    NextDevice: undefined,
    AttachedDevice: undefined,
    DeviceObjectExtension: { requesterId: rid, external: false },
  };
  const { Adapter } = machine.get(Hal).getDmaAdapter(pdo, {
    ...zeroedDeviceDescription(),
    Version: DEVICE_DESCRIPTION_VERSION2,
    Master: true,
    ScatterGather: true,
    Dma32BitAddresses: true,
    InterfaceType: PCIBus,
    MaximumLength: BYTES,
  });
  if (Adapter === undefined) throw new Error("IoGetDmaAdapter returned NULL");
  const kernel = machine.get(KernelMemory);
  const mm = machine.get(MemoryManager);
  const owner = machine.frames.registerOwner("bench");
  const listBuffer = kernel.allocateNonPaged(4096, { owner, tag: "Sgl " });
  const pfns = machine.frames.allocate(PAGES, { owner, minAddress: 4 * GiB });
  const va = kernel.mapPages(pfns, owner);
  const data = new Uint8Array(BYTES);
  for (let i = 0; i < BYTES; i += 4) data[i] = i & 0xff;
  kernel.write(va, data);
  const mdl = mm.allocateMdl(va, BYTES);
  mm.buildForNonPagedPool(mdl);
  return { machine, adapter: Adapter, pdo, device, mdl, va, listBuffer };
}

/** Packet-based DMA: registers kept across transfers, MapTransfer + device read + flush. */
function packetTransfer(): () => void {
  const { machine, adapter, pdo, device, mdl, va } = rig();
  const ops = adapter.DmaOperations;
  let base: MAP_REGISTER_BASE | undefined;
  machine.scheduler.runAtIrql(DISPATCH_LEVEL, () =>
    ops.AllocateAdapterChannel(
      adapter,
      pdo,
      PAGES,
      (_device, _irp, granted) => {
        base = granted;
        return DeallocateObjectKeepRegisters;
      },
      undefined,
    ),
  );
  return () => {
    const mapped = ops.MapTransfer(adapter, mdl, base, va, BYTES, true);
    if (mapped.Length !== BYTES) throw new Error("the bounce path split the transfer");
    device.fetch(mapped.LogicalAddress, BYTES);
    ops.FlushAdapterBuffers(adapter, mdl, base, va, BYTES, true);
  };
}

/** Scatter/gather DMA: a list per transfer, read element by element, then put back. */
function listTransfer(): () => void {
  const { machine, adapter, pdo, device, mdl, va, listBuffer } = rig();
  const ops = adapter.DmaOperations;
  const read = (_device: DEVICE_OBJECT, _irp: unknown, list: SCATTER_GATHER_LIST): void => {
    for (const element of list.Elements) device.fetch(element.Address, element.Length);
    ops.PutScatterGatherList(adapter, list, true);
  };
  return () =>
    machine.scheduler.runAtIrql(DISPATCH_LEVEL, () => {
      ops.BuildScatterGatherList(adapter, pdo, mdl, va, BYTES, read, undefined, true, listBuffer, 4096);
    });
}

/** The floor: two page-by-page Buffer copies, scattered pages -> bounce pages -> device buffer. */
function baselineTransfer(): () => void {
  const memory = Buffer.alloc(PAGES * 4 * PAGE_SIZE);
  const sources = Array.from({ length: PAGES }, (_, i) => ((i * 7) % (PAGES * 4)) * PAGE_SIZE);
  const bounce = Buffer.alloc(BYTES);
  const device = Buffer.alloc(BYTES);
  return () => {
    for (let i = 0; i < PAGES; i++) memory.copy(bounce, i * PAGE_SIZE, sources[i]!, sources[i]! + PAGE_SIZE);
    for (let i = 0; i < PAGES; i++) bounce.copy(device, i * PAGE_SIZE, i * PAGE_SIZE, (i + 1) * PAGE_SIZE);
  };
}

/**
 * Median of `RUNS` ratios, each measured back to back with its own baseline, so that a busy
 * machine slows both sides of a ratio alike.
 */
function ratio(transfer: () => void, baseline: () => void): number {
  return medianOf(RUNS, () => throughput(transfer, BYTES) / throughput(baseline, BYTES));
}

export async function run(): Promise<Record<string, number>> {
  const baseline = baselineTransfer();
  const packet = packetTransfer();
  const list = listTransfer();
  return {
    bounce_copy_ratio_64k: ratio(packet, baseline),
    bounce_copy_ratio_64k_sglist: ratio(list, baseline),
    bounce_path_mib_per_s: medianOf(RUNS, () => throughput(packet, BYTES)) / 2 ** 20,
  };
}
