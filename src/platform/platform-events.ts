/**
 * The platform's events on the machine bus (declaration merging into MachineEvents). Emitters
 * build a payload only when `EventBus.hasListeners` says someone reads it.
 */
import type { DmaAccess } from "./dma-remapper.js";
import type { DmaResultKind } from "./dma-result.js";

/** A scheduled callback fired (timers, device work). */
export interface SchedulerEventEvent {
  readonly time: number;
  readonly label: string;
}

/** An interrupt line was delivered to its ISR chain. */
export interface SchedulerInterruptEvent {
  readonly time: number;
  readonly line: number;
  readonly label: string;
}

/** A DPC is about to run at dispatch level. */
export interface SchedulerDpcEvent {
  readonly time: number;
  readonly label: string;
}

/** One DmaPort access, successful or not. `bytesDone` counts bytes moved before a failure. */
export interface DeviceTransferEvent {
  readonly requesterId: number;
  readonly busAddress: number;
  readonly length: number;
  readonly access: DmaAccess;
  readonly ok: boolean;
  readonly kind: DmaResultKind;
  readonly bytesDone: number;
}

/** A device was plugged into or removed from the PCI bus. */
export interface PciDeviceEvent {
  readonly requesterId: number;
  readonly name: string;
  readonly barAddress: number;
  readonly barSize: number;
  readonly interruptLine: number;
}

/** A 32-bit MMIO register access routed to a device BAR. */
export interface PciMmioEvent {
  readonly requesterId: number;
  readonly offset: number;
  readonly value: number;
  readonly access: DmaAccess;
}

declare module "../trace/machine-events.js" {
  interface MachineEvents {
    "scheduler.event": [SchedulerEventEvent];
    "scheduler.interrupt": [SchedulerInterruptEvent];
    "scheduler.dpc": [SchedulerDpcEvent];
    "device.transfer": [DeviceTransferEvent];
    "pci.attach": [PciDeviceEvent];
    "pci.detach": [PciDeviceEvent];
    "pci.mmio": [PciMmioEvent];
  }
}
