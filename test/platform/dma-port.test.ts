import fc from "fast-check";
import { describe, expect, it, vi } from "vitest";
import { DmaPort } from "../../src/platform/dma-port.js";
import type { DmaAccess, DmaRemapper, DmaTranslation } from "../../src/platform/dma-remapper.js";
import { DMA_OK } from "../../src/platform/dma-result.js";
import { IdentityRemapper } from "../../src/platform/identity-remapper.js";
import { LARGE_PAGE_SIZE, MiB, PAGE_SIZE } from "../../src/platform/page.js";
import { PhysicalMemory } from "../../src/platform/physical-memory.js";
import { PlatformError } from "../../src/platform/platform-error.js";
import type { DeviceTransferEvent } from "../../src/platform/platform-events.js";
import { testBytes } from "../../src/testing/index.js";
import { Counters } from "../../src/trace/counters.js";
import { EventBus } from "../../src/trace/event-bus.js";

const RAM_END = 16 * MiB;
/** The window the property tests work in: 16 pages. */
const WINDOW = 16 * PAGE_SIZE;
const BASE = 8 * MiB;

interface Rig {
  memory: PhysicalMemory;
  port: DmaPort;
  gate: { busMasterEnabled: boolean };
  counters: Counters;
  events: EventBus;
}

function rig(remapper: DmaRemapper = new IdentityRemapper()): Rig {
  const memory = new PhysicalMemory([{ start: 0, end: RAM_END }]);
  const gate = { busMasterEnabled: true };
  const counters = new Counters();
  const events = new EventBus();
  const port = new DmaPort(0x10, gate, memory, remapper, events, counters);
  return { memory, port, gate, counters, events };
}

function snapshot(memory: PhysicalMemory, address = BASE, length = WINDOW): Uint8Array {
  const out = new Uint8Array(length);
  memory.read(address, out);
  return out;
}

/** Maps bus page i of the window to physical page perm[i]; faults (reason 6/5) from `faultPage` on. */
class FakeRemapper implements DmaRemapper {
  readonly outs = new Set<DmaTranslation>();
  calls = 0;

  constructor(
    readonly perm: readonly number[],
    readonly faultPage = Number.POSITIVE_INFINITY,
  ) {}

  translate(_rid: number, busAddress: number, access: DmaAccess, out: DmaTranslation): boolean {
    this.calls++;
    this.outs.add(out);
    const page = Math.floor((busAddress - BASE) / PAGE_SIZE);
    if (page < 0 || page >= this.perm.length || page >= this.faultPage) {
      out.faultReason = access === "read" ? 6 : 5;
      return false;
    }
    out.physicalAddress = BASE + this.perm[page]! * PAGE_SIZE + (busAddress % PAGE_SIZE);
    out.length = PAGE_SIZE - (busAddress % PAGE_SIZE);
    out.faultReason = 0;
    return true;
  }
}

const span = fc
  .tuple(fc.integer({ min: 0, max: WINDOW }), fc.integer({ min: 0, max: WINDOW }))
  .map(([a, b]) => ({ offset: Math.min(a, b), length: Math.abs(a - b) }));
const permutation = fc
  .shuffledSubarray([...Array(16).keys()], { minLength: 16, maxLength: 16 })
  .map((p) => p as readonly number[]);

describe("DmaPort", () => {
  it("moves bytes exactly through the identity remapper (against a reference array)", () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.boolean(), span, fc.integer({ min: 0, max: 255 })), {
          minLength: 1,
          maxLength: 20,
        }),
        (ops) => {
          const { memory, port } = rig();
          const reference = new Uint8Array(WINDOW);
          for (const [isWrite, { offset, length }, seed] of ops) {
            if (isWrite) {
              const src = testBytes(length, seed);
              expect(port.write(BASE + offset, src)).toBe(DMA_OK);
              reference.set(src, offset);
            } else {
              const dst = new Uint8Array(length).fill(0x5a);
              expect(port.read(BASE + offset, dst)).toBe(DMA_OK);
              expect(dst).toEqualBytes(reference.subarray(offset, offset + length));
            }
          }
          expect(snapshot(memory)).toEqualBytes(reference);
        },
      ),
    );
  });

  it("moves bytes exactly through a scattering remapper", () => {
    fc.assert(
      fc.property(permutation, span, fc.integer({ min: 0, max: 255 }), (perm, { offset, length }, seed) => {
        const remapper = new FakeRemapper(perm);
        const { memory, port } = rig(remapper);
        const src = testBytes(length, seed);
        expect(port.write(BASE + offset, src)).toBe(DMA_OK);
        const physical = snapshot(memory);
        for (let i = 0; i < length; i++) {
          const bus = offset + i;
          const pa = perm[Math.floor(bus / PAGE_SIZE)]! * PAGE_SIZE + (bus % PAGE_SIZE);
          if (physical[pa] !== src[i]) throw new Error(`byte ${i} landed wrong`);
        }
        const back = new Uint8Array(length);
        expect(port.read(BASE + offset, back)).toBe(DMA_OK);
        expect(back).toEqualBytes(src);
        expect(remapper.outs.size).toBeLessThanOrEqual(2);
      }),
    );
  });

  it("stops at a faulting page: earlier bytes move, a read gets 0xFF for the rest", () => {
    fc.assert(
      fc.property(
        permutation,
        span,
        fc.integer({ min: 0, max: 15 }),
        (perm, { offset, length }, faultPage) => {
          const { memory, port } = rig(new FakeRemapper(perm, faultPage));
          const contents = testBytes(WINDOW, 7);
          memory.write(BASE, contents);
          const dst = new Uint8Array(length).fill(0x11);
          const result = port.read(BASE + offset, dst);
          const faultAt = faultPage * PAGE_SIZE;
          if (length === 0 || offset + length <= faultAt) {
            // A zero-length access translates nothing, so it cannot fault wherever it points.
            expect(result).toBe(DMA_OK);
            return;
          }
          const done = Math.max(0, faultAt - offset);
          expect(result).toEqual({
            ok: false,
            kind: "iommu-fault",
            address: BASE + offset + done,
            faultReason: 6,
            bytesDone: done,
          });
          for (let i = 0; i < done; i++) {
            const bus = offset + i;
            const pa = perm[Math.floor(bus / PAGE_SIZE)]! * PAGE_SIZE + (bus % PAGE_SIZE);
            if (dst[i] !== contents[pa]) throw new Error(`byte ${i} before the fault is wrong`);
          }
          expect(dst.subarray(done).every((b) => b === 0xff)).toBe(true);
        },
      ),
    );
  });

  it("stops at a faulting page: a write lands before the fault and drops the rest", () => {
    fc.assert(
      fc.property(span, fc.integer({ min: 0, max: 15 }), ({ offset, length }, faultPage) => {
        const identity = [...Array(16).keys()];
        const { memory, port } = rig(new FakeRemapper(identity, faultPage));
        const src = testBytes(length, 3);
        const result = port.write(BASE + offset, src);
        const faultAt = faultPage * PAGE_SIZE;
        const done = Math.min(length, Math.max(0, faultAt - offset));
        const expected = new Uint8Array(WINDOW);
        expected.set(src.subarray(0, done), offset);
        expect(snapshot(memory)).toEqualBytes(expected);
        if (done === length) expect(result).toBe(DMA_OK);
        else
          expect(result).toMatchObject({ ok: false, kind: "iommu-fault", faultReason: 5, bytesDone: done });
      }),
    );
  });

  it("copies a 1 MiB access through a 2 MiB superpage in one copy", () => {
    const superpage: DmaRemapper = {
      translate(_rid, busAddress, _access, out) {
        const offset = busAddress % LARGE_PAGE_SIZE;
        out.physicalAddress = 2 * LARGE_PAGE_SIZE + offset;
        out.length = LARGE_PAGE_SIZE - offset;
        out.faultReason = 0;
        return true;
      },
    };
    const { memory, port } = rig(superpage);
    const write = vi.spyOn(memory, "writeFrom");
    const read = vi.spyOn(memory, "readInto");
    const src = testBytes(MiB, 9);
    expect(port.write(0x1220_0000 + 4096, src)).toBe(DMA_OK);
    expect(write).toHaveBeenCalledTimes(1);
    const dst = new Uint8Array(MiB);
    expect(port.read(0x1220_0000 + 4096, dst)).toBe(DMA_OK);
    expect(read).toHaveBeenCalledTimes(1);
    expect(dst).toEqualBytes(src);
  });

  it("merges physically adjacent pages of the identity mapping into one copy", () => {
    const { memory, port } = rig();
    const write = vi.spyOn(memory, "writeFrom");
    expect(port.write(BASE + 100, new Uint8Array(MiB))).toBe(DMA_OK);
    expect(write).toHaveBeenCalledTimes(1);
  });

  it("reads all ones and reports 'unassigned' outside RAM, after moving what was RAM", () => {
    const { memory, port, counters } = rig();
    memory.write(RAM_END - 8, testBytes(8, 1));
    const dst = new Uint8Array(24);
    const result = port.read(RAM_END - 8, dst);
    expect(result).toEqual({ ok: false, kind: "unassigned", address: RAM_END, faultReason: 0, bytesDone: 8 });
    expect(dst.subarray(0, 8)).toEqual(testBytes(8, 1));
    expect(dst.subarray(8).every((b) => b === 0xff)).toBe(true);
    expect(port.write(RAM_END + PAGE_SIZE, new Uint8Array(4))).toMatchObject({
      kind: "unassigned",
      bytesDone: 0,
    });
    expect(counters.get("dma.port.unassigned")).toBe(2);
    expect(counters.get("dma.port.read.bytes")).toBe(8);
  });

  it("refuses DMA while Bus Master Enable is clear", () => {
    const { memory, port, gate, counters } = rig();
    gate.busMasterEnabled = false;
    const dst = new Uint8Array(16);
    expect(port.read(BASE, dst)).toEqual({
      ok: false,
      kind: "bus-master-disabled",
      address: BASE,
      faultReason: 0,
      bytesDone: 0,
    });
    expect(dst.every((b) => b === 0xff)).toBe(true);
    expect(port.write(BASE, testBytes(16, 2))).toMatchObject({ ok: false, kind: "bus-master-disabled" });
    expect(memory.isTouched(BASE / PAGE_SIZE)).toBe(false);
    expect(counters.get("dma.port.bus-master-disabled")).toBe(2);
    gate.busMasterEnabled = true;
    expect(port.write(BASE, testBytes(16, 2))).toBe(DMA_OK);
  });

  it("throws a PlatformError for bad bus addresses and touches nothing", () => {
    const { memory, port } = rig();
    for (const address of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53, 2 ** 53 - 4]) {
      expect(() => port.write(address, new Uint8Array(8))).toThrow(PlatformError);
    }
    expect(() => port.read(BASE, [1, 2] as unknown as Uint8Array)).toThrow(PlatformError);
    expect(memory.touchedFrames).toBe(0);
  });

  it("emits device.transfer and counts bytes", () => {
    const { port, events, counters } = rig(new FakeRemapper([0, 1], 1));
    const seen: DeviceTransferEvent[] = [];
    events.on("device.transfer", (e) => seen.push(e));
    port.write(BASE, new Uint8Array(100));
    port.read(BASE + PAGE_SIZE - 10, new Uint8Array(30));
    expect(seen).toEqual([
      {
        requesterId: 0x10,
        busAddress: BASE,
        length: 100,
        access: "write",
        ok: true,
        kind: "ok",
        bytesDone: 100,
      },
      {
        requesterId: 0x10,
        busAddress: BASE + PAGE_SIZE - 10,
        length: 30,
        access: "read",
        ok: false,
        kind: "iommu-fault",
        bytesDone: 10,
      },
    ]);
    expect(counters.get("dma.port.write.bytes")).toBe(100);
    expect(counters.get("dma.port.read.bytes")).toBe(10);
    expect(counters.get("dma.port.iommu-fault")).toBe(1);
  });

  it("succeeds on an empty transfer without translating", () => {
    const remapper = new FakeRemapper([], 0);
    const { port } = rig(remapper);
    expect(port.read(BASE, new Uint8Array(0))).toBe(DMA_OK);
    expect(remapper.calls).toBe(0);
  });

  it("rejects a remapper that returns an impossible translation", () => {
    const broken: DmaRemapper = {
      translate(_rid, busAddress, _access, out) {
        out.physicalAddress = busAddress;
        out.length = 0;
        return true;
      },
    };
    expect(() => rig(broken).port.read(BASE, new Uint8Array(4))).toThrow(PlatformError);
  });
});
