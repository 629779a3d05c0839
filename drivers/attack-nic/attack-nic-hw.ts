/**
 * The attack lab NIC's hardware header: the register file of a minimal descriptor-less bus master
 * that presents itself as an Ethernet controller (the Thunderclap FPGA's disguise, with the
 * rogue board's Xilinx ids). One transfer at a time: the driver programs a logical address, a
 * length and a direction, and gets DONE (or ERROR) and an interrupt back. An optional receive
 * ring (a common buffer) takes data that arrives without a request. The device model lives with
 * the lab (samples/attack-lab/lab-nic.ts).
 */

export const ATTACK_NIC_VENDOR_ID = 0x10ee;
export const ATTACK_NIC_DEVICE_ID = 0x0666;
export const ATTACK_NIC_ID_VALUE = 0x7a11ab00;

export const NIC_REG_ID = 0x00;
export const NIC_REG_ADDRESS_LOW = 0x04;
export const NIC_REG_ADDRESS_HIGH = 0x08;
export const NIC_REG_LENGTH = 0x0c;
export const NIC_REG_CONTROL = 0x10;
/** DONE and ERROR, write 1 to clear. */
export const NIC_REG_STATUS = 0x14;
/** Write 1: abandon the current transfer. */
export const NIC_REG_RESET = 0x18;
export const NIC_REG_RING_LOW = 0x20;
export const NIC_REG_RING_HIGH = 0x24;
export const NIC_REG_RING_LENGTH = 0x28;

export const NIC_CONTROL_START = 1 << 0;
/** The device writes memory (receive); clear: it reads memory (transmit). */
export const NIC_CONTROL_TO_MEMORY = 1 << 1;
export const NIC_STATUS_DONE = 1 << 0;
export const NIC_STATUS_ERROR = 1 << 1;

/** Longest transfer the driver asks its adapter for. */
export const NIC_MAX_TRANSFER = 64 * 1024;

/** IRP_MJ_DEVICE_CONTROL code of the port's reset request (CTL_CODE(FILE_DEVICE_NETWORK, 0x800, METHOD_NEITHER, FILE_ANY_ACCESS)). */
export const IOCTL_ATTACK_NIC_RESET = (0x12 << 16) | (0x800 << 2) | 3;
/** STATUS_IO_TIMEOUT (ntstatus.h): what a request revoked by the watchdog completes with. */
export const STATUS_IO_TIMEOUT = 0xc00000b5;
