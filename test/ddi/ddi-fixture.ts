/**
 * A machine with the tiny driver package loaded into its container and the tiny device plugged
 * into its PCI bus, for the DDI tests.
 */
import { IoManager } from "../../src/ddi/io-manager.js";
import { Kernel } from "../../src/ddi/kernel.js";
import { NonPagedPool } from "../../src/ddi/pool-type.js";
import { BugCheck } from "../../src/hal/wdm/bug-check.js";
import type { MDL } from "../../src/hal/wdm/device-object.js";
import { Machine } from "../../src/machine/machine.js";
import type { MachineOptions } from "../../src/machine/machine-options.js";
import { PAGE_SIZE } from "../../src/platform/page.js";
import { TinyDriver } from "./drivers/tiny-driver.js";
import tinyDriverModule from "./drivers/tiny-driver-module.js";
import { TinyDevice } from "./tiny-device.js";

export interface DdiFixture {
  readonly machine: Machine;
  readonly device: TinyDevice;
  readonly io: IoManager;
  readonly kernel: Kernel;
  readonly driver: TinyDriver;
}

export function ddiFixture(options: MachineOptions = {}, attach = true): DdiFixture {
  const machine = new Machine(options, [tinyDriverModule]);
  const device = new TinyDevice();
  if (attach) machine.pci.attach(device);
  return {
    machine,
    device,
    io: machine.get(IoManager),
    kernel: machine.get(Kernel),
    driver: machine.get(TinyDriver),
  };
}

/** A nonpaged pool page and an MDL built over its first `length` bytes (from `offset`). */
export function poolBuffer(
  kernel: Kernel,
  length: number,
  offset = 0,
): { readonly va: number; readonly mdl: MDL } {
  const va = kernel.ExAllocatePoolWithTag(NonPagedPool, PAGE_SIZE, "Test");
  const mdl = kernel.IoAllocateMdl(va + offset, length, false, false, undefined)!;
  kernel.MmBuildMdlForNonPagedPool(mdl);
  return { va: va + offset, mdl };
}

/** The bytes the tiny device writes for `seed`. */
export function pattern(seed: number, length: number): Uint8Array {
  return Uint8Array.from({ length }, (_, i) => (seed + i) % 256);
}

/** The BugCheck `fn` throws; anything else it throws fails the test. */
export function bugCheckOf(fn: () => unknown): BugCheck {
  try {
    fn();
  } catch (error) {
    if (error instanceof BugCheck) return error;
    throw error;
  }
  throw new Error("expected a bug check");
}
