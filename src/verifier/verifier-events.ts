/**
 * The verifier's events on the machine bus (declaration merging into MachineEvents). Payloads are
 * plain data, as every exporter expects.
 */

/** Where a leaked or offending allocation was made, for reports (dma-debug keeps a stack per entry). */
export interface AllocationSite {
  /** "common buffer", "map registers", "scatter/gather list", "adapter channel" or "adapter". */
  readonly kind: string;
  /** What it is: an address, a register count, a list's element count. */
  readonly detail: string;
  /** `new Error().stack` at the allocating call; "" when stacks are off. */
  readonly stack: string;
}

/** One violation, as bug check 0xE6 would report it. */
export interface DmaViolationEvent {
  /** Parameter 1 (VerifierCode). */
  readonly code: number;
  /** The four parameters of the bug check, parameter 1 first. */
  readonly parameters: readonly [number, number, number, number];
  /** The code's short name ("too many map registers freed"). */
  readonly name: string;
  /** What happened, in a sentence. */
  readonly explanation: string;
  /** The DMA_OPERATIONS member (or "IoGetDmaAdapter", "device", "cpu", "iommu", "pnp") it was caught in. */
  readonly member: string;
  /** AdapterObject.id, -1 when there is no adapter. */
  readonly adapter: number;
  readonly requesterId: number;
  /** Service name of the driver, "" when unknown. */
  readonly driver: string;
  /** Stack of the call that committed it ("" when stacks are off or it came from hardware). */
  readonly stack: string;
  /** For leaks and leftovers: what is outstanding and where it was allocated. */
  readonly allocations: readonly AllocationSite[];
}

declare module "../trace/machine-events.js" {
  interface MachineEvents {
    "verifier.violation": [DmaViolationEvent];
  }
}
