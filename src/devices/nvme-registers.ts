/**
 * The register map and queue entry layouts of the NVMe-like disk controller, from the NVM Express
 * Base Specification 1.4: section 3.1 (controller registers), 4.2 (submission queue entry), 4.6
 * (completion queue entry), 6.9 and 6.15 (Read, Write) and 4.6.1.2 (status codes). Pure data, no
 * imports: a driver's header can mirror it.
 *
 * Simplified: there is no admin command set. The admin queue registers (AQA, ASQ, ACQ) describe
 * the one queue pair, queue 0, and it carries NVM I/O commands (Flush, Write, Read) on
 * namespace 1. Only 4 KiB memory pages (CC.MPS = 0) and pin-based interrupts.
 */

/** Controller register offsets in BAR 0 (NVMe 1.4 figure 78). 64-bit registers are two dwords. */
export const NvmeRegister = {
  /** Controller Capabilities, low and high dword (read-only). */
  capLow: 0x00,
  capHigh: 0x04,
  /** Version: 1.4.0. */
  vs: 0x08,
  /** Interrupt Mask Set / Clear (pin-based: bit 0). */
  intms: 0x0c,
  intmc: 0x10,
  /** Controller Configuration. */
  cc: 0x14,
  /** Controller Status. */
  csts: 0x1c,
  /** Admin Queue Attributes: ASQS bits 11:0, ACQS bits 27:16, both zero-based entry counts. */
  aqa: 0x24,
  /** Submission queue base (4 KiB aligned), low and high dword. */
  asqLow: 0x28,
  asqHigh: 0x2c,
  /** Completion queue base (4 KiB aligned), low and high dword. */
  acqLow: 0x30,
  acqHigh: 0x34,
  /** Queue 0 submission tail doorbell (CAP.DSTRD = 0: doorbells 4 bytes apart). */
  sq0Tail: 0x1000,
  /** Queue 0 completion head doorbell. */
  cq0Head: 0x1004,
} as const;

/** CAP fields. */
export const NvmeCap = {
  /** Maximum Queue Entries Supported, zero-based: 4096 entries. */
  mqes: 0x0fff,
  /** Contiguous Queues Required. */
  cqr: 1 << 16,
  /** Timeout (bits 31:24) in 500 ms units. */
  timeoutShift: 24,
  /** CAP high dword bit 5 = CAP bit 37: the NVM command set. */
  cssNvmHigh: 1 << 5,
} as const;

export const NVME_VERSION_1_4 = 0x0001_0400;

/** CC fields. */
export const NvmeCc = {
  enable: 1 << 0,
  /** Memory Page Size (bits 10:7): 2^(12 + MPS); only 0 (4 KiB) is supported. */
  mpsShift: 7,
  mpsMask: 0xf << 7,
  /** Shutdown Notification (bits 15:14). */
  shnMask: 0b11 << 14,
} as const;

/** CSTS fields. */
export const NvmeCsts = {
  ready: 1 << 0,
  /** Controller Fatal Status: a queue fetch or completion post failed; reset with CC.EN = 0. */
  fatal: 1 << 1,
  /** Shutdown Status (bits 3:2) = 10b: shutdown processing complete. */
  shutdownComplete: 0b10 << 2,
} as const;

/** Command opcodes of the NVM command set. */
export const NvmeOpcode = {
  flush: 0x00,
  write: 0x01,
  read: 0x02,
} as const;

/** Submission queue entry: 64 bytes, little-endian dwords (NVMe 1.4 figure 105). */
export const SubmissionEntry = {
  size: 64,
  /** DW0: opcode bits 7:0, PSDT bits 15:14 (must be 0: PRPs), command identifier bits 31:16. */
  dw0: 0,
  nsid: 4,
  prp1: 24,
  prp2: 32,
  /** DW10-11: Starting LBA, 64 bits. */
  slba: 40,
  /** DW12: Number of Logical Blocks, zero-based, bits 15:0. */
  dw12: 48,
} as const;

/** Completion queue entry: 16 bytes (NVMe 1.4 figure 121). */
export const CompletionEntry = {
  size: 16,
  /** DW0: command specific (0 here). */
  dw0: 0,
  /** DW2: SQ head pointer bits 15:0, SQ identifier bits 31:16. */
  dw2: 8,
  /** DW3: command identifier bits 15:0, phase tag bit 16, status field bits 31:17. */
  dw3: 12,
} as const;

/** Generic command status codes (status code type 0). */
export const NvmeStatus = {
  success: 0x00,
  invalidOpcode: 0x01,
  invalidField: 0x02,
  /** The data of the command could not be moved: the DMA failed. */
  dataTransferError: 0x04,
  invalidNamespace: 0x0b,
  prpOffsetInvalid: 0x13,
  lbaOutOfRange: 0x80,
} as const;

/** DW3 bit 31: Do Not Retry. */
export const COMPLETION_DNR = 1 << 31;
export const NVME_SECTOR_SIZE = 512;
export const NVME_PAGE_SIZE = 4096;
/** The one namespace. */
export const NVME_NAMESPACE_ID = 1;
