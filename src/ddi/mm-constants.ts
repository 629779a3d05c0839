/** Memory manager constants of wdm.h for the MDL routines. */

/** KPROCESSOR_MODE: who the access is checked for (MmProbeAndLockPages AccessMode). */
export const KernelMode = 0;
export const UserMode = 1;
export type KPROCESSOR_MODE = typeof KernelMode | typeof UserMode;

/** LOCK_OPERATION (MmProbeAndLockPages Operation): what the device will do to the pages' data. */
export const IoReadAccess = 0;
export const IoWriteAccess = 1;
export const IoModifyAccess = 2;
export type LOCK_OPERATION = typeof IoReadAccess | typeof IoWriteAccess | typeof IoModifyAccess;

/** MM_PAGE_PRIORITY (MmGetSystemAddressForMdlSafe Priority), optionally OR-ed with the flags below. */
export const LowPagePriority = 0;
export const NormalPagePriority = 16;
export const HighPagePriority = 32;
export const MdlMappingNoWrite = 0x80000000;
export const MdlMappingNoExecute = 0x40000000;
export type MM_PAGE_PRIORITY = number;
