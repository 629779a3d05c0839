/**
 * Pool, MDL and I/O-space bookkeeping for the leak check, as Driver Verifier's pool tracking keeps
 * it (reference section 6: "pool allocations not freed at unload"). Small pool blocks share pages,
 * so frame counts cannot see a leaked 64-byte block; the tracker sees every block instead.
 *
 * It wraps the Kernel's allocation routines on the machine's one Kernel instance (drivers resolve
 * the same singleton), recording what each returned and forgetting what a successful free gave
 * back. The routines themselves run unchanged: validation, IRQL checks and bug checks are theirs.
 */
import type { Kernel } from "../ddi/kernel.js";
import type { Mdl } from "../platform/mdl.js";
import { formatAddress } from "../platform/page.js";
import type { Leak } from "./leak-check.js";

export class KernelAllocationTracker {
  /** Live pool blocks: address -> tag. */
  readonly pool = new Map<number, string>();
  readonly mdls = new Set<Mdl>();
  /** Live MmMapIoSpace mappings: address -> length. */
  readonly ioSpace = new Map<number, number>();

  constructor(kernel: Kernel) {
    const allocateWithTag = kernel.ExAllocatePoolWithTag.bind(kernel);
    const allocate2 = kernel.ExAllocatePool2.bind(kernel);
    const free = kernel.ExFreePoolWithTag.bind(kernel);
    const allocateMdl = kernel.IoAllocateMdl.bind(kernel);
    const freeMdl = kernel.IoFreeMdl.bind(kernel);
    const mapIoSpace = kernel.MmMapIoSpace.bind(kernel);
    const unmapIoSpace = kernel.MmUnmapIoSpace.bind(kernel);
    kernel.ExAllocatePoolWithTag = (type, bytes, tag) => this.#block(allocateWithTag(type, bytes, tag), tag);
    kernel.ExAllocatePool2 = (flags, bytes, tag) => this.#block(allocate2(flags, bytes, tag), tag);
    kernel.ExFreePoolWithTag = (p, tag) => {
      free(p, tag);
      this.pool.delete(p);
    };
    kernel.IoAllocateMdl = (...args) => {
      const mdl = allocateMdl(...args);
      if (mdl !== undefined) this.mdls.add(mdl);
      return mdl;
    };
    kernel.IoFreeMdl = (mdl) => {
      freeMdl(mdl);
      this.mdls.delete(mdl);
    };
    kernel.MmMapIoSpace = (address, bytes, cacheType) => {
      const va = mapIoSpace(address, bytes, cacheType);
      if (va !== 0) this.ioSpace.set(va, bytes);
      return va;
    };
    kernel.MmUnmapIoSpace = (va, bytes) => {
      unmapIoSpace(va, bytes);
      this.ioSpace.delete(va);
    };
  }

  leaks(): Leak[] {
    const leaks: Leak[] = [];
    if (this.pool.size > 0) {
      const blocks = [...this.pool].map(([va, tag]) => `"${tag}" at ${formatAddress(va)}`);
      leaks.push({
        kind: "pool",
        count: this.pool.size,
        message: `${this.pool.size} pool block(s) not freed: ${list(blocks)}`,
      });
    }
    if (this.mdls.size > 0) {
      const ids = [...this.mdls].map((mdl) => `MDL ${mdl.id} over ${formatAddress(mdl.virtualAddress)}`);
      leaks.push({
        kind: "mdls",
        count: this.mdls.size,
        message: `${this.mdls.size} MDL(s) not freed with IoFreeMdl: ${list(ids)}`,
      });
    }
    if (this.ioSpace.size > 0) {
      const maps = [...this.ioSpace].map(([va, bytes]) => `${bytes} bytes at ${formatAddress(va)}`);
      leaks.push({
        kind: "io-space",
        count: this.ioSpace.size,
        message: `${this.ioSpace.size} register mapping(s) not unmapped with MmUnmapIoSpace: ${list(maps)}`,
      });
    }
    return leaks;
  }

  #block(va: number, tag: string | number): number {
    if (va !== 0) this.pool.set(va, tagText(tag));
    return va;
  }
}

/** A pool tag as Windows tools print it: four characters, low byte first for a ULONG. */
function tagText(tag: string | number): string {
  if (typeof tag === "string") return tag;
  let text = "";
  for (let shift = 0; shift < 32; shift += 8) text += String.fromCharCode(Math.floor(tag / 2 ** shift) % 256);
  return text;
}

function list(items: readonly string[]): string {
  return items.length <= 5
    ? items.join(", ")
    : `${items.slice(0, 5).join(", ")} and ${items.length - 5} more`;
}
