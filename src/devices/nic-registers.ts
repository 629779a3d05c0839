/**
 * The register map of the e1000-like NIC: offsets and bits of the Intel 8254x family (PCI/PCI-X
 * Family of Gigabit Ethernet Controllers Software Developer's Manual, section 13, "Register
 * Descriptions"; the same names as Linux e1000_hw.h and QEMU e1000_regs.h). Pure data, no
 * imports: a driver's header can mirror it line by line.
 *
 * The one addition is IcrBit.dmaError (bit 5, reserved on the 8254x): the simulated NIC reports
 * a failed DMA there, where real hardware would only set Received Master Abort in its PCI status
 * register.
 */

/** Register offsets in BAR 0 (manual table 13-2). */
export const NicRegister = {
  ctrl: 0x0000,
  status: 0x0008,
  icr: 0x00c0,
  itr: 0x00c4,
  ics: 0x00c8,
  ims: 0x00d0,
  imc: 0x00d8,
  rctl: 0x0100,
  tctl: 0x0400,
  rdbal: 0x2800,
  rdbah: 0x2804,
  rdlen: 0x2808,
  rdh: 0x2810,
  rdt: 0x2818,
  tdbal: 0x3800,
  tdbah: 0x3804,
  tdlen: 0x3808,
  tdh: 0x3810,
  tdt: 0x3818,
  /** Missed Packets Count: frames dropped for want of a receive descriptor (clear on read). */
  mpc: 0x4010,
  /** Good Packets Received Count (clear on read). */
  gprc: 0x4074,
  /** Good Packets Transmitted Count (clear on read). */
  gptc: 0x4080,
  /** Total Packets Received (clear on read): received plus missed. */
  tpr: 0x40d0,
  /** Total Packets Transmitted (clear on read). */
  tpt: 0x40d4,
  /** Receive Address Low/High 0: the station MAC address. */
  ral0: 0x5400,
  rah0: 0x5404,
} as const;

/** CTRL bits. */
export const CtrlBit = {
  /** Set Link Up. */
  slu: 1 << 6,
  /** Device Reset: self-clearing. */
  rst: 1 << 26,
} as const;

/** STATUS bits. */
export const StatusBit = {
  fullDuplex: 1 << 0,
  linkUp: 1 << 1,
  /** Speed field (bits 7:6) = 10b: 1000 Mb/s. */
  speed1000: 0b10 << 6,
} as const;

/** Interrupt cause bits of ICR, ICS, IMS and IMC. */
export const IcrBit = {
  /** Transmit Descriptor Written back (a descriptor with RS completed). */
  txdw: 1 << 0,
  /** Transmit Queue Empty (TDH reached TDT). */
  txqe: 1 << 1,
  /** Link Status Change. */
  lsc: 1 << 2,
  /** Simulation addition: a DMA of this NIC failed (IOMMU fault, unassigned address, BME off). */
  dmaError: 1 << 5,
  /** Receiver Overrun: a frame arrived with no free receive descriptor (counted in MPC). */
  rxo: 1 << 6,
  /** Receiver Timer interrupt: a frame was stored. */
  rxt0: 1 << 7,
} as const;

/** RCTL bits. */
export const RctlBit = {
  enable: 1 << 1,
  /** Unicast and multicast promiscuous: accepted and ignored (there is no address filter). */
  upe: 1 << 3,
  mpe: 1 << 4,
  /** Broadcast Accept Mode: accepted and ignored. */
  bam: 1 << 15,
  /** Buffer size field (bits 17:16): 00 = 2048, 01 = 1024, 10 = 512, 11 = 256 bytes. */
  bsizeShift: 16,
  bsizeMask: 0b11 << 16,
  /** Buffer Size Extension: multiplies the BSIZE values 01..11 by 16 (16384, 8192, 4096). */
  bsex: 1 << 25,
  /** Strip Ethernet CRC: accepted and ignored (the wire carries no FCS). */
  secrc: 1 << 26,
} as const;

/** TCTL bits. */
export const TctlBit = {
  enable: 1 << 1,
  /** Pad Short Packets to 64 bytes with the FCS (60 bytes on the wire here). */
  psp: 1 << 3,
} as const;

/** Legacy transmit descriptor (manual 3.3.3): 16 bytes. */
export const TxDescriptor = {
  size: 16,
  /** Buffer address, 64 bits. */
  address: 0,
  /** Bytes in this buffer, 16 bits. */
  length: 8,
  cso: 10,
  cmd: 11,
  status: 12,
  css: 13,
  special: 14,
} as const;

/** TDESC.CMD bits. */
export const TxCmd = {
  /** End Of Packet: the last descriptor of a frame. */
  eop: 0x01,
  /** Insert FCS: accepted; the simulated wire carries frames without FCS. */
  ifcs: 0x02,
  /** Report Status: write DD back when done. */
  rs: 0x08,
} as const;

/** TDESC.STATUS bits. */
export const TxStatus = {
  /** Descriptor Done. */
  dd: 0x01,
} as const;

/** Legacy receive descriptor (manual 3.2.3): 16 bytes. */
export const RxDescriptor = {
  size: 16,
  address: 0,
  length: 8,
  checksum: 10,
  status: 12,
  errors: 13,
  special: 14,
} as const;

/** RDESC.STATUS bits. */
export const RxStatus = {
  dd: 0x01,
  eop: 0x02,
} as const;

/** Descriptor rings are a multiple of 128 bytes (8 descriptors); TDLEN/RDLEN bits 6:0 read as 0. */
export const RING_LENGTH_ALIGNMENT = 128;
/** ITR counts in units of 256 ns. */
export const ITR_UNIT_NS = 256;
/** Largest frame the NIC sends or takes (the 8254x's 16 KiB jumbo limit, without FCS). */
export const MAX_FRAME_BYTES = 16_384;
/** Shortest Ethernet frame without FCS; TCTL.PSP pads to it. */
export const MIN_FRAME_BYTES = 60;
