/**
 * Pool types and flags (wdm.h): POOL_TYPE for ExAllocatePoolWithTag, POOL_FLAGS for
 * ExAllocatePool2. Only nonpaged memory exists on the simulated machine; PagedPool is accepted
 * for ExAllocatePoolWithTag with its stricter IRQL rule (APC_LEVEL or below).
 */
export const NonPagedPool = 0;
export const PagedPool = 1;
export const NonPagedPoolNx = 512;
export type POOL_TYPE = typeof NonPagedPool | typeof PagedPool | typeof NonPagedPoolNx;

export const POOL_FLAG_USE_QUOTA = 0x1;
/** ExAllocatePool2 zeroes the allocation unless this flag is given. */
export const POOL_FLAG_UNINITIALIZED = 0x2;
export const POOL_FLAG_CACHE_ALIGNED = 0x8;
export const POOL_FLAG_RAISE_ON_FAILURE = 0x20;
export const POOL_FLAG_NON_PAGED = 0x40;
export const POOL_FLAG_NON_PAGED_EXECUTE = 0x80;
export const POOL_FLAG_PAGED = 0x100;
export type POOL_FLAGS = number;

/**
 * A pool tag as C writes it: a ULONG whose bytes, low first, are the characters WinDbg shows
 * ('tseT' in C is "Test" in !pool), or those characters as a string of one to four.
 */
export type POOL_TAG = number | string;
