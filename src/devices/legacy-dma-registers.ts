/**
 * The register map of the legacy bus master: a made-up device in the spirit of the ISA 8237
 * channels and the IDE bus-master interface (and of QEMU's "edu" teaching device): one address
 * register, one length register, a direction bit, a start bit, a status register. Pure data.
 */

/** Register offsets in BAR 0. */
export const LegacyDmaRegister = {
  /** Bus address of the transfer: 32 bits, all the address lines this device drives. */
  address: 0x00,
  /**
   * Not implemented: reads 0, writes are dropped. A driver written for a 64-bit register pair
   * writes the high dword here and loses it, as the device has no upper address lines.
   */
  addressHigh: 0x04,
  /** Bytes to move, 1..bufferSize. */
  length: 0x08,
  /** START and DIRECTION; reads back the last value written, START cleared when the transfer ends. */
  control: 0x0c,
  /** BUSY, DONE, DMA_ERROR, LENGTH_ERROR; write 1 to clear DONE and the error bits. */
  status: 0x10,
  /** Bytes the last transfer moved before it ended (all of them unless DMA_ERROR). */
  bytesDone: 0x14,
} as const;

export const LegacyDmaControl = {
  start: 1 << 0,
  /** 0: memory -> device buffer (the device reads RAM). 1: device buffer -> memory (it writes RAM). */
  toMemory: 1 << 1,
} as const;

export const LegacyDmaStatus = {
  busy: 1 << 0,
  done: 1 << 1,
  /** The DMA failed (IOMMU fault, address not RAM, bus mastering off); see BYTES_DONE. */
  dmaError: 1 << 2,
  /** LENGTH was 0 or larger than the device buffer: nothing moved. */
  lengthError: 1 << 3,
} as const;

/** The address counter is 32 bits wide: it wraps from 0xffffffff to 0. */
export const LEGACY_ADDRESS_SPACE = 2 ** 32;
