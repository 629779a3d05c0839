/**
 * A device node of the PnP manager: one PCI function, its PDO, the driver that took it and where
 * it is in the life cycle (WDK "State Transitions for PnP Devices", reduced):
 *
 *   enumerated -AddDevice-> added -START-> started -STOP-> stopped -START-> started
 *   any -REMOVE-> enumerated (driver gone, PDO kept) ; device unplugged -> deleted
 *   AddDevice or START failing -> failed (problem = the status), after which the stack is removed
 */
import type { NTSTATUS } from "../hal/wdm/ntstatus.js";
import type { DeviceObject } from "./device-object.js";
import type { DriverObject } from "./driver-object.js";

export type DeviceNodeState =
  | "enumerated"
  | "added"
  | "starting"
  | "started"
  | "stopped"
  | "failed"
  | "deleted";

export class DeviceNode {
  state: DeviceNodeState = "enumerated";
  /** The driver whose AddDevice took the device. */
  driver: DriverObject | undefined = undefined;
  /** Why the node is "failed" (Device Manager's problem status). */
  problem: NTSTATUS | undefined = undefined;

  constructor(
    readonly pdo: DeviceObject,
    readonly requesterId: number,
    readonly hardwareIds: readonly string[],
    readonly compatibleIds: readonly string[],
  ) {}

  /** The function driver's device object: the top of the stack, when a driver attached one. */
  get fdo(): DeviceObject | undefined {
    const top = this.pdo.stackTop;
    return top === this.pdo ? undefined : top;
  }

  /** True when one of `ids` names this device (hardware ids first, then compatible ids). */
  matches(ids: readonly string[]): boolean {
    const wanted = new Set(ids.map((id) => id.toUpperCase()));
    return [...this.hardwareIds, ...this.compatibleIds].some((id) => wanted.has(id.toUpperCase()));
  }
}
