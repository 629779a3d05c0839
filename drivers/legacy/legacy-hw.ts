/**
 * The legacy bus master's hardware header: one 32-bit address register, one length register, a
 * control and a status register, and an on-board buffer. No scatter/gather, 32 address lines: the
 * register that would hold the upper half of an address does not exist on this chip.
 */

/** PCI\VEN_1234&DEV_0DDA. */
export const LDMA_VENDOR_ID = 0x1234;
export const LDMA_DEVICE_ID = 0x0dda;

export const LDMA_REG_ADDRESS = 0x00;
/** Not implemented by the chip: reads 0, writes are lost. */
export const LDMA_REG_ADDRESS_HIGH = 0x04;
export const LDMA_REG_LENGTH = 0x08;
export const LDMA_REG_CONTROL = 0x0c;
export const LDMA_REG_STATUS = 0x10;
export const LDMA_REG_BYTES_DONE = 0x14;

export const LDMA_CONTROL_START = 1 << 0;
/** Direction: set = the chip writes memory (a read request); clear = it reads memory. */
export const LDMA_CONTROL_TO_MEMORY = 1 << 1;

export const LDMA_STATUS_BUSY = 1 << 0;
export const LDMA_STATUS_DONE = 1 << 1;
export const LDMA_STATUS_DMA_ERROR = 1 << 2;
export const LDMA_STATUS_LENGTH_ERROR = 1 << 3;
/** Write 1 to clear. */
export const LDMA_STATUS_CLEAR = LDMA_STATUS_DONE | LDMA_STATUS_DMA_ERROR | LDMA_STATUS_LENGTH_ERROR;

/** The on-board buffer: the most one transfer moves. */
export const LDMA_BUFFER_SIZE = 64 * 1024;
/** 32 address lines. */
export const LDMA_ADDRESS_LIMIT = 2 ** 32;
