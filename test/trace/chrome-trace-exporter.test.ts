/**
 * The Chrome trace exporter on a bare EventBus: metadata names every track, a device's DMA
 * accesses become slices laid end to end (never overlapping on its track), faults and
 * invalidations are instants, mappings are async pairs, and the disposer stops the recording.
 */
import { describe, expect, it } from "vitest";
import "../../src/platform/platform-events.js";
import "../../src/iommu/iommu-events.js";
import "../../src/hal/remap-events.js";
import { ChromeTraceExporter, DEVICE_TID_BASE, TraceTrack } from "../../src/trace/chrome-trace-exporter.js";
import { EventBus } from "../../src/trace/event-bus.js";

function transfer(bus: EventBus, length: number): void {
  bus.emit("device.transfer", {
    requesterId: 8,
    busAddress: 0x1000,
    length,
    access: "read",
    ok: true,
    kind: "ok",
    bytesDone: length,
  });
}

describe("ChromeTraceExporter", () => {
  it("records one process per machine, with slices, instants and async mappings", () => {
    const bus = new EventBus();
    let now = 5_000;
    const exporter = new ChromeTraceExporter();
    const dispose = exporter.attach(bus, {
      pid: 3,
      name: "disk / strict",
      now: () => now,
      transferDurationNs: (_rid, bytes) => bytes * 2,
    });
    bus.emit("pci.attach", {
      requesterId: 8,
      name: "NVMe-like disk",
      barAddress: 0,
      barSize: 4096,
      interruptLine: 16,
    });
    transfer(bus, 1000);
    transfer(bus, 500);
    bus.emit("iommu.fault", {
      unit: "dmar0",
      requesterId: 8,
      address: 0x2000,
      access: "write",
      reason: 5,
      recorded: true,
    });
    bus.emit("dma.map", {
      adapter: 1,
      requesterId: 8,
      iova: 0xf000,
      length: 4096,
      pages: 1,
      direction: "to-device",
      kind: "transfer",
      bounced: 0,
    });
    now = 9_000;
    bus.emit("dma.unmap", {
      adapter: 1,
      requesterId: 8,
      iova: 0xf000,
      length: 4096,
      pages: 1,
      kind: "transfer",
      policy: "strict",
    });
    bus.emit("iommu.invalidate", {
      unit: "dmar0",
      kind: "iotlb-page",
      domainId: 1,
      requesterId: 8,
      address: 0xf000,
      pages: 1,
      dropped: 1,
    });
    dispose();
    transfer(bus, 64);

    const events = exporter.toJSON().traceEvents;
    const device = DEVICE_TID_BASE + 8;
    expect(events.find((e) => e.ph === "M" && e.name === "process_name")?.args).toEqual({
      name: "disk / strict",
    });
    expect(events.find((e) => e.ph === "M" && e.name === "thread_name" && e.tid === device)?.args).toEqual({
      name: "device 00:01.0 NVMe-like disk",
    });
    const slices = events.filter((e) => e.ph === "X");
    expect(slices.map((e) => [e.ts, e.dur])).toEqual([
      [5, 2],
      [7, 1],
    ]);
    expect(slices.every((e) => e.pid === 3 && e.tid === device)).toBe(true);
    expect(events.filter((e) => e.ph === "i" && e.cat === "iommu.fault").map((e) => e.tid)).toEqual([
      device,
      TraceTrack.iommu,
    ]);
    expect(events.filter((e) => e.ph === "b" || e.ph === "e").map((e) => [e.ph, e.id, e.ts])).toEqual([
      ["b", "1:61440", 5],
      ["e", "1:61440", 9],
    ]);
    expect(
      events.some((e) => e.ph === "i" && e.tid === TraceTrack.iommu && e.name === "invalidate iotlb-page"),
    ).toBe(true);
  });

  it("serialises as the JSON object Perfetto loads", () => {
    const exporter = new ChromeTraceExporter();
    exporter.attach(new EventBus(), { pid: 1, name: "empty", now: () => 0 });
    const file = JSON.parse(JSON.stringify(exporter.toJSON())) as {
      traceEvents: unknown[];
      displayTimeUnit: string;
    };
    expect(file.displayTimeUnit).toBe("ns");
    expect(file.traceEvents.length).toBe(exporter.eventCount);
  });
});
