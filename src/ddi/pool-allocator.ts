/**
 * The executive's rules for pool blocks and contiguous memory on top of KernelMemory: tags, the
 * checks ExFreePool makes (BAD_POOL_CALLER, WDK "Bug Check 0xC2") and those of
 * MmFreeContiguousMemory. The Kernel checks the IRQL and the routine-specific arguments first.
 */
import { inject, injectable } from "inversify";
import type { PVOID } from "../hal/wdm/dma-operations.js";
import { FrameAllocator } from "../platform/frame-allocator.js";
import { isKernelAddress, KernelMemory } from "../platform/kernel-memory.js";
import { formatAddress, PAGE_SIZE } from "../platform/page.js";
import { PlatformError } from "../platform/platform-error.js";
import { BAD_POOL_CALLER, BadPoolCaller, bugCheck, MEMORY_MANAGEMENT, MmRule } from "./bug-check-codes.js";
import { addressParameter, convertingPlatformErrors, isAddress, isCount } from "./ddi-arguments.js";
import type { POOL_TAG } from "./pool-type.js";

/** Zeroes written per CPU store when a block is cleared. */
const ZERO_CHUNK = new Uint8Array(16 * PAGE_SIZE);

export interface ContiguousRequest {
  readonly lowest: number;
  readonly highest: number;
  /** 0, or a power-of-two number of pages the run must not cross. */
  readonly boundary: number;
  /** False for CacheType MmNonCached / MmWriteCombined. */
  readonly cached: boolean;
}

@injectable()
export class PoolAllocator {
  readonly #memory: KernelMemory;
  readonly #contiguousOwner: number;

  constructor(@inject(KernelMemory) memory: KernelMemory, @inject(FrameAllocator) frames: FrameAllocator) {
    this.#memory = memory;
    this.#contiguousOwner = frames.registerOwner("contiguous-memory");
  }

  /**
   * A pool tag in display order ("Test" for C's 'tseT' = 0x74736554), or undefined when it is
   * neither a ULONG nor one to four printable characters.
   */
  static tagOf(tag: POOL_TAG): string | undefined {
    if (typeof tag === "string") return /^[\x20-\x7e]{1,4}$/.test(tag) ? tag : undefined;
    if (!Number.isInteger(tag) || tag < 0 || tag > 0xffffffff) return undefined;
    let text = "";
    for (let shift = 0; shift < 32; shift += 8) {
      const code = Math.floor(tag / 2 ** shift) % 256;
      if (code !== 0) text += String.fromCharCode(code);
    }
    return text;
  }

  /** A display-order tag back as the ULONG C holds (for bug-check parameters). */
  static tagValue(tag: string): number {
    let value = 0;
    for (let i = 0; i < tag.length; i++) value += tag.charCodeAt(i) * 2 ** (8 * i);
    return value;
  }

  /** A nonpaged block, zeroed on request; NULL (0) for zero bytes or when memory is short. */
  allocate(bytes: number, tag: string, zeroed: boolean): PVOID {
    if (!isCount(bytes) || bytes === 0) return 0;
    const va = convertingPlatformErrors(
      () => this.#memory.allocateNonPaged(bytes, { owner: this.#memory.poolOwner, tag }),
      () => 0,
    );
    if (va !== 0 && zeroed) {
      for (let done = 0; done < bytes; done += ZERO_CHUNK.length) {
        this.#memory.write(va + done, ZERO_CHUNK.subarray(0, Math.min(ZERO_CHUNK.length, bytes - done)));
      }
    }
    return va;
  }

  /**
   * Frees a pool block. BAD_POOL_CALLER for an address that is not a pool block (0x46), a block
   * freed already (0x07), or a tag other than the allocation's (0x0A; tag 0 skips the check).
   */
  free(va: PVOID, tag: POOL_TAG, routine: string): void {
    const allocation = isAddress(va) ? this.#memory.allocationAt(va) : undefined;
    if (allocation === undefined) {
      const freedTwice = isKernelAddress(va) && this.#wasFreed(va);
      throw bugCheck(
        BAD_POOL_CALLER,
        [freedTwice ? BadPoolCaller.freedTwice : BadPoolCaller.invalidAddress, addressParameter(va), 0, 0],
        `${routine}(${formatAddress(va)}): ${freedTwice ? "the block was already freed" : "not a pool address"}`,
      );
    }
    if (allocation.va !== va || (allocation.kind !== "pool" && allocation.kind !== "small-pool")) {
      throw bugCheck(
        BAD_POOL_CALLER,
        [BadPoolCaller.invalidAddress, va, 0, 0],
        `${routine}(${formatAddress(va)}): not the start of a pool block (${allocation.kind} at ${formatAddress(allocation.va)})`,
      );
    }
    const given = PoolAllocator.tagOf(tag);
    if (tag !== 0 && given !== allocation.tag) {
      throw bugCheck(
        BAD_POOL_CALLER,
        [
          BadPoolCaller.wrongTag,
          va,
          PoolAllocator.tagValue(allocation.tag),
          PoolAllocator.tagValue(given ?? ""),
        ],
        `${routine}(${formatAddress(va)}, "${given ?? String(tag)}") of a block tagged "${allocation.tag}"`,
      );
    }
    this.#memory.free(va);
  }

  /** One physically contiguous run of `bytes` in [lowest, highest]; NULL (0) when none is free. */
  allocateContiguous(bytes: number, request: ContiguousRequest): PVOID {
    return convertingPlatformErrors(
      () =>
        this.#memory.allocateContiguous(bytes, {
          owner: this.#contiguousOwner,
          minAddress: request.lowest,
          maxAddress: request.highest,
          alignmentFrames: request.boundary === 0 ? 1 : request.boundary / PAGE_SIZE,
          tag: "MmCm",
          cached: request.cached,
        }),
      () => 0,
    );
  }

  /**
   * Frees contiguous memory: `va` must be what the allocation returned, and `bytes` (when the
   * routine takes it) its size; MEMORY_MANAGEMENT otherwise, freeing twice included.
   */
  freeContiguous(va: PVOID, bytes: number | undefined, routine: string): void {
    const allocation = isAddress(va) ? this.#memory.allocationAt(va) : undefined;
    if (allocation === undefined || allocation.va !== va || allocation.kind !== "contiguous") {
      throw bugCheck(
        MEMORY_MANAGEMENT,
        [MmRule.notContiguousMemory, addressParameter(va), 0, 0],
        `${routine}(${formatAddress(va)}): not an allocation of MmAllocateContiguousMemory (freed already?)`,
      );
    }
    if (bytes !== undefined && bytes !== allocation.size) {
      throw bugCheck(
        MEMORY_MANAGEMENT,
        [MmRule.notContiguousMemory, va, isCount(bytes) ? bytes : 0, allocation.size],
        `${routine}(${formatAddress(va)}, ${String(bytes)}): the allocation has ${allocation.size} bytes`,
      );
    }
    this.#memory.free(va);
  }

  /**
   * True when `va` started a block that was freed. KernelMemory answers only through free(),
   * which throws "double-free" for such an address and, as nothing is allocated at `va` (the
   * caller checked), cannot free anything.
   */
  #wasFreed(va: PVOID): boolean {
    try {
      this.#memory.free(va);
    } catch (error) {
      return error instanceof PlatformError && error.code === "double-free";
    }
    return false;
  }
}
