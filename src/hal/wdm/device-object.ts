/**
 * DRIVER_OBJECT, DEVICE_OBJECT, IRP and IO_STACK_LOCATION: the WDM objects the HAL sees (its
 * callbacks receive a device object and its CurrentIrp). The I/O manager in src/ddi creates them.
 * Only fields a DMA driver uses are modelled; system-private data sits in DeviceObjectExtension,
 * where Windows keeps it too.
 */
import type { Mdl } from "../../platform/mdl.js";
import type { NTSTATUS } from "./ntstatus.js";

export type MDL = Mdl;

export const IRP_MJ_CREATE = 0x00;
export const IRP_MJ_CLOSE = 0x02;
export const IRP_MJ_READ = 0x03;
export const IRP_MJ_WRITE = 0x04;
export const IRP_MJ_DEVICE_CONTROL = 0x0e;
export const IRP_MJ_PNP = 0x1b;
export const IRP_MJ_MAXIMUM_FUNCTION = 0x1b;

export const IRP_MN_START_DEVICE = 0x00;
export const IRP_MN_REMOVE_DEVICE = 0x02;
export const IRP_MN_STOP_DEVICE = 0x04;

export interface IO_STATUS_BLOCK {
  Status: NTSTATUS;
  Information: number;
}

/** CM_PARTIAL_RESOURCE_DESCRIPTOR, reduced to the two kinds a PCI function gets. */
export type CM_PARTIAL_RESOURCE_DESCRIPTOR =
  | { readonly Type: "CmResourceTypeMemory"; readonly Start: number; readonly Length: number }
  | { readonly Type: "CmResourceTypeInterrupt"; readonly Vector: number; readonly Level: number };

export interface IO_STACK_LOCATION {
  MajorFunction: number;
  MinorFunction: number;
  DeviceObject: DEVICE_OBJECT | undefined;
  Parameters: {
    Read?: { Length: number; ByteOffset: number };
    Write?: { Length: number; ByteOffset: number };
    DeviceIoControl?: { IoControlCode: number; InputBufferLength: number; OutputBufferLength: number };
    StartDevice?: { AllocatedResourcesTranslated: readonly CM_PARTIAL_RESOURCE_DESCRIPTOR[] };
  };
}

export interface IRP {
  MdlAddress: MDL | undefined;
  IoStatus: IO_STATUS_BLOCK;
  Cancel: boolean;
  PendingReturned: boolean;
  /** Tail.Overlay.CurrentStackLocation, flattened: IoGetCurrentIrpStackLocation returns it. */
  readonly CurrentStackLocation: IO_STACK_LOCATION;
  /** Driver-private context (Tail.Overlay.DriverContext). */
  DriverContext: unknown;
}

/** System-private per-device data. For a PDO: the PCI function it stands for. */
export interface DEVOBJ_EXTENSION {
  readonly requesterId: number | undefined;
  /** Behind an external (hot-plug, Thunderbolt-like) port: the HAL treats the device as untrusted. */
  readonly external: boolean;
}

export type DRIVER_DISPATCH = (DeviceObject: DEVICE_OBJECT, Irp: IRP) => NTSTATUS;
export type DRIVER_ADD_DEVICE = (
  DriverObject: DRIVER_OBJECT,
  PhysicalDeviceObject: DEVICE_OBJECT,
) => NTSTATUS;
export type DRIVER_UNLOAD = (DriverObject: DRIVER_OBJECT) => void;
export type DRIVER_STARTIO = (DeviceObject: DEVICE_OBJECT, Irp: IRP) => void;

export interface DRIVER_OBJECT {
  readonly DriverName: string;
  DeviceObject: DEVICE_OBJECT | undefined;
  readonly DriverExtension: { AddDevice: DRIVER_ADD_DEVICE | undefined };
  readonly MajorFunction: (DRIVER_DISPATCH | undefined)[];
  DriverUnload: DRIVER_UNLOAD | undefined;
  DriverStartIo: DRIVER_STARTIO | undefined;
}

export interface DEVICE_OBJECT {
  readonly DriverObject: DRIVER_OBJECT | undefined;
  DeviceExtension: unknown;
  CurrentIrp: IRP | undefined;
  /** A mask: GetDmaAlignment() - 1. */
  AlignmentRequirement: number;
  Flags: number;
  /** The next device object in the driver's list (DriverObject->DeviceObject chain). */
  NextDevice: DEVICE_OBJECT | undefined;
  /** The device attached above this one in its stack. */
  AttachedDevice: DEVICE_OBJECT | undefined;
  readonly DeviceObjectExtension: DEVOBJ_EXTENSION;
}
