/**
 * DEVICE_OBJECT: one per device a driver manages (its FDO) and one per device the bus found (the
 * PDO the PCI bus driver owns). Stacks are built with AttachedDevice (upwards) and `lowerDevice`
 * (DEVOBJ_EXTENSION.AttachedTo in Windows, downwards). A PDO's DeviceObjectExtension carries the
 * PCI requester id the HAL routes DMA with, and whether the device sits behind an external port.
 */
import type { DEVICE_OBJECT, DEVOBJ_EXTENSION, IRP } from "../hal/wdm/device-object.js";
import type { DriverObject } from "./driver-object.js";
import type { Irp } from "./irp.js";
import type { KDPC } from "./kdpc.js";

export class DeviceObject implements DEVICE_OBJECT {
  readonly DriverObject: DriverObject;
  /** Zeroed storage in C; here an empty object the driver fills or replaces. */
  DeviceExtension: unknown;
  /** The IRP StartIo is working on (IoStartPacket / IoStartNextPacket). */
  CurrentIrp: IRP | undefined = undefined;
  AlignmentRequirement = 0;
  Flags: number;
  NextDevice: DEVICE_OBJECT | undefined = undefined;
  AttachedDevice: DEVICE_OBJECT | undefined = undefined;
  readonly DeviceObjectExtension: DEVOBJ_EXTENSION;
  readonly DeviceType: number;
  readonly Characteristics: number;
  /** Serial number, for bug-check parameters and traces. */
  readonly id: number;
  /** \Device\<name>, if it was given one. */
  readonly name: string | undefined;
  /** The device this one is attached on top of. */
  lowerDevice: DeviceObject | undefined = undefined;
  deleted = false;
  /** DeviceObject->DeviceQueue: IRPs IoStartPacket queued while StartIo was busy. */
  readonly deviceQueue: Irp[] = [];
  /** DeviceObject->Dpc, initialised by IoInitializeDpcRequest. */
  dpcForIsr: KDPC | undefined = undefined;

  constructor(init: {
    readonly id: number;
    readonly driverObject: DriverObject;
    readonly name: string | undefined;
    readonly deviceType: number;
    readonly characteristics: number;
    readonly flags: number;
    readonly extension: DEVOBJ_EXTENSION;
  }) {
    this.id = init.id;
    this.DriverObject = init.driverObject;
    this.name = init.name;
    this.DeviceType = init.deviceType;
    this.Characteristics = init.characteristics;
    this.Flags = init.flags;
    this.DeviceObjectExtension = init.extension;
    this.DeviceExtension = {};
  }

  /** The top of this device's stack (IoGetAttachedDevice). */
  get stackTop(): DeviceObject {
    let top: DeviceObject = this;
    while (top.AttachedDevice instanceof DeviceObject) top = top.AttachedDevice;
    return top;
  }

  /** The bottom of this device's stack: the PDO. */
  get stackBottom(): DeviceObject {
    let bottom: DeviceObject = this;
    while (bottom.lowerDevice !== undefined) bottom = bottom.lowerDevice;
    return bottom;
  }

  toString(): string {
    return `${this.DriverObject.DriverName}${this.name === undefined ? "" : ` ${this.name}`} (device ${this.id})`;
  }
}
