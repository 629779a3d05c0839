/**
 * The register interface of the scriptable test device (src/testing/scriptable-device.ts): what a
 * mock driver programs. One 32-bit register per dword of BAR 0, little endian, as on PCI.
 *
 * A command is one buffer or a descriptor list:
 * - COUNT = 0: ADDRESS_LOW/HIGH and LENGTH describe one buffer ("direct" mode, the shape of a
 *   device without scatter/gather).
 * - COUNT = n: ADDRESS_LOW/HIGH is the bus address of n descriptors of 16 bytes each
 *   (`u64 address, u32 length, u32 reserved`, little endian), fetched by DMA when the doorbell rings.
 * Writing a ScriptableCommand to DOORBELL starts the command; STATUS says when it is done.
 */

export const ScriptableRegister = {
  /** RO: SCRIPTABLE_ID_VALUE, for a driver to check it found the device. */
  id: 0x00,
  /** RO: bits 7:0 the device's address width, bit 8 scatter/gather. */
  capabilities: 0x04,
  addressLow: 0x08,
  addressHigh: 0x0c,
  /** Buffer length in bytes, for COUNT = 0. */
  length: 0x10,
  /** Descriptors at ADDRESS; 0 for one buffer at ADDRESS. */
  count: 0x14,
  /** Write a ScriptableCommand: the device runs its script for it. */
  doorbell: 0x18,
  /** RO ScriptableStatus bits; writing 1s clears DONE and ERROR (write-1-to-clear). */
  status: 0x1c,
  /** RO: bytes the last command moved. */
  bytesDone: 0x20,
  /** RO: ScriptableError of the last command. */
  errorCode: 0x24,
  /** RO: largest command in bytes. */
  maxTransfer: 0x28,
  /** RO: required alignment of every buffer address, in bytes. */
  alignment: 0x2c,
} as const;

export const ScriptableStatus = { done: 0x1, error: 0x2, busy: 0x4 } as const;

/** Doorbell values. toDevice: the device reads the buffers (a write IRP); fromDevice: it fills them. */
export const ScriptableCommand = { toDevice: 1, fromDevice: 2 } as const;

export const ScriptableError = {
  none: 0,
  /** More than one descriptor on a device without scatter/gather. */
  tooManySegments: 1,
  /** The command is longer than the device's maximum transfer. */
  tooLong: 2,
  /** A buffer address is not aligned as the device requires. */
  misaligned: 3,
  /** A DMA access failed (IOMMU fault, unassigned address, bus mastering off). */
  dmaFault: 4,
  /** A script's `fail` action (the default code). */
  scripted: 5,
  /** The doorbell value is not a ScriptableCommand. */
  badCommand: 6,
} as const;

export const SCRIPTABLE_ID_VALUE = 0x5c21_d7e5;
export const DESCRIPTOR_SIZE = 16;
/** QEMU's test-device vendor (Red Hat, 1b36) with a device id of our own. */
export const SCRIPTABLE_VENDOR_ID = 0x1b36;
export const SCRIPTABLE_DEVICE_ID = 0x7e57;
/** The hardware id a mock driver lists to bind to the scriptable device. */
export const SCRIPTABLE_HARDWARE_ID = "PCI\\VEN_1B36&DEV_7E57";
