/**
 * DRIVER_OBJECT: what the I/O manager creates for a loaded driver and hands to DriverEntry. The
 * driver fills the dispatch table and its AddDevice/Unload/StartIo routines; a missing dispatch
 * entry means IopInvalidDeviceRequest (the IRP completes with STATUS_INVALID_DEVICE_REQUEST).
 */
import {
  type DEVICE_OBJECT,
  type DRIVER_ADD_DEVICE,
  type DRIVER_DISPATCH,
  type DRIVER_OBJECT,
  type DRIVER_STARTIO,
  type DRIVER_UNLOAD,
  IRP_MJ_MAXIMUM_FUNCTION,
} from "../hal/wdm/device-object.js";
import type { DriverContribution } from "./driver.js";

export class DriverObject implements DRIVER_OBJECT {
  readonly DriverName: string;
  /** Head of the list of device objects the driver created (newest first, as in Windows). */
  DeviceObject: DEVICE_OBJECT | undefined = undefined;
  readonly DriverExtension: { AddDevice: DRIVER_ADD_DEVICE | undefined } = { AddDevice: undefined };
  /** IRP_MJ_* -> dispatch routine; sealed at IRP_MJ_MAXIMUM_FUNCTION + 1 entries. */
  readonly MajorFunction: (DRIVER_DISPATCH | undefined)[];
  DriverUnload: DRIVER_UNLOAD | undefined = undefined;
  DriverStartIo: DRIVER_STARTIO | undefined = undefined;
  /** The package that supplied the driver; undefined for the built-in PCI bus driver. */
  readonly contribution: DriverContribution | undefined;
  /** False once DriverEntry failed or DriverUnload ran. */
  loaded = true;

  constructor(name: string, contribution: DriverContribution | undefined) {
    this.DriverName = `\\Driver\\${name}`;
    this.contribution = contribution;
    this.MajorFunction = Object.seal(
      new Array<DRIVER_DISPATCH | undefined>(IRP_MJ_MAXIMUM_FUNCTION + 1).fill(undefined),
    );
  }

  /** The device objects of DriverObject->DeviceObject, following NextDevice. */
  get devices(): readonly DEVICE_OBJECT[] {
    const list: DEVICE_OBJECT[] = [];
    for (let d = this.DeviceObject; d !== undefined; d = d.NextDevice) list.push(d);
    return list;
  }
}
