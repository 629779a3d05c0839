import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { DMA_ADAPTER, DMA_OPERATIONS } from "../../src/hal/wdm/dma-operations.js";
import type { MAP_REGISTER_BASE } from "../../src/hal/wdm/dma-v3-types.js";
import { DeallocateObjectKeepRegisters } from "../../src/hal/wdm/io-allocation-action.js";
import { STATUS_SUCCESS } from "../../src/hal/wdm/ntstatus.js";
import type { SCATTER_GATHER_ELEMENT, SCATTER_GATHER_LIST } from "../../src/hal/wdm/scatter-gather-list.js";
import type { Mdl } from "../../src/platform/mdl.js";
import { KiB, PAGE_SIZE } from "../../src/platform/page.js";
import {
  type BusMaster,
  description,
  deviceObject,
  HAL_MODES,
  HalRig,
  pattern,
  sameBytes,
} from "./support/hal-rig.js";

const MAX_LENGTH = 40 * KiB;

const transfer = fc.record({
  bits: fc.constantFrom(24, 32, 36, 64),
  scatterGather: fc.boolean(),
  length: fc.integer({ min: 1, max: MAX_LENGTH }),
  offset: fc.integer({ min: 0, max: PAGE_SIZE - 1 }),
  /** Where the buffer is cut into a chain of MDLs (fractions of its length). */
  cuts: fc.uniqueArray(fc.double({ min: 0.05, max: 0.95, noNaN: true }), { maxLength: 3 }),
  high: fc.boolean(),
  writeToDevice: fc.boolean(),
  path: fc.constantFrom("get", "build", "map"),
  seed: fc.integer({ min: 0, max: 255 }),
});

/** The device follows the elements: reads them (to device) or fills them with `incoming`. */
function deviceSide(
  device: BusMaster,
  elements: readonly SCATTER_GATHER_ELEMENT[],
  write: boolean,
  incoming: Uint8Array,
): Uint8Array {
  const parts: Uint8Array[] = [];
  let offset = 0;
  for (const { Address, Length } of elements) {
    if (write) {
      const { result, bytes } = device.read(Address, Length);
      expect(result.ok).toBe(true);
      parts.push(bytes);
    } else {
      expect(device.write(Address, incoming.subarray(offset, offset + Length)).ok).toBe(true);
    }
    offset += Length;
  }
  return Buffer.concat(parts);
}

/** Packet-based DMA over a chain: MapTransfer piece by piece per MDL, flush per MDL, free the registers. */
function packet(
  rig: HalRig,
  adapter: DMA_ADAPTER,
  ops: DMA_OPERATIONS,
  pdo: ReturnType<typeof deviceObject>,
  chain: Mdl,
  registers: number,
  write: boolean,
): { elements: SCATTER_GATHER_ELEMENT[]; finish: () => void } {
  let base: MAP_REGISTER_BASE | undefined;
  rig.atDispatch(() =>
    ops.AllocateAdapterChannel(
      adapter,
      pdo,
      registers,
      (_d, _i, granted) => {
        base = granted;
        return DeallocateObjectKeepRegisters;
      },
      undefined,
    ),
  );
  const elements: SCATTER_GATHER_ELEMENT[] = [];
  for (let mdl: Mdl | undefined = chain; mdl !== undefined; mdl = mdl.next) {
    let done = 0;
    while (done < mdl.byteCount) {
      const piece = ops.MapTransfer(
        adapter,
        mdl,
        base,
        mdl.virtualAddress + done,
        mdl.byteCount - done,
        write,
      );
      elements.push({ Address: piece.LogicalAddress, Length: piece.Length, Reserved: 0 });
      done += piece.Length;
    }
  }
  return {
    elements,
    finish: () => {
      for (let mdl: Mdl | undefined = chain; mdl !== undefined; mdl = mdl.next) {
        expect(ops.FlushAdapterBuffers(adapter, mdl, base, mdl.virtualAddress, mdl.byteCount, write)).toBe(
          true,
        );
      }
      rig.atDispatch(() => ops.FreeMapRegisters(adapter, base, registers));
    },
  };
}

describe.each(HAL_MODES)("random buffers through the DMA path arrive intact, remapping %s", (mode) => {
  it("in both directions, by scatter/gather list and by MapTransfer", () => {
    const rig = new HalRig({ remapping: mode });
    const device = rig.plug();
    const pdo = deviceObject(device.requesterId);
    fc.assert(
      fc.property(transfer, (t) => {
        const { Adapter: adapter, NumberOfMapRegisters } = rig.hal.getDmaAdapter(
          pdo,
          description({
            Version: 3,
            DmaAddressWidth: t.bits,
            ScatterGather: t.scatterGather,
            MaximumLength: 64 * KiB,
          }),
        );
        const ops = adapter!.DmaOperations;
        const total = t.offset + t.length;
        const data = pattern(total, t.seed);
        const buffer = t.high ? rig.highBuffer(Math.ceil(total / PAGE_SIZE), data) : rig.buffer(total, data);
        const start = buffer.va + t.offset;
        const bounds = [
          0,
          ...t.cuts.map((c) => Math.floor(c * t.length)).sort((a, b) => a - b),
          t.length,
        ].filter((b, i, all) => i === 0 || b > all[i - 1]!);
        const chain = rig.mdlFor(start, bounds[1]!);
        for (let i = 1; i < bounds.length - 1; i++)
          rig.mdlFor(start + bounds[i]!, bounds[i + 1]! - bounds[i]!, chain);
        const registers = ops.CalculateScatterGatherList(
          adapter!,
          chain,
          start,
          t.length,
        ).NumberOfMapRegisters;
        expect(registers).toBeLessThanOrEqual(NumberOfMapRegisters);
        const incoming = pattern(t.length, t.seed + 1);
        let seen: Uint8Array | undefined;
        if (t.path === "map") {
          const { elements, finish } = packet(rig, adapter!, ops, pdo, chain, registers, t.writeToDevice);
          seen = deviceSide(device, elements, t.writeToDevice, incoming);
          finish();
        } else {
          const listBuffer =
            t.path === "build"
              ? rig.buffer(
                  ops.CalculateScatterGatherList(adapter!, chain, start, t.length).ScatterGatherListSize,
                )
              : undefined;
          const routine = (_d: unknown, _i: unknown, list: SCATTER_GATHER_LIST): void => {
            seen = deviceSide(device, list.Elements, t.writeToDevice, incoming);
            ops.PutScatterGatherList(adapter!, list, t.writeToDevice);
          };
          const status = rig.atDispatch(() =>
            listBuffer === undefined
              ? ops.GetScatterGatherList(
                  adapter!,
                  pdo,
                  chain,
                  start,
                  t.length,
                  routine,
                  undefined,
                  t.writeToDevice,
                )
              : ops.BuildScatterGatherList(
                  adapter!,
                  pdo,
                  chain,
                  start,
                  t.length,
                  routine,
                  undefined,
                  t.writeToDevice,
                  listBuffer.va,
                  4096,
                ),
          );
          expect(status).toBe(STATUS_SUCCESS);
          if (listBuffer !== undefined) rig.kernel.free(listBuffer.va);
        }
        if (t.writeToDevice) expect(sameBytes(seen!, data.subarray(t.offset))).toBe(true);
        else expect(sameBytes(rig.read(start, t.length), incoming)).toBe(true);
        for (let mdl: Mdl | undefined = chain; mdl !== undefined; mdl = mdl.next) rig.mm.freeMdl(mdl);
        rig.kernel.free(buffer.va);
        ops.PutDmaAdapter(adapter!);
        expect(rig.hal.resources()).toMatchObject({
          adaptersOpen: 0,
          mapRegistersGranted: 0,
          scatterGatherLists: 0,
          bouncePages: 0,
          queuedRequests: 0,
        });
      }),
      { numRuns: 60, seed: 20261122 },
    );
    // Without remapping, 24/32/36-bit devices and buffers above 4 GiB must have bounced some of the time.
    if (mode === "off" || mode === "passthrough")
      expect(rig.machine.counters.get("hal.bounce.bytes")).toBeGreaterThan(0);
  });
});
