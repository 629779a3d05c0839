/**
 * The DMA verifier's state and its eyes outside DMA_OPERATIONS: the books of every verified
 * adapter, the violation log, and what it watches on the machine bus:
 *
 * - "iommu.fault" of a verified device: 0xE6/0x26, IOMMU-detected DMA violation (reference
 *   section 7: p2 the device, p3 the faulting address, p4 the hardware fault reason);
 * - "device.transfer" writes of a verified device: a write that reached a common buffer's fence
 *   (0x0F/1-5), or memory no live mapping of the device covers (0x0F/3, a free map register
 *   overwritten: a bounce page no transfer uses, an IOVA kept alive by a stale IOTLB entry, or
 *   memory the driver never mapped);
 * - "pnp.state": the driver left the device (REMOVE) with its adapter still open and DMA
 *   resources outstanding: dma-debug's "device driver has pending DMA allocations while released
 *   from device", with the call site of each allocation;
 * - CPU loads (through WatchedCpuMemory): a read of a buffer the device may still be writing.
 *
 * In bug check mode a violation throws BugCheck 0xE6 with the four parameters; in log mode it is
 * kept (up to maxViolations, then only counted), emitted as "verifier.violation", and the machine
 * goes on.
 */
import { inject, injectable } from "inversify";
import type { AdapterObject } from "../hal/adapter-object.js";
import { DirectMapping } from "../hal/direct-mapping.js";
import { BugCheck, DRIVER_VERIFIER_DMA_VIOLATION } from "../hal/wdm/bug-check.js";
import type { DEVICE_OBJECT } from "../hal/wdm/device-object.js";
import { CpuMemory } from "../platform/cpu-memory.js";
import { KernelMemory } from "../platform/kernel-memory.js";
import { formatAddress, PAGE_SIZE } from "../platform/page.js";
import { PhysicalMemory } from "../platform/physical-memory.js";
import type { DeviceTransferEvent } from "../platform/platform-events.js";
import { Counters } from "../trace/counters.js";
import { EventBus } from "../trace/event-bus.js";
import { AdapterLedger, type LogicalRange, type VerifiedCommonBuffer } from "./adapter-ledger.js";
import { CommonBufferFence, fencedLength } from "./common-buffer-fence.js";
import type { AdapterDmaReport } from "./dma-report.js";
import { InFlightIndex } from "./in-flight-index.js";
import { VerifierOptions } from "./tokens.js";
import type { AllocationSite, DmaViolationEvent } from "./verifier-events.js";
import "./verifier-events.js";
import { modeFor, type ResolvedVerifierOptions, type VerifierMode } from "./verifier-options.js";
import { Overrun, VerifierCode, verifierCodeName } from "./violation-codes.js";
import { WatchedCpuMemory } from "./watched-cpu-memory.js";

/** A violation as the decorator reports it. */
export interface ViolationReport {
  readonly member: string;
  readonly code: number;
  readonly p2: number;
  readonly p3: number;
  readonly p4: number;
  readonly explanation: string;
  readonly allocations?: readonly AllocationSite[];
  /** Raised by hardware (a device, the IOMMU): no driver call stack to show. */
  readonly hardware?: boolean;
  /** The driver, when there is no adapter to name it (IoGetDmaAdapter's checks). */
  readonly driver?: string;
}

const LEFT_DEVICE = new Set(["enumerated", "failed", "deleted"]);

@injectable()
export class DmaVerifier {
  readonly options: ResolvedVerifierOptions;
  readonly inFlight = new InFlightIndex();
  readonly fence: CommonBufferFence;
  readonly #events: EventBus;
  readonly #counters: Counters;
  readonly #direct: DirectMapping;
  readonly #ledgers = new Map<AdapterObject, AdapterLedger>();
  readonly #byId = new Map<number, AdapterLedger>();
  readonly #byRequester = new Map<number, AdapterLedger[]>();
  /** Requesters that also have adapters the verifier does not watch: no coverage check for them. */
  readonly #partlyVerified = new Set<number>();
  /** Live common buffers of verified adapters, by the VA the driver got. */
  readonly #buffers = new Map<number, VerifiedCommonBuffer>();
  readonly #violations: DmaViolationEvent[] = [];
  readonly #orphaned = new WeakSet<AdapterLedger>();
  #violationCount = 0;
  #droppedCalls = 0;
  #nextSerial = 1;

  constructor(
    @inject(VerifierOptions) options: ResolvedVerifierOptions,
    @inject(EventBus) events: EventBus,
    @inject(Counters) counters: Counters,
    @inject(KernelMemory) kernel: KernelMemory,
    @inject(CpuMemory) cpu: CpuMemory,
    @inject(PhysicalMemory) memory: PhysicalMemory,
    @inject(DirectMapping) direct: DirectMapping,
  ) {
    this.options = options;
    this.#events = events;
    this.#counters = counters;
    this.#direct = direct;
    this.fence = new CommonBufferFence(kernel, cpu, memory);
    if (cpu instanceof WatchedCpuMemory) cpu.readMonitor = (pa, length) => this.#cpuRead(pa, length);
    events.on("iommu.fault", (fault) => {
      const ledger = this.#latest(fault.requesterId);
      if (ledger === undefined) return;
      this.violate(ledger, {
        member: "iommu",
        code: VerifierCode.iommuViolation,
        p2: fault.requesterId,
        p3: fault.address,
        p4: fault.reason,
        explanation: `the IOMMU blocked a DMA ${fault.access} of device ${formatRid(fault.requesterId)} at ${formatAddress(fault.address)} (fault reason ${fault.reason}): the device used an address no adapter mapped for it`,
        hardware: true,
      });
    });
    events.on("device.transfer", (transfer) => this.#deviceTransfer(transfer));
    // "pnp.state" is declared by the DDI (src/ddi/ddi-events.ts); the verifier only listens to it.
    events.on("pnp.state", (change) => {
      if (LEFT_DEVICE.has(change.state)) this.#deviceLeft(change.requesterId);
    });
  }

  /** Violations kept in log mode, oldest first. */
  get violations(): readonly DmaViolationEvent[] {
    return this.#violations;
  }

  /** Violations found, kept or not. */
  get violationCount(): number {
    return this.#violationCount;
  }

  /** Calls log mode did not pass on to the HAL (the violation would have crashed or corrupted it). */
  get droppedCalls(): number {
    return this.#droppedCalls;
  }

  /** The decorator dropped a call (log mode). */
  dropped(): void {
    this.#droppedCalls++;
    this.#counters.add("verifier.dropped-calls");
  }

  clearViolations(): void {
    this.#violations.length = 0;
    this.#violationCount = 0;
  }

  /** The books of a verified adapter. */
  ledgerOf(adapter: unknown): AdapterLedger | undefined {
    return this.#ledgers.get(adapter as AdapterObject);
  }

  ledgerById(id: number): AdapterLedger | undefined {
    return this.#byId.get(id);
  }

  /** `!dma`: one record per adapter the verifier watches, in IoGetDmaAdapter order. */
  report(): AdapterDmaReport[] {
    return [...this.#ledgers.values()].map((ledger) => ({
      adapter: ledger.id,
      requesterId: ledger.requesterId,
      driver: ledger.driver,
      mode: ledger.mode,
      released: ledger.released,
      maximumMapRegisters: ledger.adapter.capabilities.numberOfMapRegisters,
      mapRegisters: { ...ledger.mapRegisters },
      scatterGatherLists: { ...ledger.scatterGatherLists },
      commonBuffers: { ...ledger.commonBuffers },
      adapterChannels: { ...ledger.adapterChannels },
      bytesMappedSinceFlush: ledger.bytesMappedSinceFlush,
      outstanding: ledger.outstanding(),
    }));
  }

  /** Checks the fences of every live common buffer now (they are also checked at frees and flushes). */
  checkFences(): void {
    for (const ledger of this.#ledgers.values()) this.checkFencesOf(ledger, "checkFences");
  }

  checkFencesOf(ledger: AdapterLedger, member: string): void {
    for (const buffer of ledger.buffers.values()) this.checkFence(ledger, buffer, member);
  }

  checkFence(ledger: AdapterLedger, buffer: VerifiedCommonBuffer, member: string, memoryOnly = false): void {
    if (!buffer.fenced) return;
    const damage = memoryOnly
      ? this.fence.checkMemory(buffer.virtualAddress, buffer.length)
      : this.fence.check(buffer.virtualAddress, buffer.length);
    if (damage === undefined) return;
    const where =
      damage.subCode === Overrun.tagBefore || damage.subCode === Overrun.paddingBefore ? "before" : "after";
    this.violate(ledger, {
      member,
      code: VerifierCode.boundaryOverrun,
      p2: damage.subCode,
      p3: damage.p3,
      p4: damage.p4,
      explanation: `the ${damage.subCode <= Overrun.tagAfter ? "DmaVrfy0 tag" : "0x0F padding"} ${where} common buffer ${formatAddress(buffer.virtualAddress)} (${buffer.length} bytes) was overwritten at ${formatAddress(damage.address)}, ${damage.seenIn === "cpu" ? "by a CPU store (the driver)" : "in memory (the device or the driver)"}`,
      hardware: memoryOnly,
    });
    // Rebuild the fence so one overrun is reported once.
    this.fence.build(buffer.virtualAddress, buffer.length);
  }

  // ------------------------------------------------------------------ for the decorator

  /** IoGetDmaAdapter handed out `adapter`: start its books unless it is out of scope. */
  open(adapter: AdapterObject, pdo: DEVICE_OBJECT, stack: string): AdapterLedger | undefined {
    const driver = driverOf(pdo);
    const mode = modeFor(this.options, { adapter: adapter.id, requesterId: adapter.requesterId, driver });
    const rid = adapter.requesterId;
    if (mode === "off") {
      if (rid !== undefined) this.#partlyVerified.add(rid);
      return undefined;
    }
    const ledger = new AdapterLedger(adapter, mode, driver, stack);
    this.#ledgers.set(adapter, ledger);
    this.#byId.set(adapter.id, ledger);
    if (rid !== undefined) {
      const list = this.#byRequester.get(rid) ?? [];
      list.push(ledger);
      this.#byRequester.set(rid, list);
    }
    return ledger;
  }

  /** The service name of the driver on a PDO's stack ("" when none). */
  driverOf(pdo: DEVICE_OBJECT): string {
    return driverOf(pdo);
  }

  /** The mode IoGetDmaAdapter's checks use before an adapter exists. */
  modeForDevice(pdo: DEVICE_OBJECT): VerifierMode | "off" {
    return modeFor(this.options, {
      adapter: -1,
      requesterId: pdo?.DeviceObjectExtension?.requesterId,
      driver: driverOf(pdo),
    });
  }

  /** The mode for violations with no adapter (a NULL DMA_ADAPTER). */
  get defaultMode(): VerifierMode | "off" {
    return this.options.onlyListed ? "off" : this.options.mode;
  }

  serial(): number {
    return this.#nextSerial++;
  }

  /** Where the driver is: the caller's stack without the verifier's and the table's frames. */
  stack(): string {
    if (!this.options.captureStacks) return "";
    const lines = (new Error().stack ?? "").split("\n").slice(1);
    return lines
      .filter((line) => !line.includes("/src/verifier/") && !line.includes("/src/hal/dma-operations-table"))
      .map((line) => line.trim())
      .join("\n");
  }

  addBuffer(buffer: VerifiedCommonBuffer): void {
    this.#buffers.set(buffer.virtualAddress, buffer);
  }

  removeBuffer(va: number): void {
    this.#buffers.delete(va);
  }

  /** A live verified common buffer by the VA its driver got, whichever adapter it belongs to. */
  bufferAt(va: number): VerifiedCommonBuffer | undefined {
    return this.#buffers.get(va);
  }

  /**
   * Reports a violation under the mode of `ledger` (the default mode without one). Bug check
   * mode throws; log mode records and returns.
   */
  violate(
    ledger: AdapterLedger | undefined,
    report: ViolationReport,
    mode = ledger?.mode ?? this.defaultMode,
  ): void {
    if (mode === "off") return;
    const name = verifierCodeName(report.code);
    this.#violationCount++;
    this.#counters.add("verifier.violations");
    this.#counters.add(`verifier.violation.0x${report.code.toString(16).padStart(2, "0")}`);
    const parameters: [number, number, number, number] = [report.code, report.p2, report.p3, report.p4];
    const allocations = report.allocations ?? [];
    if (mode === "bugcheck") {
      const sites = allocations.map(
        (site) =>
          `\n  ${site.kind}: ${site.detail}${site.stack === "" ? "" : `\n    ${site.stack.split("\n")[0]}`}`,
      );
      throw new BugCheck(
        DRIVER_VERIFIER_DMA_VIOLATION,
        parameters,
        `${name}: ${report.explanation}${sites.join("")}`,
      );
    }
    const keep = this.#violations.length < this.options.maxViolations;
    if (!keep && !this.#events.hasListeners("verifier.violation")) return;
    const event: DmaViolationEvent = {
      code: report.code,
      parameters,
      name,
      explanation: report.explanation,
      member: report.member,
      adapter: ledger?.id ?? -1,
      requesterId: ledger?.requesterId ?? -1,
      driver: ledger?.driver ?? report.driver ?? "",
      stack: report.hardware === true ? "" : this.stack(),
      allocations,
    };
    if (keep) this.#violations.push(event);
    this.#events.emit("verifier.violation", event);
  }

  // ------------------------------------------------------------------ watching the machine

  #latest(requesterId: number): AdapterLedger | undefined {
    const ledgers = this.#byRequester.get(requesterId);
    if (ledgers === undefined) return undefined;
    for (let i = ledgers.length - 1; i >= 0; i--) if (!ledgers[i]!.released) return ledgers[i];
    return ledgers[ledgers.length - 1];
  }

  #cpuRead(pa: number, length: number): void {
    if (!this.options.staleReads) return;
    const range = this.inFlight.deviceWritableAt(pa, length);
    if (range === undefined) return;
    this.violate(this.#byId.get(range.adapter), {
      member: "cpu",
      code: VerifierCode.staleRead,
      p2: pa,
      p3: range.mdl.id,
      p4: length,
      explanation: `the CPU read ${length} bytes at physical ${formatAddress(pa)}, inside MDL ${range.mdl.id}, which adapter ${range.adapter} mapped for the device to write and has not flushed or put back yet: the data may be stale (bounced data is copied back at FlushAdapterBuffers / PutScatterGatherList)`,
    });
  }

  #deviceTransfer(transfer: DeviceTransferEvent): void {
    if (transfer.access !== "write" || transfer.bytesDone === 0) return;
    const ledgers = this.#byRequester.get(transfer.requesterId);
    if (ledgers === undefined) return;
    const start = transfer.busAddress;
    const end = start + transfer.bytesDone;
    for (const ledger of ledgers) {
      for (const buffer of ledger.buffers.values()) {
        if (!buffer.fenced) continue;
        const outer = buffer.logicalAddress - PAGE_SIZE;
        const outerEnd = outer + fencedLength(buffer.length);
        const inside = start >= buffer.logicalAddress && end <= buffer.logicalAddress + buffer.length;
        if (!inside && start < outerEnd && outer < end) this.checkFence(ledger, buffer, "device", true);
      }
    }
    if (this.#partlyVerified.has(transfer.requesterId)) return;
    const uncovered = firstUncovered(start, end, liveRanges(ledgers));
    if (uncovered === undefined) return;
    this.violate(this.#latest(transfer.requesterId), {
      member: "device",
      code: VerifierCode.boundaryOverrun,
      p2: Overrun.freeMapRegister,
      p3: uncovered,
      p4: transfer.bytesDone,
      explanation: `device ${formatRid(transfer.requesterId)} wrote ${transfer.bytesDone} bytes at logical ${formatAddress(start)}; ${formatAddress(uncovered)} is ${this.#describeUncovered(uncovered)}`,
      hardware: true,
    });
  }

  #describeUncovered(address: number): string {
    for (const pool of this.#direct.pools) {
      if (address >= pool.base && address < pool.base + pool.pages * PAGE_SIZE) {
        return "a map register (bounce page) no transfer of it is using";
      }
    }
    return "not mapped for it by any live transfer or common buffer (a stale IOTLB entry under lazy invalidation, or memory its driver never mapped)";
  }

  #deviceLeft(requesterId: number): void {
    for (const ledger of this.#byRequester.get(requesterId) ?? []) {
      if (ledger.released || this.#orphaned.has(ledger)) continue;
      this.#orphaned.add(ledger);
      const outstanding = ledger.outstanding();
      const adapterSite: AllocationSite = {
        kind: "adapter",
        detail: `adapter ${ledger.id} (IoGetDmaAdapter), never put back with PutDmaAdapter`,
        stack: ledger.stack,
      };
      this.violate(ledger, {
        member: "pnp",
        code: VerifierCode.leakAtUnload,
        p2: ledger.id,
        p3: outstanding.length,
        p4: 0,
        explanation: `${ledger.driver === "" ? "the driver" : `driver ${ledger.driver}`} left device ${formatRid(requesterId)} with adapter ${ledger.id} still open and ${outstanding.length} DMA allocations outstanding`,
        allocations: [adapterSite, ...outstanding],
        hardware: true,
      });
    }
  }
}

/** The service name of the driver whose device object sits on the PDO ("" when none). */
function driverOf(pdo: DEVICE_OBJECT): string {
  const name = pdo?.AttachedDevice?.DriverObject?.DriverName ?? "";
  return name.replace(/^\\Driver\\/, "");
}

function formatRid(requesterId: number): string {
  return `0x${requesterId.toString(16).padStart(4, "0")}`;
}

/** Every logical range the device may legitimately write through its verified adapters. */
function liveRanges(ledgers: readonly AdapterLedger[]): LogicalRange[] {
  const ranges: LogicalRange[] = [];
  for (const ledger of ledgers) {
    for (const file of ledger.mappedFiles()) for (const piece of file.pieces) ranges.push(...piece.logical);
    for (const list of ledger.lists.values()) {
      for (const element of list.list.Elements)
        ranges.push({ address: element.Address, length: element.Length });
    }
    for (const buffer of ledger.buffers.values()) {
      ranges.push(
        buffer.fenced
          ? { address: buffer.logicalAddress - PAGE_SIZE, length: fencedLength(buffer.length) }
          : { address: buffer.logicalAddress, length: buffer.length },
      );
    }
    for (const vector of ledger.vectors.values()) ranges.push(...vector.elements.values());
  }
  return ranges;
}

/** The first address of [start, end) no range covers, or undefined. */
function firstUncovered(start: number, end: number, ranges: LogicalRange[]): number | undefined {
  for (const range of ranges) {
    if (start >= range.address && end <= range.address + range.length) return undefined;
  }
  ranges.sort((a, b) => a.address - b.address);
  let position = start;
  for (const range of ranges) {
    if (range.address > position) break;
    position = Math.max(position, range.address + range.length);
    if (position >= end) return undefined;
  }
  return position;
}
