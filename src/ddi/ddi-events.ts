/**
 * The DDI's events on the machine bus (declaration merging into MachineEvents): PnP state changes
 * and IRP completions, so traces show the driver life cycle next to the DMA it caused.
 */
import type { DeviceNodeState } from "./device-node.js";

export interface PnpStateEvent {
  readonly requesterId: number;
  /** \Driver\<name>, or "" when no driver has the device. */
  readonly driver: string;
  readonly state: DeviceNodeState;
  /** The status that caused the change (the failure status for "failed"). */
  readonly status: number;
}

export interface IrpCompleteEvent {
  readonly irp: number;
  readonly majorFunction: number;
  readonly minorFunction: number;
  readonly status: number;
  readonly information: number;
}

declare module "../trace/machine-events.js" {
  interface MachineEvents {
    "pnp.state": [PnpStateEvent];
    "irp.complete": [IrpCompleteEvent];
  }
}
