/**
 * The disk's hardware header: the NVMe registers, queue entry layouts and status codes this driver
 * uses (NVM Express Base Specification 1.4, sections 3.1, 4.2, 4.3, 4.6), named as in the
 * specification. The simulated controller has no admin command set: queue 0 carries NVM I/O.
 */

/** PCI\VEN_1B36&DEV_0010: QEMU's NVMe controller. */
export const NVME_VENDOR_ID = 0x1b36;
export const NVME_DEVICE_ID = 0x0010;

/** Controller registers in BAR 0. */
export const NVME_REG_CAP = 0x00;
export const NVME_REG_VS = 0x08;
export const NVME_REG_INTMS = 0x0c;
export const NVME_REG_INTMC = 0x10;
export const NVME_REG_CC = 0x14;
export const NVME_REG_CSTS = 0x1c;
export const NVME_REG_AQA = 0x24;
export const NVME_REG_ASQ = 0x28;
export const NVME_REG_ACQ = 0x30;
/** Doorbells of queue 0 (CAP.DSTRD = 0): submission tail, completion head. */
export const NVME_REG_SQ0TDBL = 0x1000;
export const NVME_REG_CQ0HDBL = 0x1004;

export const NVME_CC_EN = 1 << 0;
/** CC.IOSQES = 6 (64-byte entries), CC.IOCQES = 4 (16-byte entries). */
export const NVME_CC_IOSQES_64 = 6 << 16;
export const NVME_CC_IOCQES_16 = 4 << 20;
export const NVME_CSTS_RDY = 1 << 0;
export const NVME_CSTS_CFS = 1 << 1;

/** NVM command set opcodes. */
export const NVME_CMD_FLUSH = 0x00;
export const NVME_CMD_WRITE = 0x01;
export const NVME_CMD_READ = 0x02;

/** Submission queue entry (64 bytes): dword offsets in bytes. */
export const NVME_SQE_SIZE = 64;
export const NVME_SQE_CDW0 = 0;
export const NVME_SQE_NSID = 4;
export const NVME_SQE_PRP1 = 24;
export const NVME_SQE_PRP2 = 32;
export const NVME_SQE_SLBA = 40;
export const NVME_SQE_CDW12 = 48;

/** Completion queue entry (16 bytes): DW3 holds the command id, the phase tag and the status. */
export const NVME_CQE_SIZE = 16;
export const NVME_CQE_DW3 = 12;
export const NVME_CQE_PHASE = 1 << 16;
export const NVME_CQE_STATUS_SHIFT = 17;
export const NVME_CQE_SC_MASK = 0xff;

/** Generic status codes. */
export const NVME_SC_SUCCESS = 0x00;
export const NVME_SC_DATA_TRANSFER_ERROR = 0x04;

export const NVME_NAMESPACE_ID = 1;
export const NVME_SECTOR_SIZE = 512;
export const NVME_PAGE_SIZE = 4096;
/** The controller's MDTS: one command moves at most 1 MiB. */
export const NVME_MAX_TRANSFER = 1024 * 1024;
