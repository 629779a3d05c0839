/**
 * The register map and descriptor format of the DMA engine: a made-up memory-to-memory copy
 * engine in the shape of Intel's I/OAT "Crystal Beach" channels (one register block per channel,
 * a ring of 64-byte-aligned descriptors in host memory, a doorbell, completion write-back and a
 * per-channel interrupt bit) reduced to copies. Pure data: drivers mirror what they need.
 *
 * All registers are 32-bit, little-endian. A 64-bit address is two dwords, low first.
 */

/** Global registers, at the start of BAR 0. */
export const DmaEngineRegister = {
  /** Read only: VERSION (major << 16 | minor). */
  version: 0x00,
  /** Read only: number of channels. */
  channelCount: 0x04,
  /** Read only: the most bytes one descriptor may move. */
  maxTransfer: 0x08,
  /** One bit per channel whose descriptor asked for an interrupt or that halted; write 1 to clear. */
  interruptStatus: 0x0c,
} as const;

/** Channel n's registers live at CHANNEL_BASE + n * CHANNEL_STRIDE + offset. */
export const CHANNEL_BASE = 0x100;
export const CHANNEL_STRIDE = 0x100;

/** Per-channel register offsets (relative to the channel's block). */
export const ChannelRegister = {
  /** Bus address of the descriptor ring (64-byte aligned), low and high dword. */
  ringBaseLow: 0x00,
  ringBaseHigh: 0x04,
  /** Descriptors in the ring: a power of two in [2, MAX_RING_DESCRIPTORS]. */
  ringSize: 0x08,
  /** Read only: the next descriptor the channel will execute. */
  head: 0x0c,
  /** Doorbell: software writes the index one past the last valid descriptor. */
  tail: 0x10,
  /** ENABLE, INTERRUPT_ENABLE, RESET. */
  control: 0x14,
  /** Read only: ACTIVE, HALTED and the error bits. */
  status: 0x18,
  /** Read only: descriptors completed since the last reset (wraps at 2^32). */
  completed: 0x1c,
  /** Read only: where the DMA that halted the channel stopped, low and high dword. */
  errorAddressLow: 0x20,
  errorAddressHigh: 0x24,
  /** Read only: index of the descriptor that halted the channel. */
  errorDescriptor: 0x28,
} as const;

export const ChannelControl = {
  /** The channel fetches descriptors while HEAD != TAIL. */
  enable: 1 << 0,
  /** Descriptors with INTERRUPT set, and halts, raise the device interrupt. */
  interruptEnable: 1 << 1,
  /** Self-clearing: abandons work in flight, HEAD = TAIL = 0, status and error registers cleared. */
  reset: 1 << 2,
} as const;

export const ChannelStatus = {
  /** A descriptor is being executed. */
  active: 1 << 0,
  /** The channel stopped at an error; only RESET restarts it. */
  halted: 1 << 1,
  /** A descriptor fetch, source read, destination write or status write-back failed. */
  dmaError: 1 << 2,
  /** A descriptor had a zero or too large LENGTH, or the ring registers were invalid. */
  descriptorError: 1 << 3,
} as const;

/** A descriptor: 32 bytes, little-endian, in the ring at ringBase + index * DESCRIPTOR_SIZE. */
export const DESCRIPTOR_SIZE = 32;
export const Descriptor = {
  /** 64-bit bus address the engine reads from. */
  source: 0x00,
  /** 64-bit bus address the engine writes to. */
  destination: 0x08,
  /** Bytes to copy, 1..maxTransfer. */
  length: 0x10,
  /** DescriptorControl bits. */
  control: 0x14,
  /** Written back by the engine: DescriptorStatus. Software clears it before handing over. */
  status: 0x18,
  /** Software's own (a cookie): the engine never touches it. */
  cookie: 0x1c,
} as const;

export const DescriptorControl = {
  /** Raise the channel's interrupt bit when this descriptor completes. */
  interrupt: 1 << 0,
} as const;

export const DescriptorStatus = {
  done: 1 << 0,
  error: 1 << 1,
} as const;

/** The error code in bits 15:8 of a failed descriptor's STATUS. */
export const DescriptorError = {
  sourceRead: 1,
  destinationWrite: 2,
  badLength: 3,
} as const;
export const DESCRIPTOR_ERROR_SHIFT = 8;

export const DMA_ENGINE_VERSION = 0x0001_0000;
export const MAX_CHANNELS = 8;
export const MAX_RING_DESCRIPTORS = 4096;
/** Ring base alignment (a descriptor never straddles a page). */
export const RING_ALIGNMENT = 64;
/** Default bytes per descriptor (I/OAT's XFERCAP of 1 MiB). */
export const DEFAULT_MAX_TRANSFER = 1024 * 1024;
