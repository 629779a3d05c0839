/**
 * The DMA fuzzer's harness: one machine per sequence (a remapping mode, the verifier off, in log
 * mode or in bug check mode), two bus masters, and a reference model of what the driver holds.
 * Each command is a DDI call, made at the IRQL its WDK page requires or a wrong one; its outcome
 * (a status, a callback, a BugCheck) is observed and the model follows what really happened.
 *
 * After every step:
 * 1. nothing escaped but a returned status or a BugCheck, and a call the model calls valid did
 *    not bug check (with the verifier on: no false alarm);
 * 2. the HAL's books equal the model's (adapters, common buffers, lists, channels, queued requests):
 *    a refused call changed nothing;
 * 3. frames owned by others (bystander pages planted at the start, and every owner outside the
 *    DMA path) are unchanged (MemorySnapshot);
 * 4. with remapping, each device's IOMMU domain maps exactly what the model says, page by page
 *    (IommuDomain.lookup: live pages to their frames with the direction's permission, pages
 *    unmapped since to nothing), and devices without an open adapter have no domain.
 * After the teardown (everything the model holds given back, the adapters put, time run until
 * the lazy flush queue drained): Hal.resources() all zero and every owner's frames back to their
 * count before the sequence, the HAL's bounce pools (kept once made, as ReactOS keeps its map
 * register pool) and the IOMMU's context tables (kept per bus) aside.
 */
import { IoManager } from "../../src/ddi/io-manager.js";
import { Kernel } from "../../src/ddi/kernel.js";
import { NonPagedPool } from "../../src/ddi/pool-type.js";
import { Hal } from "../../src/hal/hal.js";
import { BugCheck } from "../../src/hal/wdm/bug-check.js";
import {
  type DEVICE_DESCRIPTION,
  DEVICE_DESCRIPTION_VERSION2,
  DEVICE_DESCRIPTION_VERSION3,
  PCIBus,
  zeroedDeviceDescription,
} from "../../src/hal/wdm/device-description.js";
import type { DEVICE_OBJECT, MDL } from "../../src/hal/wdm/device-object.js";
import type { DMA_ADAPTER, DMA_OPERATIONS } from "../../src/hal/wdm/dma-operations.js";
import { type MAP_REGISTER_BASE, MmCached } from "../../src/hal/wdm/dma-v3-types.js";
import {
  DeallocateObject,
  DeallocateObjectKeepRegisters,
  KeepObject,
} from "../../src/hal/wdm/io-allocation-action.js";
import { DISPATCH_LEVEL, HIGH_LEVEL, PASSIVE_LEVEL } from "../../src/hal/wdm/irql.js";
import { NT_SUCCESS } from "../../src/hal/wdm/ntstatus.js";
import type { SCATTER_GATHER_LIST } from "../../src/hal/wdm/scatter-gather-list.js";
import { IoPermission } from "../../src/iommu/io-page-table.js";
import { IommuDomain } from "../../src/iommu/iommu-domain.js";
import { Machine } from "../../src/machine/machine.js";
import type { RemappingMode } from "../../src/machine/machine-options.js";
import { FrameAllocator } from "../../src/platform/frame-allocator.js";
import { KernelMemory } from "../../src/platform/kernel-memory.js";
import type { Mdl } from "../../src/platform/mdl.js";
import { MemorySnapshot } from "../../src/platform/memory-snapshot.js";
import { GiB, PAGE_SIZE, spanPages } from "../../src/platform/page.js";
import { PciDevice } from "../../src/platform/pci-device.js";
import { DmaVerifier } from "../../src/verifier/dma-verifier.js";
import { verifierModule } from "../../src/verifier/verifier-module.js";
import type { Command, IrqlChoice } from "./fuzz-commands.js";

export type FuzzVerifier = "off" | "log" | "bugcheck";

/** What a run did, summed over sequences (reported in docs/reliability.md). */
export interface FuzzTally {
  sequences: number;
  steps: number;
  /** Steps the model called valid (they must not bug check). */
  valid: number;
  bugChecks: number;
  failedStatuses: number;
  skipped: number;
}

export function emptyTally(): FuzzTally {
  return { sequences: 0, steps: 0, valid: 0, bugChecks: 0, failedStatuses: 0, skipped: 0 };
}

/** A bus master that moves bytes when the fuzzer says so. */
class FuzzDevice extends PciDevice {
  constructor(index: number) {
    super(
      { name: `fuzz-${index}`, vendorId: 0x1af4, deviceId: 0x10f8 + index, classCode: 0xff0000 },
      { barSize: 4096 },
    );
  }

  read(address: number, length: number): boolean {
    return this.port.read(address, new Uint8Array(length)).ok;
  }

  write(address: number, bytes: Uint8Array): boolean {
    return this.port.write(address, bytes).ok;
  }

  protected registerValue(): number {
    return 0;
  }

  protected onRegisterWrite(): void {}
}

/** The descriptions `open` picks from: valid ones of each kind, then ones IoGetDmaAdapter refuses. */
function descriptionFor(index: number): DEVICE_DESCRIPTION {
  const base: DEVICE_DESCRIPTION = {
    ...zeroedDeviceDescription(),
    Version: DEVICE_DESCRIPTION_VERSION2,
    Master: true,
    ScatterGather: true,
    InterfaceType: PCIBus,
    MaximumLength: 64 * 1024,
  };
  switch (index) {
    case 0:
      return { ...base, Dma64BitAddresses: true };
    case 1:
      return { ...base, Dma32BitAddresses: true };
    case 2:
      return { ...base, ScatterGather: false, Dma32BitAddresses: true };
    case 3:
      return { ...base, Version: DEVICE_DESCRIPTION_VERSION3, DmaAddressWidth: 28 };
    case 4:
      return { ...base, Version: DEVICE_DESCRIPTION_VERSION3, DmaAddressWidth: 64, MaximumLength: 8192 };
    case 5:
      return { ...base, Version: 4 };
    case 6:
      return { ...base, Master: false };
    default:
      return { ...base, MaximumLength: 2 ** 32 };
  }
}

interface FuzzBuffer {
  /** What ExAllocatePoolWithTag returned; the buffer starts `va - base` bytes into it. */
  readonly base: number;
  readonly va: number;
  readonly mdl: Mdl;
  readonly length: number;
  built: boolean;
}

interface FuzzCommonBuffer {
  readonly va: number;
  readonly la: number;
  readonly length: number;
}

interface FuzzPiece {
  readonly buffer: FuzzBuffer;
  readonly offset: number;
  readonly length: number;
  readonly write: boolean;
  readonly la: number;
}

interface FuzzGrant {
  readonly base: MAP_REGISTER_BASE | undefined;
  readonly count: number;
  /** "none": MapRegisterBase NULL, for pieces a device that needs no registers maps without a grant. */
  owner: "channel" | "driver" | "none";
  readonly pieces: FuzzPiece[];
}

interface FuzzList {
  readonly list: SCATTER_GATHER_LIST;
  readonly buffer: FuzzBuffer;
  readonly offset: number;
  readonly length: number;
  readonly write: boolean;
  /** The last bytes a device wrote over all of it, to find after the put. */
  written: Uint8Array | undefined;
}

interface FuzzAdapter {
  readonly adapter: DMA_ADAPTER;
  readonly ops: DMA_OPERATIONS;
  readonly device: FuzzDevice;
  readonly pdo: DEVICE_OBJECT;
  readonly maxRegisters: number;
  readonly scatterGather: boolean;
  /** DMA_OPERATIONS version: the V3 members need 3. */
  readonly tableVersion: number;
  released: boolean;
  channel: "idle" | "held";
  /** Registers kept with the channel (KeepObject). */
  channelGrant: FuzzGrant | undefined;
  pending: number;
  /** AllocateAdapterChannel requests queued (the device object's one wait block is busy). */
  pendingChannels: number;
  /** Buffers of list requests still queued: they must stay allocated. */
  readonly waiting: FuzzBuffer[];
  readonly commonBuffers: FuzzCommonBuffer[];
  readonly freedCommonBuffers: FuzzCommonBuffer[];
  readonly grants: FuzzGrant[];
  readonly freedGrants: FuzzGrant[];
  /** Pieces mapped with MapRegisterBase NULL. */
  readonly direct: FuzzGrant;
  readonly lists: FuzzList[];
  readonly freedLists: FuzzList[];
}

/** Thrown when an invariant breaks: fast-check shrinks the sequence that led there. */
export class InvariantError extends Error {
  override name = "InvariantError";
}

const BYSTANDER_PAGES = 32;
/** Owners whose frames the DMA path may change. */
const CHANGING_OWNERS = [
  "iommu",
  "nonpaged-pool",
  "hal.swiotlb",
  "hal.common-buffer",
  "hal.sglist",
  "hal.bounce",
];
/** Owners whose frames the machine keeps once made: the HAL's bounce pools, the IOMMU's tables. */
const KEPT_OWNERS = ["hal.bounce", "iommu"];

export class DmaFuzzHarness {
  readonly machine: Machine;
  readonly #mode: RemappingMode;
  readonly #verifier: FuzzVerifier;
  readonly #tally: FuzzTally;
  readonly #kernel: Kernel;
  readonly #kernelMemory: KernelMemory;
  readonly #hal: Hal;
  readonly #frames: FrameAllocator;
  readonly #devices: FuzzDevice[] = [];
  readonly #pdos: DEVICE_OBJECT[] = [];
  readonly #adapters: FuzzAdapter[] = [];
  readonly #buffers: FuzzBuffer[] = [];
  readonly #bystanders: number[];
  readonly #bystanderOwner: number;
  readonly #snapshot: MemorySnapshot;
  readonly #baseline: Map<number, number>;
  /** Logical pages unmapped since, per requester: they must translate to nothing unless live again. */
  readonly #dead = new Map<number, Set<number>>();
  readonly #trace: string[] = [];
  readonly #dmaVerifier: DmaVerifier | undefined;
  /** The last #at call was dropped by the log mode verifier: nothing happened. */
  #dropped = false;

  constructor(mode: RemappingMode, verifier: FuzzVerifier, tally: FuzzTally) {
    this.#mode = mode;
    this.#verifier = verifier;
    this.#tally = tally;
    this.machine = new Machine(
      { memory: 6 * GiB, remapping: mode, mapRegisterPoolPages: 32, seed: 7 },
      verifier === "off" ? [] : [verifierModule({ mode: verifier, maxViolations: 64 })],
    );
    this.#kernel = this.machine.get(Kernel);
    this.#kernelMemory = this.machine.get(KernelMemory);
    this.#hal = this.machine.get(Hal);
    this.#frames = this.machine.get(FrameAllocator);
    this.#dmaVerifier = verifier === "off" ? undefined : this.machine.get(DmaVerifier);
    for (let i = 0; i < 2; i++) {
      const device = new FuzzDevice(i);
      this.machine.pci.attach(device, { busMaster: true });
      this.#devices.push(device);
    }
    for (const node of this.machine.get(IoManager).enumerate()) this.#pdos.push(node.pdo);
    // The small pool keeps its pages once made; make them before the baseline (64 KiB of room).
    const warm = Array.from({ length: 64 }, () =>
      this.#kernel.ExAllocatePoolWithTag(NonPagedPool, 2048, "Warm"),
    );
    for (const va of warm) this.#kernel.ExFreePool(va);
    this.#bystanderOwner = this.#frames.registerOwner("fuzz.bystander");
    this.#bystanders = this.#frames.allocate(BYSTANDER_PAGES, { owner: this.#bystanderOwner });
    for (const pfn of this.#bystanders) this.machine.memory.fill(pfn * PAGE_SIZE, PAGE_SIZE, (pfn * 7) % 251);
    const changing = [0, ...CHANGING_OWNERS.map((name) => this.#owner(name))];
    this.#snapshot = MemorySnapshot.take(this.machine.memory, this.#frames, { exceptOwners: changing });
    this.#baseline = this.#ownerCounts();
  }

  /** Runs the setup, every command with its checks, then the teardown and its checks. */
  run(commands: readonly Command[]): void {
    this.#tally.sequences++;
    this.#step({ kind: "open", device: 0, description: 0 });
    this.#step({ kind: "open", device: 1, description: 2 });
    this.#step({ kind: "buffer", length: 3 * PAGE_SIZE, offset: 0, build: true });
    this.#step({ kind: "buffer", length: 700, offset: 1000, build: true });
    for (const command of commands) this.#step(command);
    this.#teardown();
  }

  // ------------------------------------------------------------------ one step

  #step(command: Command): void {
    this.#trace.push(JSON.stringify(command));
    this.#tally.steps++;
    this.#valid = false;
    try {
      this.#execute(command);
    } catch (error) {
      if (error instanceof BugCheck) {
        this.#tally.bugChecks++;
        if (this.#valid) this.#fail(`a valid call bug-checked: ${error.message}`);
      } else if (error instanceof InvariantError) {
        throw error;
      } else {
        this.#fail(
          `${command.kind} threw ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`,
        );
      }
    }
    if (this.#valid) this.#tally.valid++;
    this.#check();
  }

  /** Whether the model calls the running command valid: decided before the DDI call, which must then not bug check. */
  #valid = false;

  /** Executes one command; returns what the model said of it (for the harness's own bookkeeping). */
  #execute(command: Command): boolean {
    switch (command.kind) {
      case "open":
        return this.#open(command.device, command.description);
      case "put":
        return this.#put(command.adapter, command.irql);
      case "buffer":
        return this.#buffer(command.length, command.offset, command.build);
      case "freeBuffer":
        return this.#freeBuffer(command.buffer);
      case "allocateCommon":
        return this.#allocateCommon(command);
      case "freeCommon":
        return this.#freeCommon(command);
      case "getList":
        return this.#getList(command);
      case "putList":
        return this.#putList(command);
      case "channel":
        return this.#channel(command);
      case "map":
        return this.#map(command);
      case "flush":
        return this.#flush(command);
      case "freeRegisters":
        return this.#freeRegisters(command);
      case "freeChannel":
        return this.#freeChannel(command.adapter, command.irql);
      case "dma":
        return this.#dma(command.adapter, command.target, command.seed);
      case "rogue":
        return this.#rogue(command);
      case "cpuRead":
        return this.#cpuRead(command.buffer);
      case "time":
        this.machine.scheduler.runFor(command.ns);
        return true;
      case "junk":
        return this.#junk(command);
    }
  }

  // ------------------------------------------------------------------ commands

  #open(device: number, description: number): boolean {
    const pdo = this.#pdos[device % this.#pdos.length]!;
    const valid = description <= 4;
    this.#valid = valid;
    const result = this.#kernel.IoGetDmaAdapter(pdo, descriptionFor(description));
    if (result.Adapter === undefined) {
      if (valid) this.#fail(`IoGetDmaAdapter refused valid description ${description}`);
      return valid;
    }
    if (!valid) this.#fail(`IoGetDmaAdapter accepted invalid description ${description}`);
    this.#adapters.push({
      adapter: result.Adapter,
      ops: result.Adapter.DmaOperations,
      device: this.#devices[device % this.#devices.length]!,
      pdo,
      maxRegisters: result.NumberOfMapRegisters,
      scatterGather: descriptionFor(description).ScatterGather,
      tableVersion: Math.max(1, descriptionFor(description).Version),
      released: false,
      channel: "idle",
      channelGrant: undefined,
      pending: 0,
      pendingChannels: 0,
      waiting: [],
      commonBuffers: [],
      freedCommonBuffers: [],
      grants: [],
      freedGrants: [],
      direct: { base: undefined, count: Number.POSITIVE_INFINITY, owner: "none", pieces: [] },
      lists: [],
      freedLists: [],
    });
    return valid;
  }

  #put(index: number, irql: IrqlChoice): boolean {
    const a = this.#pick(this.#adapters, index);
    if (a === undefined) return this.#skip();
    const outstanding = this.#outstanding(a);
    // A put with things outstanding leaks them for good (as on Windows): only the bug check mode
    // verifier, which refuses it, lets the fuzzer try.
    if (outstanding && this.#verifier !== "bugcheck") return this.#skip();
    const valid = !a.released && !outstanding && irql === "right";
    this.#valid = valid;
    this.#at(irql === "right" ? DISPATCH_LEVEL : HIGH_LEVEL, () => a.ops.PutDmaAdapter(a.adapter));
    if (this.#dropped) return valid;
    a.released = true;
    a.pending = 0;
    a.pendingChannels = 0;
    a.waiting.length = 0;
    return valid;
  }

  #buffer(length: number, offset: number, build: boolean): boolean {
    if (this.#buffers.length >= 12) return this.#skip();
    const k = this.#kernel;
    const base = k.ExAllocatePoolWithTag(NonPagedPool, offset + length, "Fuzz");
    if (base === 0) return this.#skip();
    const va = base + offset;
    const mdl = k.IoAllocateMdl(va, length, false, false, undefined) as Mdl;
    if (build) k.MmBuildMdlForNonPagedPool(mdl);
    this.#buffers.push({ base, va, mdl, length, built: build });
    return true;
  }

  #freeBuffer(index: number): boolean {
    const buffer = this.#pick(this.#buffers, index);
    if (buffer === undefined || this.#inUse(buffer)) return this.#skip();
    this.#releaseBuffer(buffer);
    this.#buffers.splice(this.#buffers.indexOf(buffer), 1);
    return true;
  }

  #allocateCommon(command: Extract<Command, { kind: "allocateCommon" }>): boolean {
    const a = this.#pick(this.#adapters, command.adapter);
    if (a === undefined) return this.#skip();
    const length = command.length;
    const valid =
      !a.released &&
      command.irql === "right" &&
      (command.api === 0 || a.tableVersion === 3) &&
      Number.isInteger(length) &&
      length > 0 &&
      length < 2 ** 32;
    this.#valid = valid;
    const result = this.#at(command.irql === "right" ? PASSIVE_LEVEL : DISPATCH_LEVEL, () => {
      switch (command.api) {
        case 0:
          return a.ops.AllocateCommonBuffer(a.adapter, length, true);
        case 1:
          return a.ops.AllocateCommonBufferEx(a.adapter, undefined, length, true, 0);
        default:
          return a.ops.AllocateCommonBufferWithBounds(a.adapter, undefined, 2 ** 40, length, 0, MmCached, 0);
      }
    });
    if (result.VirtualAddress === 0) {
      this.#tally.failedStatuses++;
      if (valid) this.#fail(`a common buffer of ${length} bytes was refused`);
      return valid;
    }
    a.commonBuffers.push({ va: result.VirtualAddress, la: result.LogicalAddress, length });
    return valid;
  }

  #freeCommon(command: Extract<Command, { kind: "freeCommon" }>): boolean {
    const a = this.#pickAdapter(command.adapter, (b) =>
      command.variant === "freed" ? b.freedCommonBuffers.length > 0 : b.commonBuffers.length > 0,
    );
    if (a === undefined) return this.#skip();
    const irql = command.irql === "right" ? PASSIVE_LEVEL : DISPATCH_LEVEL;
    const live = this.#pick(a.commonBuffers, command.target);
    switch (command.variant) {
      case "ok": {
        if (live === undefined) return this.#skip();
        const valid = !a.released && command.irql === "right";
        this.#valid = valid;
        this.#at(irql, () => a.ops.FreeCommonBuffer(a.adapter, live.length, live.la, live.va, true));
        if (!this.#dropped) this.#forgetCommon(a, live);
        return valid;
      }
      case "length": {
        if (live === undefined) return this.#skip();
        this.#at(irql, () => a.ops.FreeCommonBuffer(a.adapter, live.length + 1, live.la, live.va, true));
        if (!this.#dropped) this.#fail("FreeCommonBuffer with the wrong length went through");
        return false;
      }
      case "freed": {
        const freed = this.#pick(a.freedCommonBuffers, command.target);
        if (freed === undefined || a.commonBuffers.some((b) => b.va === freed.va)) return this.#skip();
        this.#at(irql, () => a.ops.FreeCommonBuffer(a.adapter, freed.length, freed.la, freed.va, true));
        if (!this.#dropped) this.#fail("a second FreeCommonBuffer of the same buffer went through");
        return false;
      }
      case "foreign": {
        const other = this.#adapters.find((b) => b !== a && b.commonBuffers.length > 0);
        const foreign = other?.commonBuffers[0];
        if (foreign === undefined) return this.#skip();
        this.#at(irql, () => a.ops.FreeCommonBuffer(a.adapter, foreign.length, foreign.la, foreign.va, true));
        if (!this.#dropped) this.#fail("FreeCommonBuffer of another adapter's buffer went through");
        return false;
      }
    }
  }

  #getList(command: Extract<Command, { kind: "getList" }>): boolean {
    const a = this.#pick(this.#adapters, command.adapter);
    const buffer = this.#pick(this.#buffers, command.buffer);
    if (a === undefined || buffer === undefined) return this.#skip();
    const offset = Math.min(buffer.length - 1, Math.floor(command.start * buffer.length));
    let length = Math.max(1, Math.floor(command.length * (buffer.length - offset)));
    let va = buffer.va + offset;
    if (command.variant === "before") va = buffer.va - 1;
    else if (command.variant === "after") va = buffer.va + buffer.length;
    else if (command.variant === "zero") length = 0;
    else if (command.variant === "long") length = buffer.length - offset + 1;
    const registers = spanPages(va, length);
    const valid =
      command.variant === "ok" &&
      command.irql === "right" &&
      !a.released &&
      buffer.built &&
      registers <= a.maxRegisters &&
      !this.#overlapsLive(buffer, offset, length, command.write);
    this.#valid = valid;
    const irql = command.irql === "right" ? DISPATCH_LEVEL : PASSIVE_LEVEL;
    const record = (list: SCATTER_GATHER_LIST): void => {
      a.lists.push({ list, buffer, offset, length, write: command.write, written: undefined });
    };
    let ran = false;
    const status = this.#at(irql, () => {
      const routine = (_d: DEVICE_OBJECT, _i: unknown, list: SCATTER_GATHER_LIST): void => {
        if (ran) {
          a.pending--;
          a.waiting.splice(a.waiting.indexOf(buffer), 1);
        }
        ran = true;
        record(list);
      };
      if (command.build) {
        const size = a.ops.CalculateScatterGatherList(
          a.adapter,
          buffer.mdl,
          va,
          length,
        ).ScatterGatherListSize;
        const listBuffer = this.#listBuffer(size);
        return a.ops.BuildScatterGatherList(
          a.adapter,
          a.pdo,
          buffer.mdl,
          va,
          length,
          routine,
          undefined,
          command.write,
          listBuffer,
          size,
        );
      }
      return a.ops.GetScatterGatherList(
        a.adapter,
        a.pdo,
        buffer.mdl,
        va,
        length,
        routine,
        undefined,
        command.write,
      );
    });
    if (!NT_SUCCESS(status)) {
      this.#tally.failedStatuses++;
      if (valid) this.#fail(`a valid list request failed with 0x${status.toString(16)}`);
    } else if (!ran) {
      ran = true;
      a.pending++;
      a.waiting.push(buffer);
    }
    return valid;
  }

  #putList(command: Extract<Command, { kind: "putList" }>): boolean {
    const a = this.#pickAdapter(command.adapter, (b) =>
      command.variant === "freed"
        ? b.freedLists.length > 0
        : command.variant === "ok"
          ? b.lists.length > 0
          : true,
    );
    if (a === undefined) return this.#skip();
    const irql = command.irql === "right" ? DISPATCH_LEVEL : PASSIVE_LEVEL;
    if (command.variant === "ok") {
      const entry = this.#pick(a.lists, command.list);
      if (entry === undefined) return this.#skip();
      const write = command.direction === "same" ? entry.write : !entry.write;
      const valid = !a.released && command.irql === "right" && command.direction === "same";
      this.#valid = valid;
      this.#at(irql, () => a.ops.PutScatterGatherList(a.adapter, entry.list, write));
      if (this.#dropped) return valid;
      a.lists.splice(a.lists.indexOf(entry), 1);
      a.freedLists.push(entry);
      this.#unmapped(
        a,
        entry.list.Elements.map((e) => ({ address: e.Address, length: e.Length })),
      );
      if (
        valid &&
        !entry.write &&
        entry.written !== undefined &&
        !this.#overlapsLive(entry.buffer, entry.offset, entry.length, false)
      ) {
        const now = this.#kernel.ReadMemory(entry.buffer.va + entry.offset, entry.length);
        if (!sameBytes(now, entry.written))
          this.#fail("the device's data did not arrive in the buffer after PutScatterGatherList");
      }
      return valid;
    }
    const target =
      command.variant === "freed"
        ? this.#pick(a.freedLists, command.list)
        : this.#adapters.find((b) => b !== a && b.lists.length > 0)?.lists[0];
    if (target === undefined) return this.#skip();
    this.#at(irql, () => a.ops.PutScatterGatherList(a.adapter, target.list, target.write));
    if (!this.#dropped) this.#fail(`PutScatterGatherList of a ${command.variant} list went through`);
    return false;
  }

  #channel(command: Extract<Command, { kind: "channel" }>): boolean {
    const a = this.#pick(this.#adapters, command.adapter);
    if (a === undefined) return this.#skip();
    const registers = Math.floor(command.registers * a.maxRegisters) + (command.registers > 1 ? 1 : 0);
    const waitBlockBusy = this.#adapters.some((b) => b.pdo === a.pdo && b.pendingChannels > 0);
    const valid =
      command.irql === "right" &&
      !a.released &&
      a.channel === "idle" &&
      a.pending === 0 &&
      !waitBlockBusy &&
      registers <= a.maxRegisters;
    this.#valid = valid;
    let ran = false;
    const status = this.#at(command.irql === "right" ? DISPATCH_LEVEL : PASSIVE_LEVEL, () =>
      a.ops.AllocateAdapterChannel(
        a.adapter,
        a.pdo,
        registers,
        (_d, _i, base) => {
          if (ran) {
            a.pending--;
            a.pendingChannels--;
          }
          ran = true;
          this.#granted(a, base, registers, command.action);
          return command.action;
        },
        undefined,
      ),
    );
    if (!NT_SUCCESS(status)) {
      this.#tally.failedStatuses++;
      if (valid) this.#fail(`AllocateAdapterChannel(${registers}) failed with 0x${status.toString(16)}`);
    } else if (!ran) {
      ran = true;
      a.pending++;
      a.pendingChannels++;
    }
    return valid;
  }

  #granted(a: FuzzAdapter, base: MAP_REGISTER_BASE | undefined, count: number, action: number): void {
    const grant: FuzzGrant | undefined =
      base === undefined
        ? undefined
        : { base, count, owner: action === KeepObject ? "channel" : "driver", pieces: [] };
    if (action === KeepObject) {
      a.channel = "held";
      a.channelGrant = grant;
    }
    if (grant !== undefined && action !== DeallocateObject) a.grants.push(grant);
  }

  #map(command: Extract<Command, { kind: "map" }>): boolean {
    const a = this.#pickAdapter(
      command.adapter,
      (b) => command.variant === "nullBase" || b.grants.length > 0,
    );
    const buffer = this.#pick(this.#buffers, command.buffer);
    if (a === undefined || buffer === undefined) return this.#skip();
    const grant = command.variant === "nullBase" ? a.direct : this.#pick(a.grants, command.grant);
    if (grant === undefined) return this.#skip();
    const offset = Math.min(buffer.length - 1, Math.floor(command.start * buffer.length));
    let length = Math.max(1, Math.floor(command.length * (buffer.length - offset)));
    let va = buffer.va + offset;
    if (command.variant === "outside") va = buffer.va + buffer.length;
    else if (command.variant === "zero") length = 0;
    else if (command.variant === "long") length = buffer.length - offset + 1;
    const needed = spanPages(va, length);
    const fresh = grant.owner !== "none" && grant.pieces.length === 0;
    const valid =
      command.variant === "ok" &&
      command.irql === "right" &&
      !a.released &&
      buffer.built &&
      fresh &&
      (a.scatterGather || needed <= grant.count) &&
      !this.#overlapsLive(buffer, offset, length, command.write);
    this.#valid = valid;
    const result = this.#at(command.irql === "right" ? DISPATCH_LEVEL : HIGH_LEVEL, () =>
      a.ops.MapTransfer(a.adapter, buffer.mdl, grant.base, va, length, command.write),
    );
    if (this.#dropped) return valid;
    grant.pieces.push({
      buffer,
      offset,
      length: result.Length,
      write: command.write,
      la: result.LogicalAddress,
    });
    return valid;
  }

  #flush(command: Extract<Command, { kind: "flush" }>): boolean {
    const a = this.#pickAdapter(command.adapter, (b) => this.#grantsOf(b).some((g) => g.pieces.length > 0));
    const grant =
      a === undefined
        ? undefined
        : this.#pick(
            this.#grantsOf(a).filter((g) => g.pieces.length > 0),
            command.grant,
          );
    const piece = grant === undefined ? undefined : this.#pick(grant.pieces, command.piece);
    if (a === undefined || grant === undefined || piece === undefined) return this.#skip();
    const { buffer } = piece;
    const whole = command.variant === "whole";
    const offset = whole ? 0 : piece.offset;
    const length = whole ? buffer.length : piece.length;
    const write = command.variant === "direction" ? !piece.write : piece.write;
    const valid = command.variant === "ok" && command.irql === "right" && !a.released;
    this.#valid = valid;
    this.#at(command.irql === "right" ? DISPATCH_LEVEL : HIGH_LEVEL, () =>
      a.ops.FlushAdapterBuffers(a.adapter, buffer.mdl, grant.base, buffer.va + offset, length, write),
    );
    if (!this.#dropped) this.#flushed(a, grant, buffer, offset, length);
    return valid;
  }

  #freeRegisters(command: Extract<Command, { kind: "freeRegisters" }>): boolean {
    const a = this.#pickAdapter(command.adapter, (b) =>
      command.variant === "freed" ? b.freedGrants.length > 0 : b.grants.length > 0,
    );
    if (a === undefined) return this.#skip();
    const irql = command.irql === "right" ? DISPATCH_LEVEL : PASSIVE_LEVEL;
    if (command.variant === "freed") {
      const freed = this.#pick(a.freedGrants, command.grant);
      if (freed === undefined) return this.#skip();
      this.#at(irql, () => a.ops.FreeMapRegisters(a.adapter, freed.base, freed.count));
      if (!this.#dropped) this.#fail("a second FreeMapRegisters of the same registers went through");
      return false;
    }
    const grant = this.#pick(a.grants, command.grant);
    if (grant === undefined) return this.#skip();
    const count = command.variant === "count" ? grant.count + 1 : grant.count;
    const valid =
      command.variant === "ok" && command.irql === "right" && !a.released && grant.pieces.length === 0;
    this.#valid = valid;
    this.#at(irql, () => a.ops.FreeMapRegisters(a.adapter, grant.base, count));
    if (this.#dropped) return valid;
    if (command.variant === "count") this.#fail("FreeMapRegisters with the wrong count went through");
    this.#dropGrant(a, grant);
    return valid;
  }

  #freeChannel(index: number, irql: IrqlChoice): boolean {
    const a = this.#pick(this.#adapters, index);
    if (a === undefined) return this.#skip();
    const valid =
      irql === "right" && !a.released && a.channel === "held" && (a.channelGrant?.pieces.length ?? 0) === 0;
    this.#valid = valid;
    this.#releaseChannel(a, () =>
      this.#at(irql === "right" ? DISPATCH_LEVEL : PASSIVE_LEVEL, () => a.ops.FreeAdapterChannel(a.adapter)),
    );
    return valid;
  }

  /**
   * FreeAdapterChannel in the model: the channel is idle from the call on, because the call itself
   * may run a queued request that takes it again (its callback updates the model inside the call).
   */
  #releaseChannel(a: FuzzAdapter, call: () => void): void {
    const grant = a.channelGrant;
    const state = a.channel;
    a.channel = "idle";
    a.channelGrant = undefined;
    try {
      call();
    } catch (error) {
      a.channel = state;
      a.channelGrant = grant;
      throw error;
    }
    if (this.#dropped) {
      a.channel = state;
      a.channelGrant = grant;
      return;
    }
    if (grant !== undefined) this.#dropGrant(a, grant);
  }

  /** The device reads or writes (by direction) inside one live mapping: it must work. */
  #dma(index: number, target: number, seed: number): boolean {
    const a = this.#pickAdapter(
      index,
      (b) =>
        b.lists.length > 0 ||
        b.commonBuffers.length > 0 ||
        this.#grantsOf(b).some((g) => g.pieces.length > 0),
    );
    if (a === undefined || a.released) return this.#skip();
    type Target = {
      la: number;
      length: number;
      write: boolean;
      list?: FuzzList;
      /** The driver bytes behind it, for the data check. */
      bytes?: { buffer: FuzzBuffer; offset: number; length: number };
    };
    const targets: Target[] = [
      ...a.lists.flatMap((list): Target[] => {
        const bytes = { buffer: list.buffer, offset: list.offset, length: list.length };
        return list.list.Elements.length === 1
          ? [{ la: list.list.Elements[0]!.Address, length: list.length, write: !list.write, list, bytes }]
          : list.list.Elements.map((e) => ({ la: e.Address, length: e.Length, write: !list.write, bytes }));
      }),
      ...this.#grantsOf(a).flatMap((grant) =>
        grant.pieces.map(
          (piece): Target => ({
            la: piece.la,
            length: piece.length,
            write: !piece.write,
            bytes: { buffer: piece.buffer, offset: piece.offset, length: piece.length },
          }),
        ),
      ),
      ...a.commonBuffers.map((buffer): Target => ({ la: buffer.la, length: buffer.length, write: true })),
    ];
    const chosen = this.#pick(targets, target);
    if (chosen === undefined) return this.#skip();
    let ok: boolean;
    if (chosen.write) {
      const bytes = pattern(chosen.length, seed);
      ok = a.device.write(chosen.la, bytes);
      // Whatever other list covers these driver bytes no longer knows what they will hold.
      if (chosen.bytes !== undefined)
        this.#overwritten(chosen.bytes.buffer, chosen.bytes.offset, chosen.bytes.length);
      if (chosen.list !== undefined) chosen.list.written = bytes;
    } else {
      ok = a.device.read(chosen.la, chosen.length);
    }
    if (!ok)
      this.#fail(
        `the device could not ${chosen.write ? "write" : "read"} its live mapping at 0x${chosen.la.toString(16)}+${chosen.length}`,
      );
    return true;
  }

  /** A device goes where nothing was mapped for it: reads anywhere; writes only when an IOMMU stops them. */
  #rogue(command: Extract<Command, { kind: "rogue" }>): boolean {
    const device = this.#devices[command.device % this.#devices.length]!;
    if (command.write && this.#mode !== "strict") return this.#skip();
    if (command.write && this.#touchesLive(device, command.address, command.length)) return this.#skip();
    if (command.write) device.write(command.address, new Uint8Array(command.length).fill(0xa5));
    else device.read(command.address, command.length);
    return true;
  }

  #cpuRead(index: number): boolean {
    const buffer = this.#pick(this.#buffers, index);
    if (buffer === undefined) return this.#skip();
    const valid = !this.#overlapsLive(buffer, 0, buffer.length, true);
    this.#valid = valid;
    this.#kernel.ReadMemory(buffer.va, buffer.length);
    return valid;
  }

  /** Arguments no C caller should pass: each must end in a status or a bug check, changing nothing. */
  #junk(command: Extract<Command, { kind: "junk" }>): boolean {
    const a = this.#pick(this.#adapters, command.adapter);
    const buffer = this.#buffers[0];
    if (a === undefined || buffer === undefined) return this.#skip();
    const bad = [Number.NaN, -4096, 1.5, 2 ** 60, Number.MAX_SAFE_INTEGER, -1][command.variant]!;
    const notAnMdl = {} as MDL;
    const forgedBase = Object.freeze({ kind: "MAP_REGISTER_BASE" as const });
    const notAnAdapter = { Version: 1, Size: 16, DmaOperations: a.ops } as DMA_ADAPTER;
    const ops = a.ops;
    const calls: (() => unknown)[] = [
      () => ops.MapTransfer(a.adapter, buffer.mdl, forgedBase, buffer.va, 16, true),
      () => ops.MapTransfer(a.adapter, notAnMdl, undefined, bad, 16, true),
      () => ops.FlushAdapterBuffers(a.adapter, buffer.mdl, forgedBase, buffer.va, bad, false),
      () => ops.GetScatterGatherList(a.adapter, a.pdo, buffer.mdl, bad, 64, () => {}, undefined, true),
      () => ops.GetScatterGatherList(a.adapter, a.pdo, notAnMdl, buffer.va, 64, () => {}, undefined, true),
      () => ops.FreeMapRegisters(a.adapter, forgedBase, 1),
      () => ops.AllocateAdapterChannel(a.adapter, a.pdo, bad, () => DeallocateObjectKeepRegisters, undefined),
      () => ops.FreeCommonBuffer(a.adapter, 4096, bad, bad, true),
      () => ops.GetDmaAlignment(undefined as unknown as DMA_ADAPTER),
      () => ops.PutScatterGatherList(notAnAdapter, { NumberOfElements: 0, Reserved: 0, Elements: [] }, true),
      () => ops.CalculateScatterGatherList(a.adapter, buffer.mdl, bad, bad),
      () =>
        ops.BuildScatterGatherList(
          a.adapter,
          a.pdo,
          buffer.mdl,
          buffer.va,
          16,
          () => {},
          undefined,
          true,
          bad,
          4096,
        ),
    ];
    const result = this.#at(DISPATCH_LEVEL, calls[command.member % calls.length]!);
    if (typeof result === "number" && result >= 0x80000000) this.#tally.failedStatuses++;
    return false;
  }

  // ------------------------------------------------------------------ model bookkeeping

  #pick<T>(items: readonly T[], index: number): T | undefined {
    return items.length === 0 ? undefined : items[index % items.length];
  }

  /** An adapter that has something to act on (a list, a grant...), so few commands are wasted. */
  #pickAdapter(index: number, has: (a: FuzzAdapter) => boolean): FuzzAdapter | undefined {
    return this.#pick(this.#adapters.filter(has), index);
  }

  #skip(): boolean {
    this.#tally.skipped++;
    return false;
  }

  #outstanding(a: FuzzAdapter): boolean {
    return (
      a.commonBuffers.length > 0 ||
      a.grants.length > 0 ||
      a.direct.pieces.length > 0 ||
      a.lists.length > 0 ||
      a.channel === "held" ||
      a.pending > 0
    );
  }

  /** Every grant of `a`, the NULL MapRegisterBase's pieces included. */
  #grantsOf(a: FuzzAdapter): FuzzGrant[] {
    return [...a.grants, a.direct];
  }

  #inUse(buffer: FuzzBuffer): boolean {
    return this.#adapters.some(
      (a) =>
        a.waiting.includes(buffer) ||
        a.lists.some((l) => l.buffer === buffer) ||
        this.#grantsOf(a).some((g) => g.pieces.some((p) => p.buffer === buffer)),
    );
  }

  /** A live mapping over the same bytes where one of the two lets the device write (the verifier's 0x1D). */
  #overlapsLive(buffer: FuzzBuffer, offset: number, length: number, write: boolean): boolean {
    const overlaps = (o: number, l: number, w: boolean): boolean =>
      o < offset + length && offset < o + l && !(w && write);
    return this.#adapters.some(
      (a) =>
        a.lists.some((l) => l.buffer === buffer && overlaps(l.offset, l.length, l.write)) ||
        this.#grantsOf(a).some((g) =>
          g.pieces.some((p) => p.buffer === buffer && overlaps(p.offset, p.length, p.write)),
        ),
    );
  }

  /** A device wrote these driver bytes: the data check of every list over them is off. */
  #overwritten(buffer: FuzzBuffer, offset: number, length: number): void {
    for (const a of this.#adapters) {
      for (const list of a.lists) {
        if (list.buffer === buffer && list.offset < offset + length && offset < list.offset + list.length) {
          list.written = undefined;
        }
      }
    }
  }

  #forgetCommon(a: FuzzAdapter, buffer: FuzzCommonBuffer): void {
    a.commonBuffers.splice(a.commonBuffers.indexOf(buffer), 1);
    a.freedCommonBuffers.push(buffer);
    this.#unmapped(a, [{ address: buffer.la, length: buffer.length }]);
  }

  #dropGrant(a: FuzzAdapter, grant: FuzzGrant): void {
    for (const piece of grant.pieces) this.#unmapped(a, [{ address: piece.la, length: piece.length }]);
    grant.pieces.length = 0;
    const at = a.grants.indexOf(grant);
    if (at >= 0) a.grants.splice(at, 1);
    a.freedGrants.push(grant);
    if (a.channelGrant === grant) a.channelGrant = undefined;
  }

  /** A flush of [offset, offset + length) of `buffer` takes pieces down as the HAL does. */
  #flushed(a: FuzzAdapter, grant: FuzzGrant, buffer: FuzzBuffer, offset: number, length: number): void {
    const remapping = this.#mode === "strict" || this.#mode === "lazy";
    const end = offset + length;
    for (const piece of [...grant.pieces]) {
      if (piece.buffer !== buffer) continue;
      const gone = remapping
        ? piece.offset >= offset && piece.offset + piece.length <= end
        : piece.offset < end && offset < piece.offset + piece.length;
      if (!gone) continue;
      grant.pieces.splice(grant.pieces.indexOf(piece), 1);
      this.#unmapped(a, [{ address: piece.la, length: piece.length }]);
    }
  }

  #unmapped(a: FuzzAdapter, ranges: readonly { address: number; length: number }[]): void {
    const rid = a.device.requesterId;
    const dead = this.#dead.get(rid) ?? new Set<number>();
    for (const { address, length } of ranges) {
      for (let page = Math.floor(address / PAGE_SIZE); page * PAGE_SIZE < address + length; page++)
        dead.add(page);
    }
    while (dead.size > 256) dead.delete(dead.values().next().value!);
    this.#dead.set(rid, dead);
  }

  #touchesLive(device: FuzzDevice, address: number, length: number): boolean {
    for (const a of this.#adapters) {
      if (a.device !== device) continue;
      for (const range of this.#liveRanges(a)) {
        if (range.la < address + length + PAGE_SIZE && address < range.la + range.length + PAGE_SIZE)
          return true;
      }
    }
    return false;
  }

  #releaseBuffer(buffer: FuzzBuffer): void {
    const k = this.#kernel;
    k.IoFreeMdl(buffer.mdl);
    k.ExFreePool(buffer.base);
  }

  #listBuffer(size: number): number {
    const va = this.#kernel.ExAllocatePoolWithTag(NonPagedPool, Math.max(size, 16), "FzSg");
    this.#listBuffers.push(va);
    return va;
  }

  readonly #listBuffers: number[] = [];

  // ------------------------------------------------------------------ checks

  #check(): void {
    this.#checkBooks();
    this.#checkFrames();
    this.#checkIommu();
  }

  #checkBooks(): void {
    const r = this.#hal.resources();
    const live = this.#adapters.filter((a) => !a.released);
    const expected = {
      adaptersOpen: live.length,
      commonBuffers: sum(this.#adapters, (a) => a.commonBuffers.length),
      scatterGatherLists: sum(this.#adapters, (a) => a.lists.length),
      channelsHeld: sum(this.#adapters, (a) => (a.channel === "held" ? 1 : 0)),
      queuedRequests: sum(this.#adapters, (a) => a.pending),
    };
    for (const [key, value] of Object.entries(expected)) {
      const actual = r[key as keyof typeof r];
      if (actual !== value) this.#fail(`Hal.resources().${key} is ${actual}, the model says ${value}`);
    }
  }

  #checkFrames(): void {
    const changed = this.#snapshot.changedFrames();
    if (changed.length > 0) {
      const first = changed[0]!;
      this.#fail(
        `${changed.length} frames of others changed, first pfn 0x${first.pfn.toString(16)} (${first.ownerName})`,
      );
    }
  }

  #checkIommu(): void {
    const iommu = this.machine.iommu;
    for (const device of this.#devices) {
      const rid = device.requesterId;
      const adapters = this.#adapters.filter((a) => a.device === device && !a.released);
      const attachment = iommu.attachment(rid);
      if (this.#mode === "off") {
        if (attachment !== undefined) this.#fail(`remapping off, yet device ${rid} has an IOMMU attachment`);
        continue;
      }
      if (this.#mode === "passthrough") {
        const expected = adapters.length > 0 ? "passthrough" : undefined;
        if (attachment !== expected)
          this.#fail(
            `passthrough: device ${rid} attachment ${String(attachment)}, expected ${String(expected)}`,
          );
        continue;
      }
      if (adapters.length === 0) {
        if (attachment !== undefined) this.#fail(`device ${rid} has no adapter open but is still attached`);
        continue;
      }
      if (!(attachment instanceof IommuDomain)) {
        this.#fail(`device ${rid} has adapters open but no IOMMU domain`);
        return;
      }
      const livePages = new Set<number>();
      for (const a of adapters) {
        for (const list of a.lists) {
          this.#expectMapped(
            attachment,
            list.list.Elements.map((e) => ({ address: e.Address, length: e.Length })),
            list.buffer.mdl,
            list.offset,
            list.length,
            list.write ? IoPermission.Read : IoPermission.Write,
            livePages,
          );
        }
        for (const grant of this.#grantsOf(a)) {
          for (const piece of grant.pieces) {
            this.#expectMapped(
              attachment,
              [{ address: piece.la, length: piece.length }],
              piece.buffer.mdl,
              piece.offset,
              piece.length,
              piece.write ? IoPermission.Read : IoPermission.Write,
              livePages,
            );
          }
        }
        for (const buffer of a.commonBuffers) this.#expectCommonBuffer(attachment, buffer, livePages);
        // The verifier's guard pages around its common buffers are mapped too.
        if (this.#verifier !== "off") {
          for (const buffer of a.commonBuffers) {
            const first = Math.floor(buffer.la / PAGE_SIZE) - 1;
            const last = Math.floor((buffer.la + buffer.length - 1) / PAGE_SIZE) + 2;
            for (let page = first; page <= last; page++) livePages.add(page);
          }
        }
      }
      for (const page of this.#dead.get(rid) ?? []) {
        if (livePages.has(page)) continue;
        if (attachment.lookup(page * PAGE_SIZE) !== undefined) {
          this.#fail(
            `IOVA 0x${(page * PAGE_SIZE).toString(16)} of device ${rid} is still mapped after its unmap`,
          );
        }
      }
    }
  }

  /** The logical ranges of a mapping translate, page by page, to the MDL's frames with `permission`. */
  #expectMapped(
    domain: IommuDomain,
    logical: readonly { address: number; length: number }[],
    mdl: Mdl,
    offset: number,
    length: number,
    permission: number,
    livePages: Set<number>,
  ): void {
    let position = mdl.byteOffset + offset;
    let left = length;
    for (const range of logical) {
      let la = range.address;
      let remaining = Math.min(range.length, left);
      while (remaining > 0) {
        const chunk = Math.min(remaining, PAGE_SIZE - (la % PAGE_SIZE), PAGE_SIZE - (position % PAGE_SIZE));
        const frame = mdl.pfns[Math.floor(position / PAGE_SIZE)]!;
        const mapping = domain.lookup(la);
        const expected = frame * PAGE_SIZE + (position % PAGE_SIZE);
        const actual = mapping === undefined ? undefined : mapping.physicalAddress + (la - mapping.iova);
        if (actual !== expected || mapping!.permissions !== permission) {
          this.#fail(
            `IOVA 0x${la.toString(16)} maps ${actual === undefined ? "nothing" : `0x${actual.toString(16)}/${mapping!.permissions}`}, the model says 0x${expected.toString(16)}/${permission}`,
          );
        }
        livePages.add(Math.floor(la / PAGE_SIZE));
        la += chunk;
        position += chunk;
        remaining -= chunk;
        left -= chunk;
      }
    }
  }

  #expectCommonBuffer(domain: IommuDomain, buffer: FuzzCommonBuffer, livePages: Set<number>): void {
    for (let done = 0; done < buffer.length; done += PAGE_SIZE - ((buffer.la + done) % PAGE_SIZE)) {
      const la = buffer.la + done;
      const expected = this.#kernelMemory.physicalAddress(buffer.va + done);
      const mapping = domain.lookup(la);
      const actual = mapping === undefined ? undefined : mapping.physicalAddress + (la - mapping.iova);
      if (actual !== expected || mapping!.permissions !== IoPermission.ReadWrite) {
        this.#fail(
          `common buffer IOVA 0x${la.toString(16)} maps ${String(actual)}, expected 0x${expected.toString(16)} read/write`,
        );
      }
      livePages.add(Math.floor(la / PAGE_SIZE));
    }
  }

  #liveRanges(a: FuzzAdapter): { la: number; length: number }[] {
    return [
      ...a.lists.flatMap((l) => l.list.Elements.map((e) => ({ la: e.Address, length: e.Length }))),
      ...this.#grantsOf(a).flatMap((g) => g.pieces.map((p) => ({ la: p.la, length: p.length }))),
      ...a.commonBuffers.map((b) => ({ la: b.la - PAGE_SIZE, length: b.length + 2 * PAGE_SIZE })),
    ];
  }

  // ------------------------------------------------------------------ teardown

  #teardown(): void {
    this.#trace.push("teardown");
    try {
      for (let round = 0; round < 8; round++) {
        let busy = false;
        for (const a of this.#adapters) {
          if (a.released) continue;
          if (this.#giveBack(a)) busy = true;
        }
        if (!busy) break;
      }
      for (const a of this.#adapters) {
        if (a.released) continue;
        this.#at(DISPATCH_LEVEL, () => a.ops.PutDmaAdapter(a.adapter));
        a.released = true;
        a.pending = 0;
        a.pendingChannels = 0;
        a.waiting.length = 0;
      }
      for (const buffer of this.#buffers) this.#releaseBuffer(buffer);
      this.#buffers.length = 0;
      for (const va of this.#listBuffers) this.#kernel.ExFreePool(va);
      this.machine.runUntilIdle();
    } catch (error) {
      this.#fail(`the teardown failed: ${error instanceof Error ? error.message : String(error)}`);
    }
    const r = this.#hal.resources();
    for (const [key, value] of Object.entries(r)) {
      if (value !== 0) this.#fail(`after the teardown Hal.resources().${key} is ${value}`);
    }
    const after = this.#ownerCounts();
    const kept = new Set(KEPT_OWNERS.map((name) => this.#owner(name)));
    for (const [owner, count] of after) {
      if (kept.has(owner)) continue;
      const before = this.#baseline.get(owner) ?? 0;
      if (count !== before)
        this.#fail(
          `after the teardown ${this.#frames.ownerName(owner)} holds ${count} frames, ${before} before`,
        );
    }
    this.#checkFrames();
  }

  /** Gives back everything `a` holds; true when something was given back (queued callbacks may follow). */
  #giveBack(a: FuzzAdapter): boolean {
    let busy = false;
    this.#at(DISPATCH_LEVEL, () => {
      for (const list of [...a.lists]) {
        a.ops.PutScatterGatherList(a.adapter, list.list, list.write);
        a.lists.splice(a.lists.indexOf(list), 1);
        busy = true;
      }
      for (const grant of this.#grantsOf(a)) {
        for (const piece of [...grant.pieces]) {
          // A flush takes down every piece it touches (bounce path): some may be gone already.
          if (!grant.pieces.includes(piece)) continue;
          a.ops.FlushAdapterBuffers(
            a.adapter,
            piece.buffer.mdl,
            grant.base,
            piece.buffer.va + piece.offset,
            piece.length,
            piece.write,
          );
          this.#flushed(a, grant, piece.buffer, piece.offset, piece.length);
        }
        if (grant.owner === "driver") {
          a.ops.FreeMapRegisters(a.adapter, grant.base, grant.count);
          this.#dropGrant(a, grant);
          busy = true;
        }
      }
      if (a.channel === "held") {
        this.#releaseChannel(a, () => a.ops.FreeAdapterChannel(a.adapter));
        busy = true;
      }
    });
    for (const buffer of [...a.commonBuffers]) {
      a.ops.FreeCommonBuffer(a.adapter, buffer.length, buffer.la, buffer.va, true);
      this.#forgetCommon(a, buffer);
      busy = true;
    }
    return busy;
  }

  // ------------------------------------------------------------------ plumbing

  /** Runs a DDI call at `irql`; #dropped tells whether the log mode verifier dropped it. */
  #at<T>(irql: number, body: () => T): T {
    const scheduler = this.machine.scheduler;
    const before = this.#dmaVerifier?.droppedCalls ?? 0;
    this.#dropped = false;
    const result = irql === scheduler.irql ? body() : scheduler.runAtIrql(irql, body);
    this.#dropped = (this.#dmaVerifier?.droppedCalls ?? 0) > before;
    return result;
  }

  #owner(name: string): number {
    for (let owner = 1; ; owner++) {
      if (this.#frames.ownerName(owner) === name) return owner;
    }
  }

  #ownerCounts(): Map<number, number> {
    const counts = new Map<number, number>();
    for (let owner = 1; owner < 64; owner++) {
      let name: string;
      try {
        name = this.#frames.ownerName(owner);
      } catch {
        break;
      }
      if (name !== "") counts.set(owner, this.#frames.framesOwnedBy(owner));
    }
    return counts;
  }

  #fail(message: string): never {
    throw new InvariantError(
      `${message}\n  mode ${this.#mode}, verifier ${this.#verifier}\n  last steps:\n    ${this.#trace.slice(-8).join("\n    ")}`,
    );
  }
}

function sum<T>(items: readonly T[], value: (item: T) => number): number {
  return items.reduce((total, item) => total + value(item), 0);
}

function pattern(length: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i += 256) bytes.set(RAMP.subarray(0, Math.min(256, length - i)), i);
  for (let i = 0; i < length; i += 4096) bytes[i] = seed;
  return bytes;
}

const RAMP = Uint8Array.from({ length: 256 }, (_, i) => i);

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.length).equals(Buffer.from(b.buffer, b.byteOffset, b.length));
}
