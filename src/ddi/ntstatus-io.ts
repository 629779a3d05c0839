/**
 * NTSTATUS values returned by the I/O and memory managers' routines that src/hal/wdm/ntstatus.ts
 * does not carry (ntstatus.h numbers).
 */
import type { NTSTATUS } from "../hal/wdm/ntstatus.js";

export const STATUS_ACCESS_VIOLATION: NTSTATUS = 0xc0000005;
export const STATUS_NO_SUCH_DEVICE: NTSTATUS = 0xc000000e;
export const STATUS_OBJECT_NAME_INVALID: NTSTATUS = 0xc0000033;
export const STATUS_OBJECT_NAME_COLLISION: NTSTATUS = 0xc0000035;
export const STATUS_DELETE_PENDING: NTSTATUS = 0xc0000056;
export const STATUS_IMAGE_ALREADY_LOADED: NTSTATUS = 0xc000010e;
export const STATUS_INVALID_DEVICE_STATE: NTSTATUS = 0xc0000184;
