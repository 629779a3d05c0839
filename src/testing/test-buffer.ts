/**
 * A kernel buffer a test hands to a driver: whole frames of its own owner, mapped into system
 * space, with a built MDL over the bytes the test asked for (what MmBuildMdlForNonPagedPool leaves),
 * ready to go into an IRP. Its own owner makes it exact in two places: a MemorySnapshot can except
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
  /** All frames at or above this physical address (4 GiB: out of a 32-bit device's reach). */
  readonly minAddress?: number;
  /** All frames at or below this physical address (inclusive). */
  readonly maxAddress?: number;
  /** One physically contiguous run (default: frames scattered as pool pages are). */
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
  readonly #mappingVa: number;
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
      throw new PlatformError("bad-length", `test buffer fill must be a Uint8Array of at most ${length} bytes`);
    }
    this.#kernel = services.kernel;
    this.#mm = services.mm;
    this.#frames = services.frames;
    this.owner = services.frames.registerOwner(name);
    this.pfns = services.frames.allocate(Math.ceil((offset + length) / PAGE_SIZE), {
      owner: this.owner,
      contiguous: options.contiguous ?? false,
      minAddress: options.minAddress,
      maxAddress: options.maxAddress,
    });
    this.#mappingVa = services.kernel.mapPages(this.pfns, this.owner);
    this.va = this.#mappingVa + offset;
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

  /** Frees the MDL, the mapping and the frames. The kit calls it at teardown. */
  free(): void {
    if (this.#freed) return;
    if (this.mdl.locked) throw new PlatformError("bad-state", `test buffer ${this.#frames.ownerName(this.owner)}: its MDL is still locked`);
    if (!this.mdl.freed) this.#mm.freeMdl(this.mdl);
    this.#kernel.unmapPages(this.#mappingVa);
    this.#frames.free(this.pfns, this.owner);
    this.#freed = true;
  }

  #check(offset: number, length: number): void {
    if (this.#freed) throw new PlatformError("bad-state", "the test buffer was freed");
    checkLength(offset, "test buffer offset", this.length);
    checkLength(length, "test buffer access length", this.length - offset);
  }
}
