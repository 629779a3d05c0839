/**
 * The DMA engine's hardware header: global registers, one register block per channel, the
 * 32-byte copy descriptor and its status word (the chip's datasheet, as docs/dma-copy.md gives
 * it). A driver carries its own copy of the chip's constants; it never includes the device model.
 */

/** PCI\VEN_1234&DEV_0DE0. */
export const DMAE_VENDOR_ID = 0x1234;
export const DMAE_DEVICE_ID = 0x0de0;

/** Global registers. */
export const DMAE_REG_VERSION = 0x00;
export const DMAE_REG_CHANNEL_COUNT = 0x04;
export const DMAE_REG_MAX_TRANSFER = 0x08;
/** One bit per channel; write 1 to clear. */
export const DMAE_REG_INTERRUPT_STATUS = 0x0c;

/** Channel n's block starts at DMAE_CHANNEL_BASE + n * DMAE_CHANNEL_STRIDE. */
export const DMAE_CHANNEL_BASE = 0x100;
export const DMAE_CHANNEL_STRIDE = 0x100;
export const DMAE_CH_RING_BASE_LOW = 0x00;
export const DMAE_CH_RING_BASE_HIGH = 0x04;
export const DMAE_CH_RING_SIZE = 0x08;
export const DMAE_CH_HEAD = 0x0c;
export const DMAE_CH_TAIL = 0x10;
export const DMAE_CH_CONTROL = 0x14;
export const DMAE_CH_STATUS = 0x18;
export const DMAE_CH_COMPLETED = 0x1c;
export const DMAE_CH_ERROR_ADDRESS_LOW = 0x20;
export const DMAE_CH_ERROR_ADDRESS_HIGH = 0x24;

export const DMAE_CONTROL_ENABLE = 1 << 0;
export const DMAE_CONTROL_INTERRUPT_ENABLE = 1 << 1;
/** Self-clearing: HEAD = TAIL = 0, status cleared, work in flight abandoned. */
export const DMAE_CONTROL_RESET = 1 << 2;

export const DMAE_STATUS_ACTIVE = 1 << 0;
export const DMAE_STATUS_HALTED = 1 << 1;
export const DMAE_STATUS_DMA_ERROR = 1 << 2;
export const DMAE_STATUS_DESCRIPTOR_ERROR = 1 << 3;

/** The copy descriptor: 32 bytes. */
export const DMAE_DESC_SIZE = 32;
export const DMAE_DESC_SOURCE = 0x00;
export const DMAE_DESC_DESTINATION = 0x08;
export const DMAE_DESC_LENGTH = 0x10;
export const DMAE_DESC_CONTROL = 0x14;
export const DMAE_DESC_STATUS = 0x18;
export const DMAE_DESC_COOKIE = 0x1c;

export const DMAE_DESC_CONTROL_INTERRUPT = 1 << 0;
export const DMAE_DESC_STATUS_DONE = 1 << 0;
export const DMAE_DESC_STATUS_ERROR = 1 << 1;
