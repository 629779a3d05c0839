/**
 * The one error type the simulated hardware throws for bad input (a bad address, an unknown
 * handle, a double free). It always leaves the structure it was thrown from unchanged; the DDI
 * above turns it into an NTSTATUS or a BugCheck.
 */
export type PlatformErrorCode =
  | "bad-address"
  | "bad-length"
  | "out-of-range"
  | "no-memory"
  | "not-owner"
  | "double-free"
  | "not-mapped"
  | "already-mapped"
  | "bad-handle"
  | "bad-state";

export class PlatformError extends Error {
  constructor(
    readonly code: PlatformErrorCode,
    message: string,
  ) {
    super(message);
    this.name = "PlatformError";
  }
}
