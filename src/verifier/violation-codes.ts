/**
 * Parameter 1 of DRIVER_VERIFIER_DMA_VIOLATION (0xE6) as the verifier raises it. 0x00..0x26 are
 * Windows' codes with the parameters the WDK documents (shared/reference/windows-dma-ddi.md
 * section 6, "Bug Check 0xE6"); 0x100 and up are the Linux dma-debug checks Windows lacks
 * (iommu-anchors.md section 3), numbered by the simulator. docs/verifier.md has the full table.
 */
export const VerifierCode = {
  /** p2 = 1: flush past the end of the MDL (p3 bytes left, p4 bytes asked). */
  miscellaneous: 0x00,
  commonBufferDoubleFree: 0x03,
  channelDoubleFree: 0x04,
  mapRegistersDoubleFree: 0x05,
  scatterGatherDoubleFree: 0x06,
  leftoverCommonBuffers: 0x07,
  leftoverChannels: 0x08,
  leftoverMapRegisters: 0x09,
  leftoverScatterGatherLists: 0x0a,
  secondChannel: 0x0b,
  tooManyMapRegistersAtOnce: 0x0c,
  notFlushed: 0x0d,
  unlockedBuffer: 0x0e,
  boundaryOverrun: 0x0f,
  freeMappedRegisters: 0x10,
  wrongIrql: 0x13,
  overMaximumMapRegisters: 0x15,
  flushUnmappedBuffer: 0x16,
  releasedAdapter: 0x18,
  nullAdapter: 0x19,
  addressNotInMdl: 0x1b,
  doubleMapping: 0x1d,
  invalidBuffer: 0x1f,
  flushNeverMapped: 0x20,
  zeroLengthMap: 0x21,
  notSystemMapped: 0x22,
  insufficientBuffer: 0x24,
  unknownDescriptionVersion: 0x25,
  iommuViolation: 0x26,
  // ---- dma-debug checks (not Windows codes) ----
  /** Flushed or put with the other direction than it was mapped with. */
  directionMismatch: 0x100,
  /** The CPU read a buffer the device may still be writing (before the flush or the put). */
  staleRead: 0x101,
  /** A flush whose range is partly outside what is mapped. */
  syncOutsideMapping: 0x102,
  /** The driver left the device with DMA resources still allocated. */
  leakAtUnload: 0x103,
} as const;

export type VerifierCodeValue = (typeof VerifierCode)[keyof typeof VerifierCode];

/** Sub-codes of 0x0F (p2): which fence around a verified buffer changed. */
export const Overrun = {
  tagBefore: 1,
  tagAfter: 2,
  freeMapRegister: 3,
  paddingBefore: 4,
  paddingAfter: 5,
} as const;

/** Sub-codes of 0x1F (p2). */
export const InvalidBuffer = {
  vaBeforeMdl: 1,
  vaAfterMdl: 2,
  vaNotCacheAligned: 4,
  lengthNotCacheAligned: 5,
} as const;

/** Sub-codes of 0x13 (p2): the IRQL must equal p3 / must not exceed p3. */
export const IrqlRule = { mustEqual: 1, atMost: 2 } as const;

/** Short names, as a debugger's `!analyze` would print them. */
export const VERIFIER_CODE_NAMES: Readonly<Record<number, string>> = {
  [VerifierCode.miscellaneous]: "miscellaneous",
  [VerifierCode.commonBufferDoubleFree]: "too many common buffers freed",
  [VerifierCode.channelDoubleFree]: "too many adapter channels freed",
  [VerifierCode.mapRegistersDoubleFree]: "too many map registers freed",
  [VerifierCode.scatterGatherDoubleFree]: "too many scatter/gather lists freed",
  [VerifierCode.leftoverCommonBuffers]: "adapter put with common buffers outstanding",
  [VerifierCode.leftoverChannels]: "adapter put with adapter channels outstanding",
  [VerifierCode.leftoverMapRegisters]: "adapter put with map registers outstanding",
  [VerifierCode.leftoverScatterGatherLists]: "adapter put with scatter/gather lists outstanding",
  [VerifierCode.secondChannel]: "more than one adapter channel at once",
  [VerifierCode.tooManyMapRegistersAtOnce]: "too many map registers mapped at one time",
  [VerifierCode.notFlushed]: "adapter buffers not flushed",
  [VerifierCode.unlockedBuffer]: "DMA on an unlocked buffer",
  [VerifierCode.boundaryOverrun]: "write outside the DMA buffer",
  [VerifierCode.freeMappedRegisters]: "map registers freed while still mapped",
  [VerifierCode.wrongIrql]: "wrong IRQL",
  [VerifierCode.overMaximumMapRegisters]: "more map registers than the adapter's maximum",
  [VerifierCode.flushUnmappedBuffer]: "flush of a buffer that is not mapped",
  [VerifierCode.releasedAdapter]: "use of a released adapter",
  [VerifierCode.nullAdapter]: "NULL DMA_ADAPTER",
  [VerifierCode.addressNotInMdl]: "address not within the MDL",
  [VerifierCode.doubleMapping]: "mapping an already-mapped range",
  [VerifierCode.invalidBuffer]: "invalid DMA buffer",
  [VerifierCode.flushNeverMapped]: "flush of map registers never mapped",
  [VerifierCode.zeroLengthMap]: "zero-length map",
  [VerifierCode.notSystemMapped]: "DMA buffer not mapped in system space",
  [VerifierCode.insufficientBuffer]: "length runs past the end of the buffer",
  [VerifierCode.unknownDescriptionVersion]: "unknown DEVICE_DESCRIPTION version",
  [VerifierCode.iommuViolation]: "IOMMU detected DMA violation",
  [VerifierCode.directionMismatch]: "direction mismatch between map and unmap",
  [VerifierCode.staleRead]: "CPU read of a buffer still mapped for the device",
  [VerifierCode.syncOutsideMapping]: "flush outside the mapping",
  [VerifierCode.leakAtUnload]: "DMA resources leaked when the driver left the device",
};

export function verifierCodeName(code: number): string {
  return VERIFIER_CODE_NAMES[code] ?? `code 0x${code.toString(16)}`;
}
