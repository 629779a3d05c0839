/**
 * A kernel buffer a test hands to a driver: whole pages of nonpaged memory on frames of its own
 * owner, with a built MDL over the bytes the test asked for (what MmBuildMdlForNonPagedPool
 * leaves), ready to go into an IRP. Frames are scattered as pool pages are; a buffer with address
 * bounds, or `contiguous`, is one physically contiguous run (MmAllocateContiguousMemory's way). Its own owner makes it exact in two places: a MemorySnapshot can except
 * just this buffer, and the leak check knows these frames are the kit's to free.
 */
import type { FrameAllocator } from "../platform/frame-allocator.js";
import type { KernelMemory } from "../platform/kernel-memory.js";
import type { Mdl } from "../platform/mdl.js";
import type { MemoryManager } from "../platform/memory-manager.js";
import { checkLength, PAGE_SIZE } from "../platform/page.js";
import { PlatformError } from "../platform/platform-error.js";

export interface TestBufferOptions {
  /** Initial contents: bytes from the start, or one byte value everywhere (default zeros). */
  readonly fill?: Uint8Array | number;
  /** Where the buffer starts in its first page (default 0): sub-page buffers share their pages. */
  readonly offset?: number;
  /** All frames at or above this physical address (4 GiB: out of a 32-bit device's reach). Implies contiguous. */
  readonly minAddress?: number;
  /** All frames at or below this physical address (inclusive). Implies contiguous. */
  readonly maxAddress?: number;
  /** One physically contiguous run (default: scattered frames). */
  readonly contiguous?: boolean;
}

/** The kit's prefix of frame owners: "test-buffer:1", "test-buffer:2" ... */
export const TEST_BUFFER_OWNER = "test-buffer";

export class TestBuffer {
  /** Kernel virtual address of the first byte. */
  readonly va: number;
  readonly length: number;
  /** Built over [va, va + length): resident, system-mapped, sourceIsNonPagedPool. */
  readonly mdl: Mdl;
  /** Frame owner id of this buffer alone. */
  readonly owner: number;
  readonly pfns: readonly number[];
  readonly #kernel: KernelMemory;
  readonly #mm: MemoryManager;
  readonly #frames: FrameAllocator;
  readonly #allocationVa: number;
  #freed = false;

  constructor(
    name: string,
    length: number,
    options: TestBufferOptions,
    services: { kernel: KernelMemory; mm: MemoryManager; frames: FrameAllocator },
  ) {
    checkLength(length, "test buffer length", 2 ** 32);
    if (length === 0) throw new PlatformError("bad-length", "a test buffer needs at least one byte");
    const offset = checkLength(options.offset ?? 0, "test buffer offset", PAGE_SIZE - 1);
    const fill = options.fill ?? 0;
    if (typeof fill === "number") checkLength(fill, "test buffer fill byte", 0xff);
    else if (!(fill instanceof Uint8Array) || fill.length > length) {
      throw new PlatformError(
        "bad-length",
        `test buffer fill must be a Uint8Array of at most ${length} bytes`,
      );
    }
    this.#kernel = services.kernel;
    this.#mm = services.mm;
    this.#frames = services.frames;
    this.owner = services.frames.registerOwner(name);
    const bytes = Math.ceil((offset + length) / PAGE_SIZE) * PAGE_SIZE;
    const bounded = options.minAddress !== undefined || options.maxAddress !== undefined;
    this.#allocationVa =
      bounded || options.contiguous === true
        ? services.kernel.allocateContiguous(bytes, {
            owner: this.owner,
            minAddress: options.minAddress,
            maxAddress: options.maxAddress ?? Number.MAX_SAFE_INTEGER,
            tag: "Test",
          })
        : services.kernel.allocateNonPaged(bytes, { owner: this.owner, tag: "Test" });
    this.pfns = services.kernel.allocationAt(this.#allocationVa)!.pfns;
    this.va = this.#allocationVa + offset;
    this.length = length;
    this.write(typeof fill === "number" ? new Uint8Array(length).fill(fill) : fill);
    this.mdl = services.mm.allocateMdl(this.va, length);
    services.mm.buildForNonPagedPool(this.mdl);
  }

  get freed(): boolean {
    return this.#freed;
  }

  /** The bytes as the CPU sees them (through its cache on a non-coherent machine). */
  read(offset = 0, length = this.length - offset): Uint8Array {
    this.#check(offset, length);
    const out = new Uint8Array(length);
    this.#kernel.read(this.va + offset, out);
    return out;
  }

  /** A CPU store into the buffer. */
  write(bytes: Uint8Array, offset = 0): void {
    this.#check(offset, bytes.length);
    this.#kernel.write(this.va + offset, bytes);
  }

  /** The physical address of byte `offset`. */
  physicalAddress(offset = 0): number {
    this.#check(offset, 1);
    return this.#kernel.physicalAddress(this.va + offset);
  }

  /** Frees the MDL and the memory. The kit calls it at teardown. */
  free(): void {
    if (this.#freed) return;
    if (this.mdl.locked)
      throw new PlatformError(
        "bad-state",
        `test buffer ${this.#frames.ownerName(this.owner)}: its MDL is still locked`,
      );
    if (!this.mdl.freed) this.#mm.freeMdl(this.mdl);
    this.#kernel.free(this.#allocationVa);
    this.#freed = true;
  }

  #check(offset: number, length: number): void {
    if (this.#freed) throw new PlatformError("bad-state", "the test buffer was freed");
    checkLength(offset, "test buffer offset", this.length);
    checkLength(length, "test buffer access length", this.length - offset);
  }
}
