/**
 * Test rig of the HAL dispatcher: a machine in any remapping mode (8 GiB, of which only 64 MiB
 * below 4 GiB, so that a test can push allocations above 4 GiB cheaply), small bus-master devices
 * that do DMA through their port on demand, adapters from the Hal's IoGetDmaAdapter, and MDLs
 * over kernel buffers (scattered pool pages, pages above 4 GiB, or contiguous runs). Mode-
 * independent tests take the mode as a parameter: `describe.each(HAL_MODES)`.
 */

import { Hal } from "../../../src/hal/hal.js";
import type { DmaOperations } from "../../../src/hal/tokens.js";
import { BugCheck } from "../../../src/hal/wdm/bug-check.js";
import {
  type DEVICE_DESCRIPTION,
  DEVICE_DESCRIPTION_VERSION2,
  PCIBus,
  zeroedDeviceDescription,
} from "../../../src/hal/wdm/device-description.js";
import type { DEVICE_OBJECT, IRP } from "../../../src/hal/wdm/device-object.js";
import type { DMA_ADAPTER, DMA_OPERATIONS } from "../../../src/hal/wdm/dma-operations.js";
import { DISPATCH_LEVEL } from "../../../src/hal/wdm/irql.js";
import { Machine } from "../../../src/machine/machine.js";
import type { MachineOptions, RemappingMode } from "../../../src/machine/machine-options.js";
import type { DmaResult } from "../../../src/platform/dma-result.js";
import type { FrameAllocator } from "../../../src/platform/frame-allocator.js";
import { KernelMemory } from "../../../src/platform/kernel-memory.js";
import type { Mdl } from "../../../src/platform/mdl.js";
import { MemoryManager } from "../../../src/platform/memory-manager.js";
import { GiB, MiB, PAGE_SIZE } from "../../../src/platform/page.js";
import { PciDevice } from "../../../src/platform/pci-device.js";
import type { Scheduler } from "../../../src/platform/scheduler.js";

export const HAL_MODES: readonly RemappingMode[] = ["off", "passthrough", "strict", "lazy"];

/** A bus master that reads and writes memory through its DmaPort when a test asks it to. */
export class BusMaster extends PciDevice {
  constructor(name = "bus-master") {
    super({ name, vendorId: 0x1af4, deviceId: 0x10fe, classCode: 0xff0000 }, { barSize: 4096 });
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

export interface TestBuffer {
  readonly va: number;
  readonly mdl: Mdl;
}

/** A DEVICE_DESCRIPTION for a PCI bus master: 64-bit scatter/gather, 1 MiB, VERSION2 unless overridden. */
export function description(overrides: Partial<DEVICE_DESCRIPTION> = {}): DEVICE_DESCRIPTION {
  return {
    ...zeroedDeviceDescription(),
    Version: DEVICE_DESCRIPTION_VERSION2,
    Master: true,
    ScatterGather: true,
    Dma64BitAddresses: true,
    InterfaceType: PCIBus,
    MaximumLength: MiB,
    ...overrides,
  };
}

/** A device object as the PnP manager makes for a PCI function (enough for the HAL). */
export function deviceObject(requesterId: number | undefined, external = false): DEVICE_OBJECT {
  return {
    DriverObject: undefined,
    DeviceExtension: {},
    CurrentIrp: undefined,
    AlignmentRequirement: 0,
    Flags: 0,
    NextDevice: undefined,
    AttachedDevice: undefined,
    DeviceObjectExtension: { requesterId, external },
  };
}

export interface OpenAdapter {
  readonly adapter: DMA_ADAPTER;
  readonly ops: DMA_OPERATIONS;
  readonly numberOfMapRegisters: number;
  readonly device: BusMaster;
  readonly pdo: DEVICE_OBJECT;
}

export class HalRig {
  readonly machine: Machine;
  readonly hal: Hal;
  readonly kernel: KernelMemory;
  readonly mm: MemoryManager;
  readonly frames: FrameAllocator;
  readonly scheduler: Scheduler;
  readonly testOwner: number;
  readonly #hogOwner: number;
  #devices = 0;

  constructor(options: MachineOptions = {}) {
    this.machine = new Machine({ memory: 8 * GiB, mmioHoleStart: 64 * MiB, remapping: "off", ...options });
    this.hal = this.machine.get(Hal);
    this.kernel = this.machine.get(KernelMemory);
    this.mm = this.machine.get(MemoryManager);
    this.frames = this.machine.frames;
    this.scheduler = this.machine.scheduler;
    this.testOwner = this.frames.registerOwner("test");
    this.#hogOwner = this.frames.registerOwner("test-hog");
  }

  /** The object bound to the DmaOperations token. */
  operations(token: typeof DmaOperations): DMA_OPERATIONS {
    return this.machine.get<DMA_OPERATIONS>(token);
  }

  /** Plugs a bus master in (Bus Master Enable set). */
  plug(name = `bus-master-${++this.#devices}`): BusMaster {
    const device = new BusMaster(name);
    this.machine.pci.attach(device, { busMaster: true });
    return device;
  }

  /** A new device and an adapter for it; throws if IoGetDmaAdapter returns NULL. */
  open(overrides: Partial<DEVICE_DESCRIPTION> = {}, external = false): OpenAdapter {
    const device = this.plug();
    const pdo = deviceObject(device.requesterId, external);
    const result = this.hal.getDmaAdapter(pdo, description(overrides));
    if (result.Adapter === undefined) throw new Error("IoGetDmaAdapter returned NULL");
    return {
      adapter: result.Adapter,
      ops: result.Adapter.DmaOperations,
      numberOfMapRegisters: result.NumberOfMapRegisters,
      device,
      pdo,
    };
  }

  /** Runs `body` at DISPATCH_LEVEL, as DPCs and most DMA routines do. */
  atDispatch<T>(body: () => T): T {
    return this.scheduler.runAtIrql(DISPATCH_LEVEL, body);
  }

  /** A nonpaged buffer (frames scattered over RAM) filled with `fill`, and its built MDL. */
  buffer(bytes: number, fill?: Uint8Array): TestBuffer {
    const va = this.kernel.allocateNonPaged(bytes, { owner: this.testOwner, tag: "Test" });
    if (fill !== undefined) this.kernel.write(va, fill);
    return { va, mdl: this.mdlFor(va, bytes) };
  }

  /**
   * `pages` pages of nonpaged pool whose frames all lie at or above 4 GiB (scattered there): the
   * low frames are held by a hog while the pool allocates. Page multiples get frames of their own.
   */
  highBuffer(pages: number, fill?: Uint8Array): TestBuffer {
    const hog = this.frames.allocate(this.frames.freeFrameCount("dma32"), {
      owner: this.#hogOwner,
      zone: "dma32",
    });
    try {
      return this.buffer(pages * PAGE_SIZE, fill);
    } finally {
      this.frames.free(hog, this.#hogOwner);
    }
  }

  /** A physically contiguous buffer in [minAddress, maxAddress] (MmAllocateContiguousMemory). */
  contiguousBuffer(bytes: number, maxAddress: number, minAddress = 0, fill?: Uint8Array): TestBuffer {
    const va = this.kernel.allocateContiguous(bytes, { owner: this.testOwner, maxAddress, minAddress });
    if (fill !== undefined) this.kernel.write(va, fill);
    return { va, mdl: this.mdlFor(va, bytes) };
  }

  /** An MDL over [va, va + bytes) of mapped kernel memory, built for nonpaged pool. */
  mdlFor(va: number, bytes: number, chainTo?: Mdl): Mdl {
    const mdl = this.mm.allocateMdl(va, bytes, chainTo === undefined ? {} : { chainTo });
    this.mm.buildForNonPagedPool(mdl);
    return mdl;
  }

  read(va: number, length: number): Uint8Array {
    const out = new Uint8Array(length);
    this.kernel.read(va, out);
    return out;
  }

  write(va: number, bytes: Uint8Array): void {
    this.kernel.write(va, bytes);
  }
}

/** An IRP stand-in, for checking that callbacks get DeviceObject->CurrentIrp. */
export function fakeIrp(): IRP {
  return {
    MdlAddress: undefined,
    IoStatus: { Status: 0, Information: 0 },
    Cancel: false,
    PendingReturned: false,
    CurrentStackLocation: { MajorFunction: 0, MinorFunction: 0, DeviceObject: undefined, Parameters: {} },
    DriverContext: undefined,
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

/** The BugCheck `body` throws; fails the test if it throws something else or nothing. */
export function bugCheckOf(body: () => unknown): BugCheck {
  try {
    body();
  } catch (error) {
    if (error instanceof BugCheck) return error;
    throw error;
  }
  throw new Error("expected a bug check, but the call returned");
}
