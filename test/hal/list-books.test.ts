import { describe, expect, it, vi } from "vitest";
import { DMA_OPERATION_MEMBERS } from "../../src/hal/dma-operation-members.js";
import { ListLookaside } from "../../src/hal/list-lookaside.js";
import type { MAP_REGISTER_BASE } from "../../src/hal/wdm/dma-v3-types.js";
import { DeallocateObjectKeepRegisters } from "../../src/hal/wdm/io-allocation-action.js";
import { STATUS_SUCCESS } from "../../src/hal/wdm/ntstatus.js";
import type { SCATTER_GATHER_LIST } from "../../src/hal/wdm/scatter-gather-list.js";
import { SMALL_POOL_MAX } from "../../src/platform/kernel-memory.js";
import { PAGE_SIZE } from "../../src/platform/page.js";
import { EventBus } from "../../src/trace/event-bus.js";
import { bugCheckOf, HalRig, type OpenAdapter } from "./support/hal-rig.js";

const DMA_VIOLATION = 0xe6;

function getList(rig: HalRig, open: OpenAdapter, pages = 1): SCATTER_GATHER_LIST {
  const buffer = rig.buffer(pages * PAGE_SIZE);
  let list: SCATTER_GATHER_LIST | undefined;
  const status = rig.atDispatch(() =>
    open.ops.GetScatterGatherList(
      open.adapter,
      open.pdo,
      buffer.mdl,
      buffer.va,
      pages * PAGE_SIZE,
      (_d, _i, given) => {
        list = given;
      },
      undefined,
      true,
    ),
  );
  expect(status).toBe(STATUS_SUCCESS);
  return list!;
}

function put(rig: HalRig, open: OpenAdapter, list: SCATTER_GATHER_LIST): void {
  rig.atDispatch(() => open.ops.PutScatterGatherList(open.adapter, list, true));
}

describe.each(["strict", "lazy", "off"] as const)("the HAL's books of scatter/gather lists (%s)", (mode) => {
  it("tells a list of another machine, or a copy of a list, from one put back twice", () => {
    const rig = new HalRig({ remapping: mode });
    const other = new HalRig({ remapping: mode });
    const a = rig.open();
    const foreign = getList(other, other.open());
    expect(bugCheckOf(() => put(rig, a, foreign)).parameters.slice(0, 3)).toEqual([0x00, 0x103, 0]);
    const list = getList(rig, a);
    const copy = { ...list };
    expect(bugCheckOf(() => put(rig, a, copy)).parameters.slice(0, 2)).toEqual([0x00, 0x103]);
    put(rig, a, list);
    expect(bugCheckOf(() => put(rig, a, list)).parameters[0]).toBe(0x06);
    expect(bugCheckOf(() => put(rig, a, copy)).parameters.slice(0, 2)).toEqual([0x00, 0x103]);
    expect(rig.hal.resources().scatterGatherLists).toBe(0);
  });

  it("hands out frozen lists with increasing Reserved ids, and counts every get and put", () => {
    const rig = new HalRig({ remapping: mode });
    const a = rig.open();
    const first = getList(rig, a);
    const second = getList(rig, a, 3);
    expect(Object.isFrozen(first) && Object.isFrozen(first.Elements)).toBe(true);
    expect(second.Reserved).toBe(first.Reserved + 1);
    expect(Object.keys(first)).toEqual(["NumberOfElements", "Reserved", "Elements"]);
    expect(rig.hal.resources().scatterGatherLists).toBe(2);
    put(rig, a, first);
    expect(rig.hal.resources().scatterGatherLists).toBe(1);
    put(rig, a, second);
    expect(rig.machine.counters.get("hal.sglist.get")).toBe(2);
    expect(rig.machine.counters.get("hal.sglist.put")).toBe(2);
    expect(rig.hal.resources()).toMatchObject({ scatterGatherLists: 0, mapRegistersGranted: 0 });
  });

  it("keeps the pool block of a put-back list for the adapter's next list, and frees it with the adapter", () => {
    const rig = new HalRig({ remapping: mode });
    const a = rig.open();
    const allocate = vi.spyOn(rig.kernel, "allocateNonPaged");
    const free = vi.spyOn(rig.kernel, "free");
    const buffer = rig.buffer(PAGE_SIZE);
    allocate.mockClear();
    for (let i = 0; i < 20; i++) {
      rig.atDispatch(() => {
        a.ops.GetScatterGatherList(
          a.adapter,
          a.pdo,
          buffer.mdl,
          buffer.va,
          PAGE_SIZE,
          (_d, _i, list) => a.ops.PutScatterGatherList(a.adapter, list, true),
          undefined,
          true,
        );
      });
    }
    expect(allocate).toHaveBeenCalledTimes(1);
    const block = allocate.mock.results[0]!.value as number;
    expect(rig.kernel.allocationAt(block)).toMatchObject({ owner: rig.frames.registerOwner("hal.sglist") });
    expect(free).not.toHaveBeenCalled();
    a.ops.PutDmaAdapter(a.adapter);
    expect(free).toHaveBeenCalledWith(block);
    expect(rig.kernel.allocationAt(block)).toBeUndefined();
  });

  it("catches a MapRegisterBase freed twice or forged, and hands the same base to every routine call", () => {
    const rig = new HalRig({ remapping: mode });
    const a = rig.open();
    const bases: (MAP_REGISTER_BASE | undefined)[] = [];
    rig.atDispatch(() =>
      a.ops.AllocateAdapterChannel(
        a.adapter,
        a.pdo,
        2,
        (_d, _i, base) => {
          bases.push(base);
          return DeallocateObjectKeepRegisters;
        },
        undefined,
      ),
    );
    const base = bases[0];
    if (base === undefined) return; // a device that needs no map registers gets a NULL base
    expect(Object.isFrozen(base)).toBe(true);
    expect(base).toEqual({ kind: "MAP_REGISTER_BASE" });
    const forged = Object.freeze({ kind: "MAP_REGISTER_BASE" as const });
    expect(
      bugCheckOf(() => rig.atDispatch(() => a.ops.FreeMapRegisters(a.adapter, forged, 2))).parameters.slice(
        0,
        2,
      ),
    ).toEqual([0x00, 0x103]);
    rig.atDispatch(() => a.ops.FreeMapRegisters(a.adapter, base, 2));
    const twice = bugCheckOf(() => rig.atDispatch(() => a.ops.FreeMapRegisters(a.adapter, base, 2)));
    expect([twice.code, twice.parameters[0]]).toEqual([DMA_VIOLATION, 0x05]);
  });
});

describe("ListLookaside", () => {
  it("gives back only a block of the exact size, keeps at most DEPTH small-pool blocks, until closed", () => {
    const lookaside = new ListLookaside();
    expect(lookaside.take(112)).toBeUndefined();
    expect(lookaside.keep(0x1000, 112)).toBe(true);
    expect(lookaside.keep(0x2000, 144)).toBe(true);
    expect(lookaside.take(128)).toBeUndefined();
    expect(lookaside.take(112)).toBe(0x1000);
    expect(lookaside.take(112)).toBeUndefined();
    expect(lookaside.keep(0x3000, SMALL_POOL_MAX + 16)).toBe(false);
    for (let i = 1; i < ListLookaside.DEPTH; i++) expect(lookaside.keep(0x4000 + i * 0x100, 112)).toBe(true);
    expect(lookaside.keep(0x9000, 112)).toBe(false);
    expect(lookaside.close().sort((x, y) => x - y)).toEqual([0x2000, 0x4100, 0x4200, 0x4300]);
    expect(lookaside.take(144)).toBeUndefined();
    expect(lookaside.keep(0x9000, 112)).toBe(false);
  });
});

describe("EventBus.listenerFlag", () => {
  it("follows listeners as they come and go", () => {
    const bus = new EventBus();
    const flag = bus.listenerFlag("dma.sglist");
    expect(flag.active).toBe(false);
    const first = bus.on("dma.sglist", () => {});
    const second = bus.on("dma.sglist", () => {});
    expect(flag.active).toBe(true);
    first();
    expect(flag.active).toBe(true);
    second();
    expect(flag.active).toBe(false);
    expect(bus.listenerFlag("dma.sglist")).toBe(flag);
  });
});

describe("the DMA_OPERATIONS table", () => {
  it("has Size then every member, in wdm.h order, and cannot be changed", () => {
    const rig = new HalRig();
    const { ops } = rig.open();
    expect(Object.keys(ops)).toEqual(["Size", ...DMA_OPERATION_MEMBERS.map((member) => member.name)]);
    expect(Object.isFrozen(ops)).toBe(true);
  });
});
