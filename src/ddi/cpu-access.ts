/**
 * What a C pointer dereference does, for the DDI's ReadMemory/WriteMemory/Rtl*Memory: a CPU load
 * or store at a virtual address, through the CPU cache when the machine is not coherent. Kernel
 * addresses are always reachable; user addresses only in the context of the process attached
 * with KeStackAttachProcess, and only at IRQL <= APC_LEVEL (user memory is pageable). Anything
 * else is the bug check Windows raises for it.
 */
import { inject, injectable } from "inversify";
import { BugCheck, IRQL_NOT_LESS_OR_EQUAL } from "../hal/wdm/bug-check.js";
import type { PHYSICAL_ADDRESS, PVOID } from "../hal/wdm/dma-operations.js";
import { APC_LEVEL } from "../hal/wdm/irql.js";
import { isKernelAddress, KernelMemory } from "../platform/kernel-memory.js";
import { formatAddress, PAGE_SIZE } from "../platform/page.js";
import { type ProcessAddressSpace, USER_SPACE_END } from "../platform/process-address-space.js";
import { Scheduler } from "../platform/scheduler.js";
import {
  bugCheck,
  INVALID_PROCESS_ATTACH_ATTEMPT,
  INVALID_PROCESS_DETACH_ATTEMPT,
  PAGE_FAULT_IN_NONPAGED_AREA,
} from "./bug-check-codes.js";
import { addressParameter, convertingPlatformErrors, isAddress } from "./ddi-arguments.js";
import { IoSpace } from "./io-space.js";
import type { KAPC_STATE, PEPROCESS } from "./kapc-state.js";

const ZERO_CHUNK = new Uint8Array(16 * PAGE_SIZE);

type AddressSpace = KernelMemory | ProcessAddressSpace;

@injectable()
export class CpuAccess {
  readonly #memory: KernelMemory;
  readonly #scheduler: Scheduler;
  readonly #ioSpace: IoSpace;
  /** KeStackAttachProcess nesting: the innermost attach is last. */
  readonly #attached: KAPC_STATE[] = [];

  constructor(
    @inject(KernelMemory) memory: KernelMemory,
    @inject(Scheduler) scheduler: Scheduler,
    @inject(IoSpace) ioSpace: IoSpace,
  ) {
    this.#memory = memory;
    this.#scheduler = scheduler;
    this.#ioSpace = ioSpace;
  }

  /** The process whose user addresses are current, if any. */
  get currentProcess(): PEPROCESS | undefined {
    return this.#attached.at(-1)?.Process;
  }

  read(va: PVOID, out: Uint8Array): void {
    this.#space(va, out.length, false).read(va, out);
  }

  write(va: PVOID, src: Uint8Array): void {
    this.#space(va, src.length, true).write(va, src);
  }

  zero(va: PVOID, length: number): void {
    const space = this.#space(va, length, true);
    for (let done = 0; done < length; done += ZERO_CHUNK.length) {
      space.write(va + done, ZERO_CHUNK.subarray(0, Math.min(ZERO_CHUNK.length, length - done)));
    }
  }

  /** MmGetPhysicalAddress: registers, kernel memory or the attached process's pages; 0 if unmapped. */
  physicalAddress(va: PVOID): PHYSICAL_ADDRESS {
    if (!isAddress(va)) return 0;
    const register = this.#ioSpace.physicalAddress(va);
    if (register !== undefined) return register;
    return convertingPlatformErrors(
      () =>
        isKernelAddress(va) ? this.#memory.physicalAddress(va) : (this.currentProcess?.translate(va) ?? 0),
      () => 0,
    );
  }

  attach(process: PEPROCESS, state: KAPC_STATE): void {
    if (process.destroyed || state.Process !== undefined) {
      throw bugCheck(
        INVALID_PROCESS_ATTACH_ATTEMPT,
        [process.id, this.#attached.length, 0, 0],
        "KeStackAttachProcess: the process is gone, or the KAPC_STATE is already in use",
      );
    }
    state.Process = process;
    this.#attached.push(state);
  }

  detach(state: KAPC_STATE): void {
    if (this.#attached.at(-1) !== state) {
      throw bugCheck(
        INVALID_PROCESS_DETACH_ATTEMPT,
        [this.#attached.length, 0, 0, 0],
        "KeUnstackDetachProcess with a KAPC_STATE that is not the innermost attach",
      );
    }
    this.#attached.pop();
    state.Process = undefined;
  }

  #space(va: PVOID, length: number, write: boolean): AddressSpace {
    if (isAddress(va) && !isKernelAddress(va) && va + length <= USER_SPACE_END) {
      const process = this.currentProcess;
      if (process?.isMapped(va, length)) {
        const irql = this.#scheduler.irql;
        if (irql > APC_LEVEL) {
          throw new BugCheck(
            IRQL_NOT_LESS_OR_EQUAL,
            [va, irql, write ? 1 : 0, 0],
            `pageable user address ${formatAddress(va)} touched at IRQL ${irql}`,
          );
        }
        return process;
      }
    } else if (isAddress(va) && this.#memory.isMapped(va, length)) {
      return this.#memory;
    }
    const registers = this.#ioSpace.contains(va) ? " memory (device registers take READ_REGISTER_ULONG)" : "";
    throw bugCheck(
      PAGE_FAULT_IN_NONPAGED_AREA,
      [addressParameter(va), write ? 1 : 0, 0, 2],
      `${write ? "write to" : "read from"} ${formatAddress(va)}+${String(length)}, which is not mapped${registers}`,
    );
  }
}
