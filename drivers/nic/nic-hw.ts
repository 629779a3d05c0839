/**
 * The NIC's hardware header: the subset of the Intel 8254x register map this driver programs,
 * under the names of Linux e1000_hw.h (PCI/PCI-X Family of Gigabit Ethernet Controllers Software
 * Developer's Manual, section 13). A driver carries its own copy of the chip's constants; it never
 * includes the device model.
 */

/** PCI\VEN_8086&DEV_100E: the 82540EM. */
export const E1000_VENDOR_ID = 0x8086;
export const E1000_DEV_ID_82540EM = 0x100e;

/** Register offsets in BAR 0. */
export const E1000_CTRL = 0x0000;
export const E1000_STATUS = 0x0008;
export const E1000_ICR = 0x00c0;
export const E1000_ITR = 0x00c4;
export const E1000_IMS = 0x00d0;
export const E1000_IMC = 0x00d8;
export const E1000_RCTL = 0x0100;
export const E1000_TCTL = 0x0400;
export const E1000_RDBAL = 0x2800;
export const E1000_RDBAH = 0x2804;
export const E1000_RDLEN = 0x2808;
export const E1000_RDH = 0x2810;
export const E1000_RDT = 0x2818;
export const E1000_TDBAL = 0x3800;
export const E1000_TDBAH = 0x3804;
export const E1000_TDLEN = 0x3808;
export const E1000_TDH = 0x3810;
export const E1000_TDT = 0x3818;
export const E1000_MPC = 0x4010;
export const E1000_RAL0 = 0x5400;
export const E1000_RAH0 = 0x5404;

export const E1000_CTRL_SLU = 1 << 6;
export const E1000_CTRL_RST = 1 << 26;
export const E1000_STATUS_LU = 1 << 1;

/** Interrupt causes (ICR, IMS, IMC). DMAERR is the simulated chip's report of a failed DMA. */
export const E1000_ICR_TXDW = 1 << 0;
export const E1000_ICR_TXQE = 1 << 1;
export const E1000_ICR_LSC = 1 << 2;
export const E1000_ICR_DMAERR = 1 << 5;
export const E1000_ICR_RXO = 1 << 6;
export const E1000_ICR_RXT0 = 1 << 7;

export const E1000_RCTL_EN = 1 << 1;
export const E1000_RCTL_BAM = 1 << 15;
/** BSIZE 00b: 2048-byte receive buffers. */
export const E1000_RCTL_SZ_2048 = 0;
export const E1000_RCTL_SECRC = 1 << 26;
export const E1000_TCTL_EN = 1 << 1;
export const E1000_TCTL_PSP = 1 << 3;

/** Legacy descriptors (manual 3.2.3, 3.3.3): 16 bytes, buffer address at 0, length at 8. */
export const E1000_DESC_SIZE = 16;
export const E1000_DESC_ADDR = 0;
export const E1000_DESC_LENGTH = 8;
export const E1000_TXD_CMD = 11;
export const E1000_TXD_STATUS = 12;
export const E1000_RXD_STATUS = 12;
export const E1000_RXD_ERRORS = 13;

export const E1000_TXD_CMD_EOP = 0x01;
export const E1000_TXD_CMD_IFCS = 0x02;
export const E1000_TXD_CMD_RS = 0x08;
export const E1000_TXD_STAT_DD = 0x01;
export const E1000_RXD_STAT_DD = 0x01;
export const E1000_RXD_STAT_EOP = 0x02;

/** Rings are a multiple of 128 bytes; ITR counts 256 ns units. */
export const E1000_RING_ALIGN = 128;
export const E1000_ITR_UNIT_NS = 256;
/** The chip's largest frame (16 KiB jumbo), and the receive buffer size RCTL selects. */
export const E1000_MAX_FRAME = 16_384;
export const E1000_RX_BUFFER_SIZE = 2048;
/** One TX descriptor carries at most this many bytes (the 16-bit length field). */
export const E1000_MAX_TXD_BYTES = 0xffff;
