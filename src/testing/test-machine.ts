/**
 * A machine for one test: built from the options people vary (memory size and layout, remapping
 * mode, coherency, verifier, seed), with what tests would otherwise write by hand each time —
 * plugging devices, loading drivers, buffers with MDLs, IRPs run to completion, virtual time,
 * injected DMA errors, memory snapshots — and a teardown that fails the test on any leak.
 *
 *   it("reads", () => {
 *     const t = testMachine({ remapping: "strict" });   // disposed when the test ends
 *     ...
 *   });
 *
 * `dispose()` runs the machine until idle, removes every device from its driver and unloads the
 * drivers (as Driver Verifier checks a driver at unload), frees the kit's buffers, runs until idle
 * again (lazy flush queues drain), then checks leak-check.ts's list and throws a LeakError naming
 * every leak.
 */
import { type ContainerModule, ContainerModule as Module, type ServiceIdentifier } from "inversify";
import { onTestFinished } from "vitest";
import type { DeviceNode } from "../ddi/device-node.js";
import type { DriverLoadResult } from "../ddi/io-manager.js";
import { IoManager } from "../ddi/io-manager.js";
import type { Irp } from "../ddi/irp.js";
import { Kernel } from "../ddi/kernel.js";
import { Hal } from "../hal/hal.js";
import type { DmaBounceEvent } from "../hal/hal-events.js";
import type { DEVICE_OBJECT, IO_STATUS_BLOCK } from "../hal/wdm/device-object.js";
import { NT_SUCCESS, ntStatusName, STATUS_INVALID_DEVICE_REQUEST } from "../hal/wdm/ntstatus.js";
import type { Iommu } from "../iommu/iommu.js";
import type { IommuFaultEvent } from "../iommu/iommu-events.js";
import { Machine } from "../machine/machine.js";
import type { MachineOptions, RemappingMode } from "../machine/machine-options.js";
import type { FrameAllocator } from "../platform/frame-allocator.js";
import { Irql } from "../platform/irql.js";
import { KernelMemory } from "../platform/kernel-memory.js";
import { MemoryManager } from "../platform/memory-manager.js";
import { MemorySnapshot } from "../platform/memory-snapshot.js";
import type { PciBus, PciSlotRequest } from "../platform/pci-bus.js";
import type { PciDevice } from "../platform/pci-device.js";
import type { PhysicalMemory } from "../platform/physical-memory.js";
import { PlatformError } from "../platform/platform-error.js";
import type { Scheduler } from "../platform/scheduler.js";
import { DmaRemapper } from "../platform/tokens.js";
import type { Counters } from "../trace/counters.js";
import type { Disposer, EventBus, MachineEventArgs, MachineEventName } from "../trace/event-bus.js";
import { DmaVerifier } from "../verifier/dma-verifier.js";
import { verifierModule } from "../verifier/verifier-module.js";
import type { VerifierOptions } from "../verifier/verifier-options.js";
import { DmaErrorInjector, type DmaErrorRule, type InjectedDmaError } from "./dma-error-injector.js";
import { KernelAllocationTracker } from "./kernel-allocation-tracker.js";
import {
  DEFAULT_IGNORED_OWNERS,
  frameLeaks,
  halLeaks,
  type Leak,
  type LeakCheckOptions,
  LeakError,
  ownerCounts,
} from "./leak-check.js";
import { TEST_BUFFER_OWNER, TestBuffer, type TestBufferOptions } from "./test-buffer.js";
import "../hal/hal-events.js";
import "../iommu/iommu-events.js";

export interface TestMachineOptions extends MachineOptions {
  /** Load the DMA verifier (src/verifier): true for bug check mode, or its options. Default off. */
  readonly verifier?: boolean | VerifierOptions;
  /** Driver packages and test doubles, loaded after the machine's own modules and the verifier. */
  readonly modules?: readonly ContainerModule[];
  /** What dispose() checks; false checks nothing (a test that ends in a bug check). */
  readonly leakCheck?: boolean | LeakCheckOptions;
}

export interface RunOptions {
  /** Give up after this much virtual time (default: when the machine goes idle). */
  readonly limitNs?: number;
}

export interface SnapshotOptions {
  /** Buffers or frame owners (by name) whose memory may change. */
  readonly except?: readonly (TestBuffer | string)[];
  /**
   * Also watch what the machine writes as it works: IOMMU tables, the HAL's bounce, list and
   * common-buffer pages, and the shared small-pool pages where the HAL's scatter/gather lists and
   * drivers' own structures live (default false: they are excepted).
   */
  readonly includeMachine?: boolean;
}

/** Frame owners the machine itself writes as it works (excepted from snapshots by default). */
const MACHINE_OWNER = /^(iommu|hal\.|nonpaged-pool$)/;

export class TestMachine {
  readonly machine: Machine;
  readonly options: TestMachineOptions;
  /** Every fault the IOMMU processed since the machine was built, in order. */
  readonly iommuFaults: IommuFaultEvent[] = [];
  /** Every bounce copy (map registers below a device's reach, sub-page bounce pages), in order. */
  readonly bounces: DmaBounceEvent[] = [];
  readonly #buffers: TestBuffer[] = [];
  readonly #baseline: Map<string, number>;
  readonly #tracker: KernelAllocationTracker;
  readonly #subscriptions: Disposer[];
  #disposed = false;

  constructor(options: TestMachineOptions = {}) {
    const { verifier, modules = [], leakCheck: _leakCheck, ...machineOptions } = options;
    const verifierModules =
      verifier === undefined || verifier === false
        ? []
        : [verifierModule(verifier === true ? undefined : verifier)];
    this.options = options;
    this.machine = new Machine(machineOptions, [...verifierModules, injectorModule, ...modules]);
    const events = this.machine.events;
    this.#subscriptions = [
      events.on("iommu.fault", (event) => this.iommuFaults.push(event)),
      events.on("dma.bounce", (event) => this.bounces.push(event)),
    ];
    this.#tracker = new KernelAllocationTracker(this.kernel);
    this.#baseline = ownerCounts(this.frames);
  }

  get<T>(id: ServiceIdentifier<T>): T {
    return this.machine.get(id);
  }

  get mode(): RemappingMode {
    return this.machine.options.remapping;
  }

  get memory(): PhysicalMemory {
    return this.machine.memory;
  }

  get frames(): FrameAllocator {
    return this.machine.frames;
  }

  get scheduler(): Scheduler {
    return this.machine.scheduler;
  }

  get pci(): PciBus {
    return this.machine.pci;
  }

  get iommu(): Iommu {
    return this.machine.iommu;
  }

  get events(): EventBus {
    return this.machine.events;
  }

  get counters(): Counters {
    return this.machine.counters;
  }

  get io(): IoManager {
    return this.get(IoManager);
  }

  get kernel(): Kernel {
    return this.get(Kernel);
  }

  get hal(): Hal {
    return this.get(Hal);
  }

  /** The DMA verifier's violations and reports; only on a machine built with `verifier`. */
  get verifier(): DmaVerifier {
    if (!this.machine.container.isBound(DmaVerifier)) {
      throw new PlatformError(
        "bad-state",
        "this test machine has no verifier: build it with { verifier: true }",
      );
    }
    return this.get(DmaVerifier);
  }

  get disposed(): boolean {
    return this.#disposed;
  }

  // ---- devices and drivers ----

  /** Plugs `device` into the PCI bus; bus mastering stays off until a driver's START (or `busMaster`). */
  plug<T extends PciDevice>(device: T, slot: PciSlotRequest = {}): T {
    this.pci.attach(device, slot);
    return device;
  }

  /**
   * Enumerates the bus and loads every driver package bound in the machine, as boot does. Throws
   * if a DriverEntry fails; a device whose AddDevice or START fails stays "failed" (see `node`).
   */
  loadDrivers(): readonly DriverLoadResult[] {
    this.io.enumerate();
    const results = this.io.loadDrivers();
    const failed = results.find((r) => !NT_SUCCESS(r.status));
    if (failed !== undefined) {
      throw new PlatformError("bad-state", `a DriverEntry returned ${ntStatusName(failed.status)}`);
    }
    return results;
  }

  /** The device node of a plugged device. */
  node(device: PciDevice): DeviceNode {
    return this.io.node(device.requesterId);
  }

  /** The function driver's device object on `device`: throws if no driver started it. */
  fdo(device: PciDevice): DEVICE_OBJECT {
    const node = this.node(device);
    if (node.fdo === undefined || node.state !== "started") {
      const why = node.problem === undefined ? "" : ` (problem ${ntStatusName(node.problem)})`;
      throw new PlatformError(
        "bad-state",
        `${device.name} has no started driver: its node is ${node.state}${why}`,
      );
    }
    return node.fdo;
  }

  // ---- memory ----

  /** A kernel buffer with a built MDL, freed by dispose(). */
  buffer(length: number, options: TestBufferOptions = {}): TestBuffer {
    const buffer = new TestBuffer(`${TEST_BUFFER_OWNER}:${this.#buffers.length + 1}`, length, options, {
      kernel: this.get(KernelMemory),
      mm: this.get(MemoryManager),
      frames: this.frames,
    });
    this.#buffers.push(buffer);
    return buffer;
  }

  /** Physical memory as devices see it (no CPU cache). */
  readPhysical(address: number, length: number): Uint8Array {
    const out = new Uint8Array(length);
    this.memory.read(address, out);
    return out;
  }

  writePhysical(address: number, bytes: Uint8Array): void {
    this.memory.write(address, bytes);
  }

  /** Hashes of every frame now, to prove later that nothing outside `except` was written. */
  snapshot(options: SnapshotOptions = {}): MemorySnapshot {
    const owners = new Set<number>();
    for (const item of options.except ?? []) {
      owners.add(item instanceof TestBuffer ? item.owner : this.frames.registerOwner(item));
    }
    if (options.includeMachine !== true) {
      for (const name of ownerCounts(this.frames).keys()) {
        if (MACHINE_OWNER.test(name)) owners.add(this.frames.registerOwner(name));
      }
    }
    return MemorySnapshot.take(this.memory, this.frames, { exceptOwners: [...owners] });
  }

  // ---- MMIO, as a driver's READ/WRITE_REGISTER_ULONG would do it ----

  mmioRead(device: PciDevice, offset: number): number {
    return this.pci.mmioRead32(device.barAddress + offset);
  }

  mmioWrite(device: PciDevice, offset: number, value: number): void {
    this.pci.mmioWrite32(device.barAddress + offset, value >>> 0);
  }

  /** A 64-bit value as two registers, low dword at `offset`, high at `offset + 4`. */
  mmioWrite64(device: PciDevice, offset: number, value: number): void {
    this.mmioWrite(device, offset, value % 2 ** 32);
    this.mmioWrite(device, offset + 4, Math.floor(value / 2 ** 32));
  }

  // ---- IRPs ----

  /** An IRP_MJ_READ of `buffer` to the driver on `target` (a device, or a device object). */
  sendRead(target: PciDevice | DEVICE_OBJECT, buffer: TestBuffer, byteOffset = 0): Irp {
    return this.io.sendRead(this.#deviceObject(target), buffer.mdl, byteOffset);
  }

  sendWrite(target: PciDevice | DEVICE_OBJECT, buffer: TestBuffer, byteOffset = 0): Irp {
    return this.io.sendWrite(this.#deviceObject(target), buffer.mdl, byteOffset);
  }

  /** Runs the machine until `irp` completes; returns its IoStatus. */
  runUntilCompleted(irp: Irp, options: RunOptions = {}): IO_STATUS_BLOCK {
    this.runUntil(() => irp.completed, `IRP ${irp.id} to complete`, options);
    return irp.IoStatus;
  }

  // ---- time ----

  /** Virtual time, ns. */
  get now(): number {
    return this.scheduler.now;
  }

  /** Runs what is due within `ns` and moves the clock `ns` forward. */
  advance(ns: number): void {
    this.scheduler.runFor(ns);
  }

  runUntilIdle(): void {
    this.scheduler.runUntilIdle();
  }

  /** Runs until `predicate` holds; throws, saying what it waited for, if the machine idles (or the limit passes) first. */
  runUntil(predicate: () => boolean, what = "the condition", options: RunOptions = {}): void {
    if (this.scheduler.runUntil(predicate, options.limitNs)) return;
    const why = options.limitNs === undefined ? "the machine went idle" : `${options.limitNs} ns passed`;
    throw new PlatformError("bad-state", `waited for ${what}, but ${why} first (now ${this.now} ns)`);
  }

  /** Runs until the bus carries `name` (with a payload `predicate` accepts) and returns the payload. */
  runUntilEvent<K extends MachineEventName>(
    name: K,
    predicate: (...args: MachineEventArgs<K>) => boolean = () => true,
    options: RunOptions = {},
  ): MachineEventArgs<K>[0] {
    let seen: MachineEventArgs<K> | undefined;
    const dispose = this.events.on(name, (...args) => {
      if (seen === undefined && predicate(...args)) seen = args;
    });
    try {
      this.runUntil(() => seen !== undefined, `event "${name}"`, options);
    } finally {
      dispose();
    }
    return seen![0];
  }

  // ---- injected errors ----

  /** Makes matching DMA accesses fail at the port, as a translation fault would (dma-error-injector.ts). */
  injectDmaError(rule: DmaErrorRule): InjectedDmaError {
    return this.get(DmaErrorInjector).inject(rule);
  }

  clearDmaErrors(injected?: InjectedDmaError): void {
    this.get(DmaErrorInjector).clear(injected);
  }

  // ---- teardown ----

  /** What is held right now (no settling, no unloading): the list dispose() would report. */
  leaks(options: LeakCheckOptions = {}): Leak[] {
    const ignored = new Set(options.ignoreOwners ?? DEFAULT_IGNORED_OWNERS);
    const leaks = [
      ...halLeaks(this.hal.resources()),
      ...frameLeaks(
        ownerCounts(this.frames),
        this.#baseline,
        (owner) => ignored.has(owner) || owner.startsWith(`${TEST_BUFFER_OWNER}:`),
      ),
      ...this.#tracker.leaks(),
    ];
    if (this.scheduler.irql !== Irql.passive) {
      leaks.push({
        kind: "irql",
        count: 1,
        message: `the IRQL was left at ${this.scheduler.irql}, not PASSIVE_LEVEL`,
      });
    }
    if (this.scheduler.pending > 0) {
      leaks.push({
        kind: "scheduler",
        count: this.scheduler.pending,
        message: `${this.scheduler.pending} event(s) or DPC(s) still pending`,
      });
    }
    return leaks;
  }

  /**
   * Settles the machine, unloads the drivers, frees the kit's buffers and checks for leaks;
   * throws a LeakError listing them. `check: false` only releases. Calling it again does nothing.
   */
  dispose(check = true): void {
    if (this.#disposed) return;
    this.#disposed = true;
    const setting = this.options.leakCheck ?? true;
    const enabled = check && setting !== false;
    const options: LeakCheckOptions = typeof setting === "object" ? setting : {};
    const problems: Leak[] = [];
    const attempt = (what: string, step: () => void): void => {
      try {
        step();
      } catch (error) {
        problems.push({ kind: "teardown", count: 1, message: `${what} failed: ${(error as Error).message}` });
      }
    };
    if (this.scheduler.irql !== Irql.passive) {
      problems.push({
        kind: "irql",
        count: 1,
        message: `the IRQL was left at ${this.scheduler.irql}, not PASSIVE_LEVEL`,
      });
      attempt("lowering the IRQL", () => this.scheduler.lowerIrql(Irql.passive));
    }
    attempt("running until idle", () => this.runUntilIdle());
    if (options.unloadDrivers ?? true) {
      attempt("unloading the drivers", () => this.#unloadDrivers(problems));
      attempt("running until idle after unloading", () => this.runUntilIdle());
    }
    for (const buffer of this.#buffers) attempt("freeing a test buffer", () => buffer.free());
    attempt("running until idle after freeing", () => this.runUntilIdle());
    for (const dispose of this.#subscriptions) dispose();
    if (!enabled) return;
    const leaks = [...problems, ...this.leaks(options)];
    if (leaks.length > 0) throw new LeakError(leaks, `the test machine (remapping ${this.mode})`);
  }

  /** Unloads every driver; then the lines of the devices they drove must be disconnected. */
  #unloadDrivers(problems: Leak[]): void {
    const driven = this.io.nodes.filter((node) => node.driver !== undefined).map((node) => node.requesterId);
    for (const driver of this.io.drivers) {
      if (this.io.unloadDriver(driver) !== STATUS_INVALID_DEVICE_REQUEST) continue;
      for (const node of this.io.nodes) if (node.driver === driver) this.io.removeDevice(node);
      problems.push({
        kind: "drivers",
        count: 1,
        message: `${driver.DriverName} has no DriverUnload, so it cannot be unloaded (its devices were removed)`,
      });
    }
    for (const rid of driven) {
      const device = this.pci.has(rid) ? this.pci.device(rid) : undefined;
      if (device !== undefined && this.scheduler.isConnected(device.interruptLine)) {
        problems.push({
          kind: "interrupts",
          count: 1,
          message: `interrupt line ${device.interruptLine} of ${device.name} is still connected after its driver left (IoDisconnectInterrupt)`,
        });
      }
    }
  }

  #deviceObject(target: PciDevice | DEVICE_OBJECT): DEVICE_OBJECT {
    return "DeviceObjectExtension" in target ? target : this.fdo(target);
  }
}

/** The DMA error injector sits in front of the IOMMU on every test machine. */
const injectorModule = new Module(({ bind, rebind }) => {
  bind(DmaErrorInjector).toSelf().inSingletonScope();
  rebind(DmaRemapper).toService(DmaErrorInjector);
});

/** A TestMachine for this code, to be disposed by the caller. */
export function createTestMachine(options: TestMachineOptions = {}): TestMachine {
  return new TestMachine(options);
}

/**
 * A TestMachine for the running vitest test, disposed (with the leak check) when the test ends.
 * A test that already failed is only released: its leaks would bury the first error.
 */
export function testMachine(options: TestMachineOptions = {}): TestMachine {
  const machine = new TestMachine(options);
  onTestFinished((context) => machine.dispose(context.task.result?.state !== "fail"));
  return machine;
}
