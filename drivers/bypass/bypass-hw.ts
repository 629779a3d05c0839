/**
 * The bypass driver's hardware header: the two chips it supports. The legacy bus master (one
 * 32-bit address register; the driver writes a high dword as if there were a second one) and the
 * NVMe-like controller (queue 0 carries NVM I/O; NVM Express 1.4).
 */

export const LDMA_VENDOR_ID = 0x1234;
export const LDMA_DEVICE_ID = 0x0dda;
export const LDMA_REG_ADDRESS = 0x00;
export const LDMA_REG_ADDRESS_HIGH = 0x04;
export const LDMA_REG_LENGTH = 0x08;
export const LDMA_REG_CONTROL = 0x0c;
export const LDMA_REG_STATUS = 0x10;
export const LDMA_CONTROL_START = 1 << 0;
export const LDMA_CONTROL_TO_MEMORY = 1 << 1;
export const LDMA_STATUS_DONE = 1 << 1;
export const LDMA_STATUS_DMA_ERROR = 1 << 2;
export const LDMA_STATUS_LENGTH_ERROR = 1 << 3;
export const LDMA_STATUS_CLEAR = LDMA_STATUS_DONE | LDMA_STATUS_DMA_ERROR | LDMA_STATUS_LENGTH_ERROR;
export const LDMA_BUFFER_SIZE = 64 * 1024;

export const NVME_VENDOR_ID = 0x1b36;
export const NVME_DEVICE_ID = 0x0010;
export const NVME_REG_VS = 0x08;
export const NVME_REG_INTMS = 0x0c;
export const NVME_REG_INTMC = 0x10;
export const NVME_REG_CC = 0x14;
export const NVME_REG_CSTS = 0x1c;
export const NVME_REG_AQA = 0x24;
export const NVME_REG_ASQ = 0x28;
export const NVME_REG_ACQ = 0x30;
export const NVME_REG_SQ0TDBL = 0x1000;
export const NVME_REG_CQ0HDBL = 0x1004;
/** VS of an NVMe 1.4 controller: how the driver tells the chips apart. */
export const NVME_VS_1_4 = 0x0001_0400;
export const NVME_CC_EN = 1 << 0;
export const NVME_CSTS_RDY = 1 << 0;
export const NVME_CSTS_CFS = 1 << 1;
export const NVME_CMD_WRITE = 0x01;
export const NVME_CMD_READ = 0x02;
export const NVME_SQE_SIZE = 64;
export const NVME_CQE_SIZE = 16;
export const NVME_CQE_DW3 = 12;
export const NVME_CQE_PHASE = 1 << 16;
export const NVME_CQE_STATUS_SHIFT = 17;
export const NVME_SECTOR_SIZE = 512;
export const NVME_MAX_TRANSFER = 1024 * 1024;
