/** I/O manager constants of wdm.h a driver passes or tests: device types, DO_* flags, PnP minors. */

/** DEVICE_TYPE values for IoCreateDevice. */
export const FILE_DEVICE_CONTROLLER = 0x04;
export const FILE_DEVICE_DISK = 0x07;
export const FILE_DEVICE_NETWORK = 0x12;
export const FILE_DEVICE_UNKNOWN = 0x22;
export const FILE_DEVICE_BUS_EXTENDER = 0x2a;

/** DeviceCharacteristics. */
export const FILE_DEVICE_SECURE_OPEN = 0x100;

/** DEVICE_OBJECT.Flags. */
export const DO_BUFFERED_IO = 0x0004;
export const DO_EXCLUSIVE = 0x0008;
export const DO_DIRECT_IO = 0x0010;
/** Set by IoCreateDevice; AddDevice clears it once the device can take I/O. */
export const DO_DEVICE_INITIALIZING = 0x0080;
export const DO_BUS_ENUMERATED_DEVICE = 0x1000;
export const DO_POWER_PAGABLE = 0x2000;

/** PriorityBoost of IoCompleteRequest when no thread is waiting on the device. */
export const IO_NO_INCREMENT = 0;

/** IRP_MJ_PNP minor functions beyond the three in src/hal/wdm/device-object.ts. */
export const IRP_MN_QUERY_STOP_DEVICE = 0x05;
export const IRP_MN_SURPRISE_REMOVAL = 0x17;

/** KINTERRUPT_MODE of IoConnectInterrupt. */
export const LevelSensitive = 0;
export const Latched = 1;
export type KINTERRUPT_MODE = typeof LevelSensitive | typeof Latched;
