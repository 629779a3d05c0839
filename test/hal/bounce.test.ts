import { describe, expect, it } from "vitest";
import { BouncePool } from "../../src/hal/bounce-pool.js";
import type { DmaBounceEvent } from "../../src/hal/hal-events.js";
import type { DmaMapEvent } from "../../src/hal/remap-events.js";
import { Isa } from "../../src/hal/wdm/device-description.js";
import type { MAP_REGISTER_BASE } from "../../src/hal/wdm/dma-v3-types.js";
import { DeallocateObjectKeepRegisters } from "../../src/hal/wdm/io-allocation-action.js";
import type { Mdl } from "../../src/platform/mdl.js";
import { GiB, MiB, PAGE_SIZE } from "../../src/platform/page.js";
import { PlatformError } from "../../src/platform/platform-error.js";
import { bugCheckOf, HalRig, type OpenAdapter, pattern, sameBytes } from "./support/hal-rig.js";

const FOUR_GIB = 4 * GiB;

/** AllocateAdapterChannel for `registers`, kept after the routine (packet-based DMA). */
function registersFor(rig: HalRig, open: OpenAdapter, registers: number): MAP_REGISTER_BASE | undefined {
  let base: MAP_REGISTER_BASE | undefined;
  rig.atDispatch(() =>
    open.ops.AllocateAdapterChannel(
      open.adapter,
      open.pdo,
      registers,
      (_d, _i, granted) => {
        base = granted;
        return DeallocateObjectKeepRegisters;
      },
      undefined,
    ),
  );
  return base;
}

/** Every MapTransfer piece of [va, va + length), as (logical, length, physical of its first byte). */
function mapAll(
  _rig: HalRig,
  open: OpenAdapter,
  mdl: Mdl,
  base: MAP_REGISTER_BASE | undefined,
  va: number,
  length: number,
  write: boolean,
): { logical: number; length: number; physical: number; va: number }[] {
  const pieces = [];
  let done = 0;
  while (done < length) {
    const piece = open.ops.MapTransfer(open.adapter, mdl, base, va + done, length - done, write);
    const position = mdl.byteOffset + (va + done - mdl.virtualAddress);
    const physical = mdl.pfns[Math.floor(position / PAGE_SIZE)]! * PAGE_SIZE + (position % PAGE_SIZE);
    pieces.push({ logical: piece.LogicalAddress, length: piece.Length, physical, va: va + done });
    done += piece.Length;
  }
  return pieces;
}

describe("no remapping: where map registers bounce", () => {
  it("gives a 64-bit scatter/gather device no map registers and its buffer's physical runs", () => {
    const rig = new HalRig();
    const open = rig.open();
    const base = registersFor(rig, open, 4);
    expect(base).toBeUndefined();
    const buffer = rig.buffer(4 * PAGE_SIZE, pattern(4 * PAGE_SIZE, 1));
    const pieces = mapAll(rig, open, buffer.mdl, base, buffer.va, 4 * PAGE_SIZE, true);
    for (const piece of pieces) expect(piece.logical).toBe(piece.physical);
    expect(rig.machine.counters.get("hal.bounce.bytes")).toBe(0);
  });

  it("bounces a buffer above 4 GiB for a 32-bit scatter/gather device into one run below 4 GiB", () => {
    const rig = new HalRig();
    const open = rig.open({ Dma64BitAddresses: false });
    const data = pattern(5 * PAGE_SIZE, 2);
    const buffer = rig.highBuffer(5, data);
    const base = registersFor(rig, open, 6);
    const [piece, ...rest] = mapAll(rig, open, buffer.mdl, base, buffer.va + 100, 4 * PAGE_SIZE, true);
    expect(rest).toEqual([]);
    expect(piece!.logical).toBeLessThan(FOUR_GIB);
    expect(piece!.logical % PAGE_SIZE).toBe(100);
    expect(
      sameBytes(
        open.device.read(piece!.logical, 4 * PAGE_SIZE).bytes,
        data.subarray(100, 100 + 4 * PAGE_SIZE),
      ),
    ).toBe(true);
    expect(rig.machine.counters.get("hal.bounce.in.bytes")).toBe(4 * PAGE_SIZE);
  });

  it("uses pages within reach in place and bounces only those beyond it", () => {
    const rig = new HalRig({ mmioHoleStart: 3 * GiB });
    const open = rig.open({ Dma64BitAddresses: false });
    const pages = 24;
    const buffer = rig.buffer(pages * PAGE_SIZE, pattern(pages * PAGE_SIZE, 3));
    const high = buffer.mdl.pfns.filter((pfn) => pfn * PAGE_SIZE >= FOUR_GIB).length;
    expect(high).toBeGreaterThan(0);
    expect(high).toBeLessThan(pages);
    const base = registersFor(rig, open, pages);
    const pieces = mapAll(rig, open, buffer.mdl, base, buffer.va, pages * PAGE_SIZE, true);
    for (const piece of pieces) {
      if (piece.physical < FOUR_GIB) expect(piece.logical).toBe(piece.physical);
      else expect(piece.logical).toBeLessThan(FOUR_GIB);
    }
    expect(rig.machine.counters.get("hal.bounce.in.bytes")).toBe(high * PAGE_SIZE);
  });

  it("bounces a 24-bit (ISA) bus master's buffer above 16 MiB into the pool below 16 MiB", () => {
    const rig = new HalRig();
    const open = rig.open({ Dma64BitAddresses: false, ScatterGather: false, InterfaceType: Isa });
    const data = pattern(3 * PAGE_SIZE, 4);
    const buffer = rig.contiguousBuffer(3 * PAGE_SIZE, 60 * MiB, 32 * MiB, data);
    const base = registersFor(rig, open, 3);
    const [piece] = mapAll(rig, open, buffer.mdl, base, buffer.va, 3 * PAGE_SIZE, true);
    expect(piece!.length).toBe(3 * PAGE_SIZE);
    expect(piece!.logical + piece!.length).toBeLessThanOrEqual(16 * MiB);
    expect(sameBytes(open.device.read(piece!.logical, piece!.length).bytes, data)).toBe(true);
  });

  it("makes a device without scatter/gather one contiguous run: in place if it is one, else bounced whole", () => {
    const rig = new HalRig();
    const open = rig.open({ ScatterGather: false });
    const base = registersFor(rig, open, 8);
    expect(base).toBeDefined();
    const contiguous = rig.contiguousBuffer(4 * PAGE_SIZE, 60 * MiB);
    const [inPlace] = mapAll(rig, open, contiguous.mdl, base, contiguous.va, 4 * PAGE_SIZE, true);
    expect(inPlace!.logical).toBe(inPlace!.physical);
    open.ops.FlushAdapterBuffers(open.adapter, contiguous.mdl, base, contiguous.va, 4 * PAGE_SIZE, true);
    const data = pattern(4 * PAGE_SIZE, 5);
    const scattered = rig.highBuffer(4, data);
    const [whole] = mapAll(rig, open, scattered.mdl, base, scattered.va, 4 * PAGE_SIZE, true);
    expect(whole!.length).toBe(4 * PAGE_SIZE);
    expect(whole!.logical).not.toBe(whole!.physical);
    expect(sameBytes(open.device.read(whole!.logical, whole!.length).bytes, data)).toBe(true);
  });

  it("copies device writes back at the flush, per mapped piece, and only bounced pieces", () => {
    const rig = new HalRig({ mmioHoleStart: 3 * GiB });
    const open = rig.open({ Dma64BitAddresses: false });
    const pages = 16;
    const before = pattern(pages * PAGE_SIZE, 6);
    const buffer = rig.buffer(pages * PAGE_SIZE, before);
    const base = registersFor(rig, open, pages);
    const half = (pages / 2) * PAGE_SIZE;
    const first = mapAll(rig, open, buffer.mdl, base, buffer.va, half, false);
    const second = mapAll(rig, open, buffer.mdl, base, buffer.va + half, half, false);
    const written = pattern(pages * PAGE_SIZE, 7);
    let offset = 0;
    for (const piece of [...first, ...second]) {
      expect(open.device.write(piece.logical, written.subarray(offset, offset + piece.length)).ok).toBe(true);
      offset += piece.length;
    }
    // The first transfer ends: its bounced pieces come back, the second's not yet.
    open.ops.FlushAdapterBuffers(open.adapter, buffer.mdl, base, buffer.va, half, false);
    expect(sameBytes(rig.read(buffer.va, half), written.subarray(0, half))).toBe(true);
    const secondHalf = rig.read(buffer.va + half, half);
    for (const piece of second) {
      const at = piece.va - buffer.va - half;
      const expected = piece.physical >= FOUR_GIB ? before : written;
      expect(
        sameBytes(
          secondHalf.subarray(at, at + piece.length),
          expected.subarray(half + at, half + at + piece.length),
        ),
      ).toBe(true);
    }
    open.ops.FlushAdapterBuffers(open.adapter, buffer.mdl, base, buffer.va + half, half, false);
    expect(sameBytes(rig.read(buffer.va, pages * PAGE_SIZE), written)).toBe(true);
  });

  it("never lets a direct run cross a 4 GiB boundary", () => {
    const rig = new HalRig({ mmioHoleStart: 4 * GiB });
    const open = rig.open();
    // RAM runs on across 4 GiB here: two frames below it and two above are physically adjacent.
    const range = (min: number): number[] =>
      rig.frames.allocate(2, {
        owner: rig.testOwner,
        contiguous: true,
        minAddress: min,
        maxAddress: min + 2 * PAGE_SIZE - 1,
      });
    const pfns = [...range(FOUR_GIB - 2 * PAGE_SIZE), ...range(FOUR_GIB)];
    const va = rig.kernel.mapPages(pfns, rig.testOwner);
    const mdl = rig.mdlFor(va, 4 * PAGE_SIZE);
    const pieces = mapAll(rig, open, mdl, undefined, va, 4 * PAGE_SIZE, true);
    expect(pieces.map((p) => [p.logical, p.length])).toEqual([
      [FOUR_GIB - 2 * PAGE_SIZE, 2 * PAGE_SIZE],
      [FOUR_GIB, 2 * PAGE_SIZE],
    ]);
  });

  it("bug-checks a MapTransfer beyond the granted registers (0xE6 / 0 / 2)", () => {
    const rig = new HalRig();
    const open = rig.open({ Dma64BitAddresses: false, ScatterGather: false });
    const buffer = rig.highBuffer(4);
    const base = registersFor(rig, open, 2);
    const check = bugCheckOf(() =>
      open.ops.MapTransfer(open.adapter, buffer.mdl, base, buffer.va, 4 * PAGE_SIZE, true),
    );
    expect(check.parameters).toEqual([0x00, 0x2, 4, 2]);
    const none = bugCheckOf(() =>
      open.ops.MapTransfer(open.adapter, buffer.mdl, undefined, buffer.va, PAGE_SIZE, true),
    );
    expect(none.parameters.slice(0, 3)).toEqual([0x00, 0x2, 1]);
  });

  it("copies through the CPU's caches on a non-coherent machine", () => {
    const rig = new HalRig({ coherent: false });
    const open = rig.open({ Dma64BitAddresses: false });
    const buffer = rig.highBuffer(2);
    const data = pattern(2 * PAGE_SIZE, 8);
    rig.write(buffer.va, data); // dirty lines in the CPU cache, not yet in memory
    const base = registersFor(rig, open, 2);
    const [out] = mapAll(rig, open, buffer.mdl, base, buffer.va, 2 * PAGE_SIZE, true);
    expect(sameBytes(open.device.read(out!.logical, out!.length).bytes, data)).toBe(true);
    open.ops.FlushAdapterBuffers(open.adapter, buffer.mdl, base, buffer.va, 2 * PAGE_SIZE, true);
    const [back] = mapAll(rig, open, buffer.mdl, base, buffer.va, 2 * PAGE_SIZE, false);
    const incoming = pattern(2 * PAGE_SIZE, 9);
    open.device.write(back!.logical, incoming);
    open.ops.FlushAdapterBuffers(open.adapter, buffer.mdl, base, buffer.va, 2 * PAGE_SIZE, false);
    expect(sameBytes(rig.read(buffer.va, 2 * PAGE_SIZE), incoming)).toBe(true);
  });

  it("reports every bounce and map on the event bus", () => {
    const rig = new HalRig();
    const bounces: DmaBounceEvent[] = [];
    const maps: DmaMapEvent[] = [];
    rig.machine.events.on("dma.bounce", (event) => bounces.push(event));
    rig.machine.events.on("dma.map", (event) => maps.push(event));
    const open = rig.open({ Dma64BitAddresses: false });
    const buffer = rig.highBuffer(2);
    const base = registersFor(rig, open, 2);
    const [piece] = mapAll(rig, open, buffer.mdl, base, buffer.va, 2 * PAGE_SIZE, false);
    open.ops.FlushAdapterBuffers(open.adapter, buffer.mdl, base, buffer.va, 2 * PAGE_SIZE, false);
    expect(maps).toEqual([
      expect.objectContaining({
        iova: piece!.logical,
        length: 2 * PAGE_SIZE,
        bounced: 2,
        direction: "from-device",
      }),
    ]);
    expect(bounces).toEqual([
      expect.objectContaining({ direction: "out", bytes: 2 * PAGE_SIZE, logicalAddress: piece!.logical }),
    ]);
  });
});

describe("BouncePool", () => {
  const pool = (): BouncePool =>
    new BouncePool(
      16 * MiB - 8 * PAGE_SIZE,
      8,
      16 * MiB - 1,
      Array.from({ length: 8 }, () => new Uint8Array(PAGE_SIZE)),
    );

  it("hands out contiguous runs first fit and takes them back", () => {
    const registers = pool();
    expect([registers.allocate(3), registers.allocate(2), registers.allocate(4)]).toEqual([0, 3, undefined]);
    registers.free(0, 3);
    expect(registers.allocate(2)).toBe(0);
    expect(registers.allocate(3)).toBe(5);
    expect(registers.pagesInUse).toBe(7);
    expect(registers.address(5)).toBe(16 * MiB - 3 * PAGE_SIZE);
  });

  it("refuses a double free and a run outside the pool, changing nothing", () => {
    const registers = pool();
    registers.allocate(2);
    expect(() => registers.free(1, 2)).toThrow(PlatformError);
    expect(() => registers.free(7, 2)).toThrow(PlatformError);
    expect(registers.pagesInUse).toBe(2);
    expect(() => new BouncePool(16 * MiB, 8, 16 * MiB - 1, [])).toThrow(PlatformError);
  });
});
