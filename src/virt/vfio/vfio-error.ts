/**
 * A failed VFIO call: the errno its ioctl would return, as Node reports a failed system call
 * (`code` "EINVAL", `errno` -22, the operation's name). Every VFIO call validates first and
 * changes nothing when it throws one.
 */

/** Linux errno values (asm-generic/errno-base.h). */
export const ERRNO = {
  EPERM: 1,
  ENOENT: 2,
  EBADF: 9,
  ENOMEM: 12,
  EFAULT: 14,
  EBUSY: 16,
  EEXIST: 17,
  ENODEV: 19,
  EINVAL: 22,
  ENOTTY: 25,
  ENOSPC: 28,
} as const;
export type Errno = keyof typeof ERRNO;

export class VfioError extends Error {
  readonly code: Errno;
  /** What the ioctl returns: minus the errno. */
  readonly errno: number;
  /** The ioctl or operation, "VFIO_IOMMU_MAP_DMA". */
  readonly operation: string;

  constructor(code: Errno, operation: string, message: string) {
    super(`${operation}: ${code}: ${message}`);
    this.name = "VfioError";
    this.code = code;
    this.errno = -ERRNO[code];
    this.operation = operation;
  }
}
