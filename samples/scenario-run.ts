/**
 * One scenario on one fresh machine: build it in the given remapping mode with the driver
 * packages' modules, plug the device, let PnP load the driver, then watch what happens.
 *
 * What a run observes, and how (nothing is taken on the scenario's word):
 * - faults, bounces, bytes, transfers, interrupts: counted from the machine's EventBus for the
 *   scenario's device (iommu.fault, dma.bounce, device.transfer, scheduler.interrupt);
 * - IOTLB misses: the machine's "iommu.iotlb.miss" counter;
 * - memory that changed: a MemorySnapshot taken before the I/O, excepting the frames of the
 *   owners whose memory is expected to change (the pool and contiguous memory drivers allocate,
 *   the HAL's bounce pages and common buffers, the IOMMU's tables, system PTEs and the
 *   demonstration's own I/O buffers), compared after it. A frame freed during the run holds the
 *   allocator's poison pattern; that is the allocator's write, not a device's, and is left out.
 */
import type { ContainerModule } from "inversify";
import { IoManager } from "../src/ddi/io-manager.js";
import type { Irp } from "../src/ddi/irp.js";
import { Kernel } from "../src/ddi/kernel.js";
import { BOUNCE_OWNER, COMMON_BUFFER_OWNER } from "../src/hal/direct-mapping.js";
import { SWIOTLB_OWNER } from "../src/hal/subpage-bounce.js";
import type { DEVICE_OBJECT, MDL } from "../src/hal/wdm/device-object.js";
import { Machine } from "../src/machine/machine.js";
import type { RemappingMode } from "../src/machine/machine-options.js";
import { FrameAllocator } from "../src/platform/frame-allocator.js";
import { MemorySnapshot } from "../src/platform/memory-snapshot.js";
import { PAGE_SIZE } from "../src/platform/page.js";
import type { PciDevice } from "../src/platform/pci-device.js";
import type { ChromeTraceExporter } from "../src/trace/chrome-trace-exporter.js";
import type { Disposer } from "../src/trace/event-bus.js";
import type { PcapWriter } from "../src/trace/pcap-writer.js";
import { HostMemory, IO_BUFFER_OWNER } from "./host-memory.js";
import { computeOutcome } from "./outcome.js";
import type { ChangedFrame, ScenarioDriver, ScenarioResult } from "./scenario.js";

/** Where a scenario runs and what it may write to. */
export interface ScenarioEnvironment {
  /** RAM in bytes (default 8 GiB, with the MMIO hole at 3 GiB). */
  readonly memory?: number;
  readonly seed?: number;
  /** False for a machine whose DMA does not snoop the CPU caches (default true). */
  readonly coherent?: boolean;
  /** Collects a Chrome trace of every machine, one process each. */
  readonly trace?: ChromeTraceExporter;
  readonly tracePid?: number;
  /** Captures the NIC's loopback wire. */
  readonly pcap?: PcapWriter;
  /** The disk's sparse image file; a memory image when absent. */
  readonly diskImagePath?: string;
}

/** What a scenario checked, for ScenarioRun.finish to turn into a result. */
export interface ScenarioCheck {
  readonly dataIntact: boolean;
  readonly leaked?: boolean;
  /** Set when the run could not finish (a request that never completed). */
  readonly failure?: string;
  /** The row's one line, from the observed numbers (the outcome is decided by then). */
  explain(result: Omit<ScenarioResult, "explanation">): string;
}

export interface ScenarioDefinition {
  readonly driver: ScenarioDriver;
  /** Driver packages the machine loads. */
  readonly modules: readonly ContainerModule[];
  run(run: ScenarioRun): ScenarioCheck;
}

/** Owners whose frames a driver, the HAL or the IOMMU may legitimately change. */
const EXPECTED_OWNERS = [
  "nonpaged-pool",
  "contiguous-memory",
  "system-ptes",
  "iommu",
  BOUNCE_OWNER,
  COMMON_BUFFER_OWNER,
  SWIOTLB_OWNER,
  IO_BUFFER_OWNER,
];

export class ScenarioRun {
  readonly machine: Machine;
  readonly kernel: Kernel;
  readonly io: IoManager;
  readonly host: HostMemory;
  readonly mode: RemappingMode;
  readonly seed: number;
  readonly environment: ScenarioEnvironment;
  #device: PciDevice | undefined;
  #snapshot: MemorySnapshot | undefined;
  #iotlbMissesBefore = 0;
  readonly #counts = {
    faults: 0,
    bounces: 0,
    bytes: 0,
    transfers: 0,
    interrupts: 0,
    lists: 0,
    elements: 0,
    maps: 0,
  };
  readonly #disposers: Disposer[] = [];

  constructor(
    readonly driver: ScenarioDriver,
    mode: RemappingMode,
    environment: ScenarioEnvironment,
    modules: readonly ContainerModule[],
  ) {
    this.mode = mode;
    this.environment = environment;
    this.seed = environment.seed ?? 1;
    this.machine = new Machine(
      { memory: environment.memory, remapping: mode, seed: this.seed, coherent: environment.coherent },
      modules,
    );
    this.kernel = this.machine.get(Kernel);
    this.io = this.machine.get(IoManager);
    this.host = new HostMemory(this.machine);
    const events = this.machine.events;
    const scheduler = this.machine.scheduler;
    if (environment.trace !== undefined) {
      this.#disposers.push(
        environment.trace.attach(events, {
          pid: environment.tracePid ?? 1,
          name: `${driver} / ${mode}`,
          now: () => scheduler.now,
          transferDurationNs: (rid, bytes) => this.#transferTime(rid, bytes),
        }),
      );
    }
    const mine = (rid: number): boolean => this.#device !== undefined && rid === this.#device.requesterId;
    this.#disposers.push(
      events.on("iommu.fault", (e) => {
        if (mine(e.requesterId)) this.#counts.faults++;
      }),
      events.on("dma.bounce", (e) => {
        if (mine(e.requesterId)) this.#counts.bounces++;
      }),
      events.on("dma.sglist", (e) => {
        if (!mine(e.requesterId) || e.action !== "get") return;
        this.#counts.lists++;
        this.#counts.elements += e.elements;
      }),
      events.on("dma.map", (e) => {
        if (mine(e.requesterId) && e.kind === "transfer") this.#counts.maps++;
      }),
      events.on("device.transfer", (e) => {
        if (!mine(e.requesterId)) return;
        this.#counts.transfers++;
        this.#counts.bytes += e.bytesDone;
      }),
      events.on("scheduler.interrupt", (e) => {
        if (this.#device !== undefined && e.line === this.#device.interruptLine) this.#counts.interrupts++;
      }),
    );
  }

  /** Scatter/gather lists the device's adapter handed out, their elements, and transfer mappings. */
  get mapping(): { readonly lists: number; readonly elements: number; readonly maps: number } {
    const { lists, elements, maps } = this.#counts;
    return { lists, elements, maps };
  }

  /** The scenario's device: plugged into the PCI bus; its traffic is what the run counts. */
  plug<T extends PciDevice>(device: T, busMaster = false): T {
    this.machine.pci.attach(device, { busMaster });
    this.#device = device;
    return device;
  }

  /** PnP: enumerate the bus and load the bound driver packages. Returns the device's FDO. */
  start(): DEVICE_OBJECT {
    const device = this.#device;
    if (device === undefined) throw new Error("plug a device before starting its driver");
    this.io.enumerate();
    this.io.loadDrivers();
    const node = this.io.node(device.requesterId);
    const fdo = node.fdo;
    if (node.state !== "started" || fdo === undefined) {
      throw new Error(`the driver did not start ${device.name}: device node is ${node.state}`);
    }
    return fdo;
  }

  /** Takes the "before" picture: call after setup, right before the I/O under test. */
  observe(): void {
    const frames = this.machine.frames;
    const exceptOwners = EXPECTED_OWNERS.map((name) => frames.registerOwner(name));
    this.#snapshot = MemorySnapshot.take(this.machine.memory, frames, { exceptOwners });
    this.#iotlbMissesBefore = this.machine.counters.get("iommu.iotlb.miss");
  }

  /** IRP_MJ_READ or IRP_MJ_WRITE of a whole MDL, sent at PASSIVE_LEVEL as an application would. */
  send(operation: "read" | "write", fdo: DEVICE_OBJECT, mdl: MDL, byteOffset = 0): Irp {
    return operation === "read"
      ? this.io.sendRead(fdo, mdl, byteOffset)
      : this.io.sendWrite(fdo, mdl, byteOffset);
  }

  /** Runs virtual time until nothing is left to do. */
  run(): void {
    this.machine.runUntilIdle();
  }

  /** Turns what was observed into the result; the outcome is computed here, never passed in. */
  finish(check: ScenarioCheck | undefined, error?: unknown): ScenarioResult {
    const changedFrames = this.#changedFrames();
    const leaked = check?.leaked ?? false;
    const failure = error === undefined ? check?.failure : describeError(error);
    const dataIntact = check?.dataIntact ?? false;
    const outcome = computeOutcome({
      leaked,
      changedFrames: changedFrames.length,
      faults: this.#counts.faults,
      dataIntact,
      failed: failure !== undefined,
    });
    const result: Omit<ScenarioResult, "explanation"> = {
      driver: this.driver,
      mode: this.mode,
      outcome,
      dataIntact,
      faults: this.#counts.faults,
      bounces: this.#counts.bounces,
      bytes: this.#counts.bytes,
      iotlbMisses: this.machine.counters.get("iommu.iotlb.miss") - this.#iotlbMissesBefore,
      transfers: this.#counts.transfers,
      interrupts: this.#counts.interrupts,
      leaked,
      changedFrames,
      virtualTimeNs: this.machine.scheduler.now,
      ...(failure === undefined ? {} : { error: failure }),
    };
    const explanation =
      failure !== undefined && check === undefined
        ? `the run stopped: ${failure}`
        : (check?.explain(result) ?? "");
    return { ...result, explanation };
  }

  dispose(): void {
    for (const dispose of this.#disposers.splice(0)) dispose();
  }

  /** The frames that changed although nobody expected them to, poisoned free frames left out. */
  #changedFrames(): ChangedFrame[] {
    const snapshot = this.#snapshot;
    if (snapshot === undefined) return [];
    const poison = new Uint8Array(PAGE_SIZE).fill(FrameAllocator.POISON);
    const page = new Uint8Array(PAGE_SIZE);
    const changed: ChangedFrame[] = [];
    for (const change of snapshot.changedFrames()) {
      if (change.owner === 0) {
        this.machine.memory.read(change.pfn * PAGE_SIZE, page);
        if (Buffer.compare(page, poison) === 0) continue;
      }
      changed.push({ address: change.pfn * PAGE_SIZE, owner: change.ownerName });
    }
    return changed;
  }

  /** A port access's duration on the trace: the device's bandwidth (bytes per second). */
  #transferTime(rid: number, bytes: number): number {
    const device = this.machine.pci.has(rid) ? this.machine.pci.device(rid) : undefined;
    return device === undefined ? bytes : Math.ceil((bytes * 1e9) / device.bandwidth);
  }
}

/** Runs one scenario in one mode; anything thrown becomes an "error" row, never a crash. */
export function runScenario(
  definition: ScenarioDefinition,
  mode: RemappingMode,
  environment: ScenarioEnvironment,
): ScenarioResult {
  const run = new ScenarioRun(definition.driver, mode, environment, definition.modules);
  try {
    return run.finish(definition.run(run));
  } catch (error) {
    return run.finish(undefined, error);
  } finally {
    run.dispose();
  }
}

function describeError(error: unknown): string {
  if (error instanceof Error) return error.message.split("\n")[0]!;
  return String(error);
}
