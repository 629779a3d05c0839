import { describe, expect, it } from "vitest";
import type { AdapterObject } from "../../src/hal/adapter-object.js";
import type { DmaInvalidateEvent } from "../../src/hal/remap-events.js";
import { FaultReason } from "../../src/iommu/fault-reason.js";
import type { IommuFaultEvent } from "../../src/iommu/iommu-events.js";
import { PAGE_SIZE } from "../../src/platform/page.js";
import { type ProbeDevice, pattern, RemapRig, sameBytes, type TestBuffer } from "./remap-fixture.js";

const TEN_MS = 10_000_000;

/** GetScatterGatherList + PutScatterGatherList of one page, as the dispatcher drives the strategy. */
function mapOnePage(rig: RemapRig, adapter: AdapterObject, buffer: TestBuffer): () => void {
  const file = rig.remap.tryAllocateMapRegisters(adapter, 1)!;
  const { mdl } = buffer;
  rig.remap.mapTransfer(adapter, file, mdl, mdl.virtualAddress, PAGE_SIZE, true);
  return () => {
    rig.remap.flushAdapterBuffers(adapter, file, mdl, mdl.virtualAddress, PAGE_SIZE, true);
    rig.remap.freeMapRegisters(file);
  };
}

interface Stale {
  readonly rig: RemapRig;
  readonly device: ProbeDevice;
  readonly adapter: AdapterObject;
  readonly logical: number;
  readonly data: Uint8Array;
}

/** Maps a page, lets the device read it (its IOTLB now holds the translation), then unmaps it. */
function unmapAfterUse(mode: "strict" | "lazy"): Stale {
  const rig = new RemapRig(mode);
  const device = rig.plug();
  const adapter = rig.open(device);
  const data = pattern(PAGE_SIZE, 9);
  const { mdl } = rig.buffer(PAGE_SIZE, data);
  const file = rig.remap.tryAllocateMapRegisters(adapter, 1)!;
  const logical = rig.remap.mapTransfer(
    adapter,
    file,
    mdl,
    mdl.virtualAddress,
    PAGE_SIZE,
    true,
  ).logicalAddress;
  expect(sameBytes(device.read(logical, PAGE_SIZE).bytes, data)).toBe(true);
  rig.remap.flushAdapterBuffers(adapter, file, mdl, mdl.virtualAddress, PAGE_SIZE, true);
  rig.remap.freeMapRegisters(file);
  return { rig, device, adapter, logical, data };
}

function staleReadWorks(s: Stale): boolean {
  const { result, bytes } = s.device.read(s.logical, PAGE_SIZE);
  return result.ok && sameBytes(bytes, s.data);
}

describe("unmap policies", () => {
  it("strict: the device faults at once after the unmap, with its requester, the address and the reason", () => {
    const s = unmapAfterUse("strict");
    const faults: IommuFaultEvent[] = [];
    s.rig.machine.events.on("iommu.fault", (event) => faults.push(event));
    const { result } = s.device.read(s.logical + 8, 8);
    expect(result.ok).toBe(false);
    expect(result.ok ? undefined : result.kind).toBe("iommu-fault");
    expect(faults).toEqual([
      expect.objectContaining({
        requesterId: s.device.requesterId,
        address: s.logical + 8,
        access: "read",
        reason: FaultReason.ReadNotPermitted,
      }),
    ]);
    const [record] = s.rig.iommu.serviceFaults();
    expect(record).toMatchObject({
      requesterId: s.device.requesterId,
      address: s.logical,
      reason: FaultReason.ReadNotPermitted,
    });
    expect(s.rig.machine.counters.get("hal.remap.invalidate.page")).toBe(1);
  });

  it("lazy: a stale IOTLB entry still translates until the 256th unmap, then faults", () => {
    const s = unmapAfterUse("lazy");
    const other = s.rig.buffer(PAGE_SIZE);
    expect(staleReadWorks(s)).toBe(true);
    // The target's unmap was entry 1; entries 2..255 leave the window open.
    for (let i = 2; i < 256; i++) mapOnePage(s.rig, s.adapter, other)();
    expect(staleReadWorks(s)).toBe(true);
    expect(s.rig.machine.counters.get("hal.flushqueue.flushes")).toBe(0);
    mapOnePage(s.rig, s.adapter, other)();
    expect(s.rig.machine.counters.get("hal.flushqueue.flushes")).toBe(1);
    const { result } = s.device.read(s.logical, 8);
    expect(result.ok ? 0 : result.faultReason).toBe(FaultReason.ReadNotPermitted);
  });

  it("lazy: the stale entry translates for 10 ms of virtual time, then one domain flush ends it", () => {
    const s = unmapAfterUse("lazy");
    const invalidations: DmaInvalidateEvent[] = [];
    s.rig.machine.events.on("dma.invalidate", (event) => invalidations.push(event));
    s.rig.machine.scheduler.runFor(TEN_MS - 1);
    expect(staleReadWorks(s)).toBe(true);
    expect(s.rig.remap.resources().iovaPages).toBe(1);
    s.rig.machine.scheduler.runFor(1);
    expect(staleReadWorks(s)).toBe(false);
    expect(invalidations).toEqual([expect.objectContaining({ kind: "domain", ranges: 1, pages: 1 })]);
    expect(s.rig.remap.resources().iovaPages).toBe(0);
    expect(s.rig.machine.counters.get("hal.remap.invalidate.page")).toBe(0);
  });

  it("lazy: an IOVA is never handed out again before its invalidation", () => {
    const rig = new RemapRig("lazy");
    const adapter = rig.open(rig.plug());
    const buffer = rig.buffer(PAGE_SIZE);
    const seen = new Set<number>();
    for (let i = 0; i < 600; i++) {
      const file = rig.remap.tryAllocateMapRegisters(adapter, 1)!;
      const { logicalAddress } = rig.remap.mapTransfer(
        adapter,
        file,
        buffer.mdl,
        buffer.mdl.virtualAddress,
        1,
        true,
      );
      const flushes = rig.machine.counters.get("hal.flushqueue.flushes");
      if (flushes === 0) expect(seen.has(logicalAddress)).toBe(false);
      seen.add(logicalAddress);
      rig.remap.flushAdapterBuffers(adapter, file, buffer.mdl, buffer.mdl.virtualAddress, 1, true);
      rig.remap.freeMapRegisters(file);
    }
    // After the flushes, the freed IOVAs come back from the rcache: no growth of the IOVA space.
    expect(seen.size).toBeLessThan(600);
    expect(rig.machine.counters.get("hal.iova.rcache.hit")).toBeGreaterThan(0);
  });

  it("strict: the common one-page map/unmap reuses its IOVA from the rcache", () => {
    const rig = new RemapRig("strict");
    const adapter = rig.open(rig.plug());
    const buffer = rig.buffer(PAGE_SIZE);
    for (let i = 0; i < 100; i++) mapOnePage(rig, adapter, buffer)();
    expect(rig.machine.counters.get("hal.iova.search")).toBe(1);
    expect(rig.machine.counters.get("hal.iova.rcache.hit")).toBe(99);
    expect(rig.machine.counters.get("hal.remap.invalidate.page")).toBe(100);
  });

  it("announces maps, unmaps and invalidations", () => {
    const rig = new RemapRig("strict");
    const device = rig.plug();
    const adapter = rig.open(device);
    const names: string[] = [];
    rig.machine.events.on("dma.map", (event) => names.push(`map:${event.iova % PAGE_SIZE}+${event.length}`));
    rig.machine.events.on("dma.unmap", (event) =>
      names.push(`unmap:${event.iova % PAGE_SIZE}+${event.length}`),
    );
    rig.machine.events.on("dma.invalidate", (event) => names.push(`invalidate:${event.kind}:${event.pages}`));
    const { mdl } = rig.buffer(PAGE_SIZE);
    const file = rig.remap.tryAllocateMapRegisters(adapter, 1)!;
    rig.remap.mapTransfer(adapter, file, mdl, mdl.virtualAddress + 24, 100, false);
    rig.remap.flushAdapterBuffers(adapter, file, mdl, mdl.virtualAddress + 24, 100, false);
    rig.remap.freeMapRegisters(file);
    expect(names).toEqual(["map:24+100", "unmap:24+100", "invalidate:page:1"]);
  });
});
