import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { AdapterObject } from "../../src/hal/adapter-object.js";
import type { CommonBuffer, MapRegisterFile } from "../../src/hal/dma-mapping-strategy.js";
import { PAGE_SIZE } from "../../src/platform/page.js";
import { PlatformError } from "../../src/platform/platform-error.js";
import { type ProbeDevice, RemapRig, type TestBuffer } from "./remap-fixture.js";

type Step =
  | {
      readonly op: "map";
      readonly adapter: number;
      readonly offset: number;
      readonly length: number;
      readonly write: boolean;
    }
  | { readonly op: "put"; readonly pick: number }
  | { readonly op: "common"; readonly adapter: number; readonly pages: number; readonly large: boolean }
  | { readonly op: "free"; readonly pick: number }
  | { readonly op: "join"; readonly adapter: number; readonly into: number }
  | { readonly op: "leave"; readonly adapter: number }
  | { readonly op: "time"; readonly ns: number };

const step: fc.Arbitrary<Step> = fc.oneof(
  fc.record({
    op: fc.constant("map" as const),
    adapter: fc.nat(2),
    offset: fc.nat(3 * PAGE_SIZE),
    length: fc.integer({ min: 1, max: 4 * PAGE_SIZE }),
    write: fc.boolean(),
  }),
  fc.record({ op: fc.constant("put" as const), pick: fc.nat() }),
  fc.record({
    op: fc.constant("common" as const),
    adapter: fc.nat(2),
    pages: fc.integer({ min: 1, max: 8 }),
    large: fc.boolean(),
  }),
  fc.record({ op: fc.constant("free" as const), pick: fc.nat() }),
  fc.record({ op: fc.constant("join" as const), adapter: fc.nat(2), into: fc.nat(2) }),
  fc.record({ op: fc.constant("leave" as const), adapter: fc.nat(2) }),
  fc.record({ op: fc.constant("time" as const), ns: fc.integer({ min: 0, max: 20_000_000 }) }),
);

interface Transfer {
  readonly adapter: AdapterObject;
  readonly file: MapRegisterFile;
  readonly va: number;
  readonly length: number;
  readonly write: boolean;
}

function ownedBy(rig: RemapRig, owner: string): number {
  return rig.frames.framesOwnedBy(rig.frames.registerOwner(owner));
}

describe("teardown", () => {
  for (const mode of ["strict", "lazy"] as const) {
    it(`${mode}: everything returns after any mix of transfers, buffers and domain moves (property)`, () => {
      fc.assert(
        fc.property(fc.array(step, { maxLength: 60 }), (steps) => {
          const rig = new RemapRig(mode);
          const devices: ProbeDevice[] = [rig.plug("a"), rig.plug("b"), rig.plug("c")];
          // Warm-up: the IOMMU's root and context tables stay once made; they are not a leak.
          for (const device of devices) rig.remap.closeAdapter(rig.open(device));
          const baseline = ownedBy(rig, "iommu");
          const adapters = devices.map((device, i) =>
            rig.open(device, { external: i === 2, addressBits: i === 1 ? 32 : 64 }),
          );
          const source: TestBuffer = rig.buffer(4 * PAGE_SIZE);
          const transfers: Transfer[] = [];
          const buffers: CommonBuffer[] = [];
          for (const s of steps) {
            switch (s.op) {
              case "map": {
                const adapter = adapters[s.adapter]!;
                const length = Math.min(s.length, 4 * PAGE_SIZE - s.offset);
                const va = source.mdl.virtualAddress + s.offset;
                const file = rig.remap.tryAllocateMapRegisters(adapter, 5)!;
                rig.remap.mapTransfer(adapter, file, source.mdl, va, length, s.write);
                transfers.push({ adapter, file, va, length, write: s.write });
                break;
              }
              case "put": {
                if (transfers.length === 0) break;
                const [t] = transfers.splice(s.pick % transfers.length, 1);
                rig.remap.flushAdapterBuffers(t!.adapter, t!.file, source.mdl, t!.va, t!.length, t!.write);
                rig.remap.freeMapRegisters(t!.file);
                break;
              }
              case "common": {
                const buffer = rig.remap.allocateCommonBuffer(adapters[s.adapter]!, {
                  length: s.pages * PAGE_SIZE,
                  minimumLogical: 0,
                  maximumLogical: Number.MAX_SAFE_INTEGER,
                  cacheEnabled: true,
                  largePage: s.large,
                });
                if (buffer !== undefined) buffers.push(buffer);
                break;
              }
              case "free": {
                if (buffers.length === 0) break;
                rig.remap.freeCommonBuffer(buffers.splice(s.pick % buffers.length, 1)[0]!);
                break;
              }
              case "join":
                rig.remap.joinDomain(adapters[s.adapter]!, rig.remap.getDomain(adapters[s.into]!));
                break;
              case "leave":
                rig.remap.leaveDomain(adapters[s.adapter]!);
                break;
              case "time":
                rig.machine.scheduler.runFor(s.ns);
                break;
            }
          }
          for (const t of transfers) {
            rig.remap.flushAdapterBuffers(t.adapter, t.file, source.mdl, t.va, t.length, t.write);
            rig.remap.freeMapRegisters(t.file);
          }
          for (const buffer of buffers) rig.remap.freeCommonBuffer(buffer);
          for (const adapter of adapters) rig.remap.closeAdapter(adapter);

          expect(rig.remap.resources()).toEqual({
            mapRegisters: 0,
            iovaPages: 0,
            bouncePages: 0,
            commonBuffers: 0,
          });
          expect(ownedBy(rig, "iommu")).toBe(baseline);
          expect(ownedBy(rig, "hal.swiotlb")).toBe(0);
          expect(ownedBy(rig, "hal.common-buffer")).toBe(0);
          expect(rig.machine.scheduler.pending).toBe(0);
          for (const device of devices) expect(rig.iommu.attachment(device.requesterId)).toBeUndefined();
        }),
        { numRuns: 60 },
      );
    });
  }

  it("refuses to close an adapter that still holds map registers", () => {
    const rig = new RemapRig("lazy");
    const adapter = rig.open(rig.plug());
    const file = rig.remap.tryAllocateMapRegisters(adapter, 2)!;
    expect(() => rig.remap.closeAdapter(adapter)).toThrow(PlatformError);
    expect(rig.remap.resources().mapRegisters).toBe(2);
    rig.remap.freeMapRegisters(file);
    rig.remap.closeAdapter(adapter);
    expect(() => rig.remap.closeAdapter(adapter)).toThrow(PlatformError);
  });
});
