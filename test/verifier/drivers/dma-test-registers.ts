/** The register block of the verifier's test device, shared by its drivers and its model. */
export const DMA_TEST_ID_VALUE = 0x7e57dada;

export const TestRegister = {
  id: 0x00,
  addressLow: 0x04,
  addressHigh: 0x08,
  length: 0x0c,
  command: 0x10,
  /** Commands done and not yet acknowledged (read); any write acknowledges them. */
  status: 0x14,
  seed: 0x18,
  /** Transfers that failed. */
  errors: 0x1c,
} as const;

/** WRITE_MEMORY: the device writes its pattern to memory. READ_MEMORY: it reads memory. */
export const TestCommand = { writeMemory: 1, readMemory: 2 } as const;

/** IOCTL codes of the test drivers: each runs the driver's `control` step. */
export const IOCTL_DMA_TEST_RUN = 0x22e000;
