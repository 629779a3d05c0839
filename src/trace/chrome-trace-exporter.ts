/**
 * Exports what machines did as a Chrome trace-event JSON file (the "Trace Event Format" that
 * chrome://tracing and the Perfetto UI open): one process per machine, one track (tid) per PCI
 * device and per CPU context, a complete "X" slice per DMA the device made through its port,
 * instant "i" events for IOMMU faults, invalidations, interrupts, DPCs, bounce copies, verifier
 * violations and IRP completions, and async "b"/"e" pairs for the lifetime of each DMA mapping.
 *
 * It only subscribes to the EventBus: names and payloads are those of the layers' *-events.ts
 * files, read structurally. Time is virtual (ns) and comes from the clock the caller passes; the
 * format counts microseconds, so ns / 1000, with `displayTimeUnit: "ns"`.
 *
 * A port access is instantaneous in the model; its slice lasts `transferDurationNs(requesterId,
 * bytes)` (the device's bandwidth, by default 1 byte per ns) and accesses of one device are laid
 * end to end, as its DMA engine issues them, so slices on a track never overlap.
 */
import { writeFileSync } from "node:fs";
import type { Disposer, EventBus } from "./event-bus.js";

/** One trace event (Trace Event Format: name, ph, ts in µs, pid, tid, and per phase extras). */
export interface ChromeTraceEvent {
  readonly name: string;
  readonly ph: "X" | "i" | "b" | "e" | "M";
  readonly ts: number;
  readonly pid: number;
  readonly tid: number;
  readonly cat?: string;
  readonly dur?: number;
  /** Instant scope: "t" thread, "p" process. */
  readonly s?: "t" | "p";
  readonly id?: string;
  readonly args?: Readonly<Record<string, unknown>>;
}

export interface ChromeTraceFile {
  readonly traceEvents: readonly ChromeTraceEvent[];
  readonly displayTimeUnit: "ns";
  readonly otherData: Readonly<Record<string, string>>;
}

export interface TraceProcessOptions {
  /** The process id of this machine in the trace (one per machine). */
  readonly pid: number;
  /** Shown as the process name ("nic / strict"). */
  readonly name: string;
  /** The machine's virtual clock, in ns. */
  readonly now: () => number;
  /** How long a port access of `bytes` takes on that device, in ns (default: `bytes`). */
  readonly transferDurationNs?: (requesterId: number, bytes: number) => number;
}

/** Fixed tracks of each process; devices get DEVICE_TID_BASE + requester id. */
export const TraceTrack = {
  passive: 1,
  dpc: 2,
  interrupt: 3,
  hal: 4,
  iommu: 5,
  offload: 6,
} as const;
const TRACK_NAMES: Readonly<Record<number, string>> = {
  [TraceTrack.passive]: "CPU: passive (PnP, IRPs)",
  [TraceTrack.dpc]: "CPU: DISPATCH_LEVEL (DPCs)",
  [TraceTrack.interrupt]: "CPU: DIRQL (interrupts)",
  [TraceTrack.hal]: "HAL: map registers, lists, bounce copies",
  [TraceTrack.iommu]: "IOMMU: faults, invalidations",
  [TraceTrack.offload]: "Offload: CPU copies",
};
export const DEVICE_TID_BASE = 1000;
const OFFLOAD_TID_BASE = 100;

export class ChromeTraceExporter {
  readonly #events: ChromeTraceEvent[] = [];

  /** Events collected so far. */
  get eventCount(): number {
    return this.#events.length;
  }

  /** Subscribes to one machine's bus as process `options.pid`; the disposer unsubscribes. */
  attach(bus: EventBus, options: TraceProcessOptions): Disposer {
    const { pid, now } = options;
    const duration = options.transferDurationNs ?? ((_rid: number, bytes: number): number => bytes);
    const push = (event: ChromeTraceEvent): void => {
      this.#events.push(event);
    };
    const ts = (): number => now() / 1000;
    const instant = (tid: number, name: string, cat: string, args: Record<string, unknown>): void =>
      push({ name, ph: "i", s: "t", ts: ts(), pid, tid, cat, args });
    /** Where each device's DMA engine is free again, in ns. */
    const engineFree = new Map<number, number>();
    /** One track per offload channel (copies on one channel never overlap); the CPU's is TraceTrack.offload. */
    const offloadTracks = new Map<string, number>([["", TraceTrack.offload]]);
    const offloadTrack = (channel: string): number => {
      let tid = offloadTracks.get(channel);
      if (tid === undefined) {
        tid = OFFLOAD_TID_BASE + offloadTracks.size;
        offloadTracks.set(channel, tid);
        push({
          name: "thread_name",
          ph: "M",
          ts: 0,
          pid,
          tid,
          args: { name: `Offload: channel ${channel}` },
        });
      }
      return tid;
    };

    push({ name: "process_name", ph: "M", ts: 0, pid, tid: 0, args: { name: options.name } });
    push({ name: "process_sort_index", ph: "M", ts: 0, pid, tid: 0, args: { sort_index: pid } });
    for (const [tid, name] of Object.entries(TRACK_NAMES)) {
      push({ name: "thread_name", ph: "M", ts: 0, pid, tid: Number(tid), args: { name } });
      push({
        name: "thread_sort_index",
        ph: "M",
        ts: 0,
        pid,
        tid: Number(tid),
        args: { sort_index: Number(tid) },
      });
    }

    const disposers: Disposer[] = [
      bus.on("pci.attach", (e) => {
        const tid = DEVICE_TID_BASE + e.requesterId;
        push({
          name: "thread_name",
          ph: "M",
          ts: 0,
          pid,
          tid,
          args: { name: `device ${rid(e.requesterId)} ${e.name}` },
        });
        push({ name: "thread_sort_index", ph: "M", ts: 0, pid, tid, args: { sort_index: tid } });
      }),
      bus.on("pci.detach", (e) =>
        instant(DEVICE_TID_BASE + e.requesterId, "unplugged", "pci", { name: e.name }),
      ),
      bus.on("device.transfer", (e) => {
        const tid = DEVICE_TID_BASE + e.requesterId;
        const start = Math.max(now(), engineFree.get(e.requesterId) ?? 0);
        const dur = Math.max(1, duration(e.requesterId, e.length));
        engineFree.set(e.requesterId, start + dur);
        push({
          name: e.ok ? `DMA ${e.access} ${e.length} B` : `DMA ${e.access} ${e.kind}`,
          ph: "X",
          ts: start / 1000,
          dur: dur / 1000,
          pid,
          tid,
          cat: "dma.transfer",
          args: {
            busAddress: hex(e.busAddress),
            length: e.length,
            bytesDone: e.bytesDone,
            ok: e.ok,
            kind: e.kind,
          },
        });
      }),
      bus.on("iommu.fault", (e) => {
        const args = {
          unit: e.unit,
          address: hex(e.address),
          access: e.access,
          reason: e.reason,
          recorded: e.recorded,
        };
        instant(DEVICE_TID_BASE + e.requesterId, "IOMMU fault", "iommu.fault", args);
        instant(TraceTrack.iommu, `fault ${rid(e.requesterId)} ${hex(e.address)}`, "iommu.fault", args);
      }),
      bus.on("iommu.fault-interrupt", (e) =>
        instant(TraceTrack.iommu, "fault event interrupt", "iommu.fault", {
          unit: e.unit,
          faultStatus: hex(e.faultStatus),
        }),
      ),
      bus.on("iommu.invalidate", (e) =>
        instant(TraceTrack.iommu, `invalidate ${e.kind}`, "iommu.invalidate", {
          unit: e.unit,
          domainId: e.domainId,
          address: hex(e.address),
          pages: e.pages,
          dropped: e.dropped,
        }),
      ),
      bus.on("dma.invalidate", (e) =>
        instant(TraceTrack.iommu, `HAL flush (${e.kind})`, "dma.invalidate", {
          domain: e.domain,
          iova: hex(e.iova),
          pages: e.pages,
          ranges: e.ranges,
        }),
      ),
      bus.on("iommu.context", (e) =>
        instant(TraceTrack.iommu, `context ${e.kind} ${rid(e.requesterId)}`, "iommu.context", {
          unit: e.unit,
          domainId: e.domainId,
        }),
      ),
      bus.on("dma.map", (e) =>
        push({
          name: `mapped ${e.kind}`,
          ph: "b",
          ts: ts(),
          pid,
          tid: DEVICE_TID_BASE + e.requesterId,
          cat: "dma.mapping",
          id: `${e.adapter}:${e.iova}`,
          args: {
            iova: hex(e.iova),
            length: e.length,
            pages: e.pages,
            direction: e.direction,
            bounced: e.bounced,
          },
        }),
      ),
      bus.on("dma.unmap", (e) =>
        push({
          name: `mapped ${e.kind}`,
          ph: "e",
          ts: ts(),
          pid,
          tid: DEVICE_TID_BASE + e.requesterId,
          cat: "dma.mapping",
          id: `${e.adapter}:${e.iova}`,
          args: { policy: e.policy },
        }),
      ),
      bus.on("dma.adapter", (e) =>
        instant(TraceTrack.hal, `adapter ${e.adapter} ${e.action}`, "dma.adapter", {
          requester: rid(e.requesterId),
          strategy: e.strategy,
          addressBits: e.addressBits,
          scatterGather: e.scatterGather,
          numberOfMapRegisters: e.numberOfMapRegisters,
          leaked: e.leaked,
        }),
      ),
      bus.on("verifier.violation", (e) => {
        const args = { code: hex(e.code), member: e.member, driver: e.driver, explanation: e.explanation };
        instant(TraceTrack.hal, `verifier: ${e.name}`, "verifier", args);
        if (e.requesterId >= 0)
          instant(DEVICE_TID_BASE + e.requesterId, `verifier: ${e.name}`, "verifier", args);
      }),
      bus.on("offload.copy", (e) =>
        push({
          name: `copy ${e.bytes} B (${e.method})`,
          ph: "X",
          ts: e.submittedNs / 1000,
          dur: Math.max(1, e.completedNs - e.submittedNs) / 1000,
          pid,
          tid: offloadTrack(e.channel),
          cat: "offload",
          args: { reason: e.reason, status: hex(e.status >>> 0) },
        }),
      ),
      bus.on("dma.bounce", (e) =>
        instant(TraceTrack.hal, `bounce ${e.direction} ${e.bytes} B`, "dma.bounce", {
          requester: rid(e.requesterId),
          logicalAddress: hex(e.logicalAddress),
        }),
      ),
      bus.on("dma.sglist", (e) =>
        instant(
          TraceTrack.hal,
          `${e.action === "get" ? "list" : "put list"} ${e.elements} el. ${e.bytes} B`,
          "dma.sglist",
          {
            requester: rid(e.requesterId),
            mapRegisters: e.mapRegisters,
          },
        ),
      ),
      bus.on("dma.channel", (e) =>
        instant(TraceTrack.hal, `channel ${e.action}`, "dma.channel", {
          requester: rid(e.requesterId),
          kind: e.kind,
          mapRegisters: e.mapRegisters,
        }),
      ),
      bus.on("scheduler.interrupt", (e) =>
        instant(TraceTrack.interrupt, `IRQ ${e.line}`, "interrupt", { label: e.label }),
      ),
      bus.on("scheduler.dpc", (e) => instant(TraceTrack.dpc, e.label === "" ? "DPC" : e.label, "dpc", {})),
      bus.on("irp.complete", (e) =>
        instant(TraceTrack.passive, `IRP ${e.irp} complete`, "irp", {
          major: e.majorFunction,
          minor: e.minorFunction,
          status: hex(e.status >>> 0),
          information: e.information,
        }),
      ),
      bus.on("pnp.state", (e) =>
        instant(TraceTrack.passive, `PnP ${e.state}`, "pnp", {
          requester: rid(e.requesterId),
          driver: e.driver,
        }),
      ),
    ];
    return () => {
      for (const dispose of disposers) dispose();
    };
  }

  toJSON(): ChromeTraceFile {
    return {
      traceEvents: this.#events,
      displayTimeUnit: "ns",
      otherData: { clock: "virtual time of the simulated machines (ns)" },
    };
  }

  /** Writes the trace as one JSON file. */
  writeFile(path: string): void {
    writeFileSync(path, JSON.stringify(this.toJSON()));
  }
}

/** bus:device.function of a requester id. */
function rid(requesterId: number): string {
  const bus = Math.floor(requesterId / 256);
  const device = Math.floor((requesterId % 256) / 8);
  return `${hex2(bus)}:${hex2(device)}.${requesterId % 8}`;
}

function hex2(value: number): string {
  return value.toString(16).padStart(2, "0");
}

function hex(value: number): string {
  return `0x${value.toString(16)}`;
}
