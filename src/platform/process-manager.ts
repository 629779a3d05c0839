/**
 * Creates and tracks user processes, each with its own address space (PsCreateSystemProcess and
 * friends, reduced to what DMA needs: page tables, committed memory and pinning).
 */
import { inject, injectable } from "inversify";
import { CpuMemory } from "./cpu-memory.js";
import { FrameAllocator } from "./frame-allocator.js";
import { PlatformError } from "./platform-error.js";
import { ProcessAddressSpace, type ProcessOptions } from "./process-address-space.js";

@injectable()
export class ProcessManager {
  readonly #frames: FrameAllocator;
  readonly #cpu: CpuMemory;
  readonly #processes = new Map<number, ProcessAddressSpace>();
  #nextId = 4;

  constructor(@inject(FrameAllocator) frames: FrameAllocator, @inject(CpuMemory) cpu: CpuMemory) {
    this.#frames = frames;
    this.#cpu = cpu;
  }

  /** A new process; ids grow in steps of 4 like Windows process ids and are never reused. */
  create(name: string, options: ProcessOptions = {}): ProcessAddressSpace {
    if (typeof name !== "string" || name.length === 0) {
      throw new PlatformError("bad-handle", "a process needs a non-empty name");
    }
    const limit = options.lockedMemoryLimit;
    if (
      limit !== undefined &&
      limit !== Number.POSITIVE_INFINITY &&
      (!Number.isSafeInteger(limit) || limit < 0)
    ) {
      throw new PlatformError("bad-length", `locked-memory limit ${String(limit)} must be a byte count`);
    }
    const id = this.#nextId;
    this.#nextId += 4;
    const process = new ProcessAddressSpace(id, name, options, this.#frames, this.#cpu, (p) =>
      this.#processes.delete(p.id),
    );
    this.#processes.set(id, process);
    return process;
  }

  /** The live process with this id; "bad-handle" if none. */
  get(id: number): ProcessAddressSpace {
    const process = this.#processes.get(id);
    if (process === undefined) throw new PlatformError("bad-handle", `no live process with id ${String(id)}`);
    return process;
  }

  /** Live processes in creation order. */
  get processes(): readonly ProcessAddressSpace[] {
    return [...this.#processes.values()];
  }
}
