/**
 * Memory the demonstration itself owns: I/O buffers it hands to drivers in IRPs (as an
 * application's locked buffers would be), and kernel data it plants for the attacks to aim at.
 * Each kind has its own frame owner tag, so MemorySnapshot can tell "the buffer the driver was
 * given changed" (expected) from "a kernel structure changed" (corruption).
 *
 * Placement is explicit where the story needs it: buffers above 4 GiB for the 32-bit device, a
 * buffer exactly 4 GiB above a planted structure for the truncation case.
 */
import { Kernel } from "../src/ddi/kernel.js";
import type { MDL } from "../src/hal/wdm/device-object.js";
import type { Machine } from "../src/machine/machine.js";
import { FrameAllocator } from "../src/platform/frame-allocator.js";
import { KernelMemory } from "../src/platform/kernel-memory.js";
import { GiB, PAGE_SIZE } from "../src/platform/page.js";
import { PlatformError } from "../src/platform/platform-error.js";

/** Frame owner of the demonstration's I/O buffers (excepted by the corruption check). */
export const IO_BUFFER_OWNER = "sample.io-buffer";
/** Frame owners of planted kernel data (never excepted). */
export const KERNEL_SECRET_OWNER = "kernel-secret";
export const KERNEL_STRUCTURE_OWNER = "kernel-structures";

const FOUR_GIB = 4 * GiB;

export interface HostBuffer {
  readonly va: number;
  readonly length: number;
  /** Physical address of the first byte (the buffer's frames, in order, in `pfns`). */
  readonly physicalAddress: number;
  readonly pfns: readonly number[];
  readonly mdl: MDL;
}

export interface Placement {
  /** Frames at or above this physical address (default 0). */
  readonly minAddress?: number;
  /** Frames at or below this physical address. */
  readonly maxAddress?: number;
  /** One physically contiguous run (default: scattered frames, as pool memory is). */
  readonly contiguous?: boolean;
  /** Byte offset of the buffer in its first page. */
  readonly offset?: number;
}

/** A page of kernel data the demonstration planted. */
export interface PlantedData {
  readonly va: number;
  readonly physicalAddress: number;
  readonly length: number;
  readonly bytes: Uint8Array;
}

export class HostMemory {
  readonly #kernel: Kernel;
  readonly #kernelMemory: KernelMemory;
  readonly #frames: FrameAllocator;
  readonly #ioOwner: number;
  readonly #ramTop: number;

  constructor(machine: Machine) {
    this.#kernel = machine.get(Kernel);
    this.#kernelMemory = machine.get(KernelMemory);
    this.#frames = machine.frames;
    this.#ioOwner = this.#frames.registerOwner(IO_BUFFER_OWNER);
    this.#ramTop = machine.memory.limit;
  }

  /** True when the machine has RAM above 4 GiB. */
  get hasHighMemory(): boolean {
    return this.#ramTop > FOUR_GIB;
  }

  /** Highest RAM address + 1. */
  get ramTop(): number {
    return this.#ramTop;
  }

  /**
   * A buffer of `length` bytes described by a built MDL (MmBuildMdlForNonPagedPool), as the I/O
   * manager hands a driver for DO_DIRECT_IO. Falls back to anywhere in RAM when the placement
   * cannot be met (a machine without memory above 4 GiB).
   */
  allocate(length: number, placement: Placement = {}): HostBuffer {
    const offset = placement.offset ?? 0;
    const pages = Math.ceil((offset + length) / PAGE_SIZE);
    const request = {
      owner: this.#ioOwner,
      contiguous: placement.contiguous ?? false,
      ...(placement.minAddress === undefined ? {} : { minAddress: placement.minAddress }),
      ...(placement.maxAddress === undefined ? {} : { maxAddress: placement.maxAddress }),
    };
    let pfns: number[];
    try {
      pfns = this.#frames.allocate(pages, request);
    } catch (error) {
      if (!(error instanceof PlatformError) || error.code !== "no-memory") throw error;
      pfns = this.#frames.allocate(pages, { owner: this.#ioOwner, contiguous: request.contiguous });
    }
    return this.#describe(pfns, offset, length);
  }

  /** A buffer on exactly the frames at [physicalAddress, +pages), or undefined if one is taken. */
  allocateAt(physicalAddress: number, length: number): HostBuffer | undefined {
    const pages = Math.ceil(length / PAGE_SIZE);
    try {
      const pfns = this.#frames.allocate(pages, {
        owner: this.#ioOwner,
        contiguous: true,
        minAddress: physicalAddress,
        maxAddress: physicalAddress + pages * PAGE_SIZE - 1,
      });
      return this.#describe(pfns, 0, length);
    } catch (error) {
      if (error instanceof PlatformError && error.code === "no-memory") return undefined;
      throw error;
    }
  }

  /** Kernel data (whole pages) under its own owner tag, filled with `bytes`. */
  plant(ownerName: string, bytes: Uint8Array, placement: Placement = {}): PlantedData {
    const owner = this.#frames.registerOwner(ownerName);
    const pages = Math.ceil(bytes.length / PAGE_SIZE);
    const pfns = this.#frames.allocate(pages, {
      owner,
      contiguous: true,
      ...(placement.minAddress === undefined ? {} : { minAddress: placement.minAddress }),
      ...(placement.maxAddress === undefined ? {} : { maxAddress: placement.maxAddress }),
    });
    const va = this.#kernelMemory.mapPages(pfns, owner);
    this.#kernel.WriteMemory(va, bytes);
    return { va, physicalAddress: pfns[0]! * PAGE_SIZE, length: bytes.length, bytes };
  }

  /** Gives planted frames back (when a placement attempt must be retried elsewhere). */
  unplant(ownerName: string, data: PlantedData): void {
    const owner = this.#frames.registerOwner(ownerName);
    const first = data.physicalAddress / PAGE_SIZE;
    const pfns = Array.from({ length: Math.ceil(data.length / PAGE_SIZE) }, (_, i) => first + i);
    this.#kernelMemory.unmapPages(data.va);
    this.#frames.free(pfns, owner);
  }

  /** A CPU store into a buffer or planted data. */
  write(va: number, bytes: Uint8Array): void {
    this.#kernel.WriteMemory(va, bytes);
  }

  /** A CPU load. */
  read(va: number, length: number): Uint8Array {
    return this.#kernel.ReadMemory(va, length);
  }

  #describe(pfns: readonly number[], offset: number, length: number): HostBuffer {
    const k = this.#kernel;
    const va = this.#kernelMemory.mapPages(pfns, this.#ioOwner) + offset;
    const mdl = k.IoAllocateMdl(va, length, false, false, undefined);
    if (mdl === undefined) throw new PlatformError("no-memory", `no MDL for a ${length}-byte buffer`);
    k.MmBuildMdlForNonPagedPool(mdl);
    return { va, length, physicalAddress: pfns[0]! * PAGE_SIZE + offset, pfns, mdl };
  }
}

/** Deterministic test data: xorshift32 from `seed`, four bytes per step. */
export function patternBytes(length: number, seed: number): Uint8Array {
  const words = new Uint32Array(Math.ceil(length / 4));
  let x = (Math.imul(seed | 0, 0x9e3779b1) + 1) >>> 0;
  if (x === 0) x = 0x9e3779b9;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    words[i] = x;
  }
  return new Uint8Array(words.buffer, 0, length);
}

/** Byte-wise equality of two buffers. */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0;
}
