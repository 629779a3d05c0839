/**
 * Test rig of the remapping path: a machine in strict or lazy mode, a small PCI device that does
 * DMA through its port on demand, adapters opened directly on RemapMapping, and MDLs over kernel
 * buffers (scattered pool pages, or frames placed above 4 GiB).
 */
import { AdapterObject } from "../../src/hal/adapter-object.js";
import { Hal } from "../../src/hal/hal.js";
import { RemapMapping } from "../../src/hal/remap-mapping.js";
import {
  type DEVICE_DESCRIPTION,
  DEVICE_DESCRIPTION_VERSION2,
  PCIBus,
  zeroedDeviceDescription,
} from "../../src/hal/wdm/device-description.js";
import type { DEVICE_OBJECT } from "../../src/hal/wdm/device-object.js";
import type { DMA_ADAPTER, DMA_OPERATIONS } from "../../src/hal/wdm/dma-operations.js";
import { DISPATCH_LEVEL } from "../../src/hal/wdm/irql.js";
import type { Iommu } from "../../src/iommu/iommu.js";
import { Machine } from "../../src/machine/machine.js";
import type { MachineOptions } from "../../src/machine/machine-options.js";
import type { DmaResult } from "../../src/platform/dma-result.js";
import { FrameAllocator } from "../../src/platform/frame-allocator.js";
import { KernelMemory } from "../../src/platform/kernel-memory.js";
import type { Mdl } from "../../src/platform/mdl.js";
import { MemoryManager } from "../../src/platform/memory-manager.js";
import { GiB, PAGE_SIZE } from "../../src/platform/page.js";
import { PciDevice } from "../../src/platform/pci-device.js";

/** A bus master that reads and writes memory through its DmaPort when a test asks it to. */
export class ProbeDevice extends PciDevice {
  constructor(name = "probe") {
    super({ name, vendorId: 0x1af4, deviceId: 0x10ff, classCode: 0xff0000 }, { barSize: 4096 });
  }

  /** DMA read of `length` bytes at `busAddress` (memory to device). */
  read(busAddress: number, length: number): { result: DmaResult; bytes: Uint8Array } {
    const bytes = new Uint8Array(length);
    return { result: this.port.read(busAddress, bytes), bytes };
  }

  /** DMA write of `bytes` at `busAddress` (device to memory). */
  write(busAddress: number, bytes: Uint8Array): DmaResult {
    return this.port.write(busAddress, bytes);
  }

  protected registerValue(): number {
    return 0;
  }

  protected onRegisterWrite(): void {}
}

export interface AdapterRequest {
  readonly addressBits?: number;
  readonly scatterGather?: boolean;
  /** Behind an external port: untrusted. */
  readonly external?: boolean;
  readonly numberOfMapRegisters?: number;
}

export interface TestBuffer {
  readonly va: number;
  readonly mdl: Mdl;
}

export class RemapRig {
  readonly machine: Machine;
  readonly remap: RemapMapping;
  readonly kernel: KernelMemory;
  readonly mm: MemoryManager;
  readonly frames: FrameAllocator;
  readonly testOwner: number;
  #nextAdapter = 1;

  constructor(remapping: "strict" | "lazy", options: MachineOptions = {}) {
    this.machine = new Machine({ memory: 8 * GiB, ...options, remapping });
    this.remap = this.machine.get(RemapMapping);
    this.kernel = this.machine.get(KernelMemory);
    this.mm = this.machine.get(MemoryManager);
    this.frames = this.machine.frames;
    this.testOwner = this.frames.registerOwner("test");
  }

  get iommu(): Iommu {
    return this.machine.iommu;
  }

  /** Plugs a probe device in (bus master on) and returns it. */
  plug(name = "probe", slot: { bus?: number; device?: number } = {}): ProbeDevice {
    const device = new ProbeDevice(name);
    this.machine.pci.attach(device, { ...slot, busMaster: true });
    return device;
  }

  /** An adapter for `device`, opened on the remapping strategy as IoGetDmaAdapter would. */
  open(device: ProbeDevice, request: AdapterRequest = {}): AdapterObject {
    const bits = request.addressBits ?? 64;
    const pdo = deviceObject(device.requesterId, request.external ?? false);
    const adapter = new AdapterObject(
      this.#nextAdapter++,
      {} as DMA_OPERATIONS,
      pdo,
      {
        tableVersion: 3,
        master: true,
        scatterGather: request.scatterGather ?? true,
        addressBits: bits,
        addressLimit: bits >= 53 ? Number.MAX_SAFE_INTEGER : 2 ** bits - 1,
        maximumLength: 1024 * 1024,
        numberOfMapRegisters: request.numberOfMapRegisters ?? 256,
      },
      this.remap,
    );
    this.remap.openAdapter(adapter);
    return adapter;
  }

  /** An adapter from the HAL's IoGetDmaAdapter (a VERSION2 64-bit S/G bus master unless overridden). */
  ioGetDmaAdapter(
    device: ProbeDevice,
    overrides: Partial<DEVICE_DESCRIPTION> = {},
  ): { adapter: DMA_ADAPTER; pdo: DEVICE_OBJECT } {
    const pdo = deviceObject(device.requesterId, false);
    const description: DEVICE_DESCRIPTION = {
      ...zeroedDeviceDescription(),
      Version: DEVICE_DESCRIPTION_VERSION2,
      Master: true,
      ScatterGather: true,
      Dma64BitAddresses: true,
      InterfaceType: PCIBus,
      MaximumLength: 1024 * 1024,
      ...overrides,
    };
    const adapter = this.machine.get(Hal).getDmaAdapter(pdo, description).Adapter;
    if (adapter === undefined) throw new Error("IoGetDmaAdapter returned NULL");
    return { adapter, pdo };
  }

  /** Runs `body` at DISPATCH_LEVEL, where GetScatterGatherList is called. */
  atDispatch<T>(body: () => T): T {
    return this.machine.scheduler.runAtIrql(DISPATCH_LEVEL, body);
  }

  /** A nonpaged buffer (frames scattered over RAM) filled with `fill`, and its built MDL. */
  buffer(bytes: number, fill?: Uint8Array): TestBuffer {
    const va = this.kernel.allocateNonPaged(bytes, { owner: this.testOwner, tag: "Test" });
    if (fill !== undefined) this.kernel.write(va, fill);
    const mdl = this.mm.allocateMdl(va, bytes);
    this.mm.buildForNonPagedPool(mdl);
    return { va, mdl };
  }

  /** A buffer on frames at or above `minAddress` (default 4 GiB), mapped into system space. */
  highBuffer(pages: number, fill?: Uint8Array, minAddress = 4 * GiB): TestBuffer & { pfns: number[] } {
    const pfns = this.frames.allocate(pages, { owner: this.testOwner, minAddress });
    const va = this.kernel.mapPages(pfns, this.testOwner);
    if (fill !== undefined) this.kernel.write(va, fill);
    const mdl = this.mm.allocateMdl(va, pages * PAGE_SIZE);
    this.mm.buildForNonPagedPool(mdl);
    return { va, mdl, pfns };
  }

  read(va: number, length: number): Uint8Array {
    const out = new Uint8Array(length);
    this.kernel.read(va, out);
    return out;
  }
}

/** A device object as the PnP manager makes for a PCI function (enough for the HAL). */
export function deviceObject(requesterId: number | undefined, external: boolean): DEVICE_OBJECT {
  return {
    DriverObject: undefined,
    DeviceExtension: undefined,
    CurrentIrp: undefined,
    AlignmentRequirement: 0,
    Flags: 0,
    NextDevice: undefined,
    AttachedDevice: undefined,
    DeviceObjectExtension: { requesterId, external },
  };
}

export function pattern(length: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i++) bytes[i] = (i * 31 + seed * 7 + 1) & 0xff;
  return bytes;
}

/** Byte equality without vitest's element-wise diff (slow on large arrays). */
export function sameBytes(actual: Uint8Array, expected: Uint8Array): boolean {
  return Buffer.from(actual.buffer, actual.byteOffset, actual.length).equals(expected);
}
