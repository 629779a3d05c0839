/**
 * Device tests run on a kit test machine without remapping (bus address = physical address):
 * 64 MiB below the MMIO hole and 64 MiB from 4 GiB up, so 64-bit addresses are real RAM. Faults
 * are injected at the DMA port (TestMachine.injectDmaError), so device models are tested without
 * building IOMMU page tables; the machine's leak check runs when each test ends.
 */
import { MiB } from "../../src/platform/page.js";
import type { PciDevice } from "../../src/platform/pci-device.js";
import { type TestMachine, type TestMachineOptions, testMachine } from "../../src/testing/index.js";

export function makeRig(options: TestMachineOptions = {}): TestMachine {
  return testMachine({ remapping: "off", memory: 128 * MiB, mmioHoleStart: 64 * MiB, ...options });
}

/** Plugs `device` in with bus mastering on, as its driver's start routine would leave it. */
export function plug<T extends PciDevice>(rig: TestMachine, device: T): T {
  return rig.plug(device, { busMaster: true });
}

/** Counts interrupts on the device's line; `isr` decides whether the device claims each one. */
export function countInterrupts(
  rig: TestMachine,
  device: PciDevice,
  isr: () => boolean = () => true,
): { count: number } {
  const counter = { count: 0 };
  rig.scheduler.connectInterrupt(device.interruptLine, () => {
    counter.count++;
    return isr();
  });
  return counter;
}
