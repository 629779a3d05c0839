/**
 * A machine with one verifier test device, one test driver loaded on it, and the DMA verifier in
 * the mode a test asks for ("off": the same machine without the verifier, to show what the bug
 * does then). Buffers are made the way a driver's caller would: pool or contiguous memory, below
 * or above 4 GiB, with a built MDL.
 */
import { IoManager } from "../../src/ddi/io-manager.js";
import type { Irp } from "../../src/ddi/irp.js";
import { Kernel } from "../../src/ddi/kernel.js";
import { NonPagedPool } from "../../src/ddi/pool-type.js";
import { Hal } from "../../src/hal/hal.js";
import type { MDL } from "../../src/hal/wdm/device-object.js";
import { IRP_MJ_DEVICE_CONTROL } from "../../src/hal/wdm/device-object.js";
import { MmCached } from "../../src/hal/wdm/dma-v3-types.js";
import { Machine } from "../../src/machine/machine.js";
import type { MachineOptions } from "../../src/machine/machine-options.js";
import { GiB, PAGE_SIZE } from "../../src/platform/page.js";
import { DmaVerifier } from "../../src/verifier/dma-verifier.js";
import { verifierModule } from "../../src/verifier/verifier-module.js";
import type { VerifierOptions } from "../../src/verifier/verifier-options.js";
import { DmaTestDevice } from "./dma-test-device.js";
import type { DmaTestDriver, DmaTestExtension } from "./drivers/dma-test-driver.js";
import { IOCTL_DMA_TEST_RUN } from "./drivers/dma-test-registers.js";
import { driverPackage } from "./drivers/driver-package.js";

export interface RigOptions {
  readonly machine?: MachineOptions;
  /** The verifier's options, or "off" for a machine without it. Default: bug check mode. */
  readonly verifier?: VerifierOptions | "off";
  /** Load the driver at once (default true). */
  readonly load?: boolean;
}

export interface TestBuffer {
  readonly va: number;
  readonly mdl: MDL;
  readonly length: number;
}

export class VerifierRig<D extends DmaTestDriver = DmaTestDriver> {
  readonly machine: Machine;
  readonly io: IoManager;
  readonly kernel: Kernel;
  readonly hal: Hal;
  readonly device = new DmaTestDevice();
  readonly driver: D;
  readonly verifier: DmaVerifier | undefined;

  constructor(driver: new (kernel: Kernel) => D, options: RigOptions = {}) {
    const verifier = options.verifier ?? {};
    const modules = verifier === "off" ? [] : [verifierModule(verifier)];
    this.machine = new Machine({ memory: 8 * GiB, remapping: "strict", ...options.machine }, [
      ...modules,
      driverPackage(driver),
    ]);
    this.io = this.machine.get(IoManager);
    this.kernel = this.machine.get(Kernel);
    this.hal = this.machine.get(Hal);
    this.driver = this.machine.get(driver);
    this.verifier = verifier === "off" ? undefined : this.machine.get(DmaVerifier);
    this.machine.pci.attach(this.device);
    this.io.enumerate();
    if (options.load ?? true) this.load();
  }

  load(): void {
    this.io.loadDrivers();
  }

  get extension(): DmaTestExtension {
    return this.driver.extension!;
  }

  get node(): ReturnType<IoManager["node"]> {
    return this.io.node(this.device.requesterId);
  }

  /**
   * `length` bytes of nonpaged memory at `offset` into its first page, with a built MDL.
   * `above4G`: physically contiguous above 4 GiB (a 32-bit device must bounce it).
   */
  buffer(length: number, options: { offset?: number; above4G?: boolean; fill?: number } = {}): TestBuffer {
    const k = this.kernel;
    const offset = options.offset ?? 0;
    const bytes = Math.ceil((offset + length) / PAGE_SIZE) * PAGE_SIZE;
    const base =
      options.above4G === true
        ? k.MmAllocateContiguousMemorySpecifyCache(bytes, 4 * GiB, 8 * GiB, 0, MmCached)
        : k.MmAllocateContiguousMemorySpecifyCache(bytes, 0, 4 * GiB - 1, 0, MmCached);
    if (base === 0) throw new Error("no memory for a test buffer");
    k.WriteMemory(base, new Uint8Array(bytes).fill(options.fill ?? 0));
    const va = base + offset;
    const mdl = k.IoAllocateMdl(va, length, false, false, undefined)!;
    k.MmBuildMdlForNonPagedPool(mdl);
    return { va, mdl, length };
  }

  /** Pool memory (scattered frames) with a built MDL. */
  poolBuffer(length: number): TestBuffer {
    const k = this.kernel;
    const va = k.ExAllocatePoolWithTag(NonPagedPool, length, "Vrfy");
    k.WriteMemory(va, new Uint8Array(length));
    const mdl = k.IoAllocateMdl(va, length, false, false, undefined)!;
    k.MmBuildMdlForNonPagedPool(mdl);
    return { va, mdl, length };
  }

  /** IRP_MJ_READ: the device writes its pattern into the buffer. The machine runs until idle. */
  read(buffer: TestBuffer): Irp {
    const irp = this.io.sendRead(this.node.fdo!, buffer.mdl);
    this.machine.runUntilIdle();
    return irp;
  }

  /** IRP_MJ_WRITE: the device reads the buffer. The machine runs until idle. */
  write(buffer: TestBuffer): Irp {
    const irp = this.io.sendWrite(this.node.fdo!, buffer.mdl);
    this.machine.runUntilIdle();
    return irp;
  }

  /** IOCTL_DMA_TEST_RUN: the driver's `control` step. */
  control(): Irp {
    const irp = this.io.createIrp(IRP_MJ_DEVICE_CONTROL, {
      parameters: {
        DeviceIoControl: { IoControlCode: IOCTL_DMA_TEST_RUN, InputBufferLength: 0, OutputBufferLength: 0 },
      },
    });
    this.io.callDriver(this.node.fdo!, irp);
    this.machine.runUntilIdle();
    return irp;
  }

  bytes(buffer: TestBuffer): Uint8Array {
    return this.machine.get(Kernel).ReadMemory(buffer.va, buffer.length);
  }

  stop(): void {
    this.io.stopDevice(this.node);
    this.machine.runUntilIdle();
  }

  remove(): void {
    this.io.removeDevice(this.node);
    this.machine.runUntilIdle();
  }
}
