import { describe, expect, it } from "vitest";
import type { AdapterObject } from "../../src/hal/adapter-object.js";
import type { DEVICE_OBJECT } from "../../src/hal/wdm/device-object.js";
import type { DMA_ADAPTER, DMA_OPERATIONS } from "../../src/hal/wdm/dma-operations.js";
import {
  DMA_SYNCHRONOUS_CALLBACK,
  DMA_TRANSFER_CONTEXT,
  type MAP_REGISTER_BASE,
} from "../../src/hal/wdm/dma-v3-types.js";
import {
  DeallocateObject,
  DeallocateObjectKeepRegisters,
  type IO_ALLOCATION_ACTION,
  KeepObject,
} from "../../src/hal/wdm/io-allocation-action.js";
import { DISPATCH_LEVEL, PASSIVE_LEVEL } from "../../src/hal/wdm/irql.js";
import {
  STATUS_CANCELLED,
  STATUS_INSUFFICIENT_RESOURCES,
  STATUS_INVALID_PARAMETER,
  STATUS_SUCCESS,
} from "../../src/hal/wdm/ntstatus.js";
import { bugCheckOf, deviceObject, fakeIrp, HalRig, type OpenAdapter } from "./support/hal-rig.js";

/** A machine whose 32-bit devices share 8 map registers (bounce pages below 4 GiB). */
function tinyPool(): HalRig {
  return new HalRig({ remapping: "off", mapRegisterPoolPages: 8 });
}

function open32(rig: HalRig): OpenAdapter {
  return rig.open({ Dma64BitAddresses: false, Dma32BitAddresses: true, MaximumLength: 32 * 4096 });
}

interface Request {
  ran: boolean;
  base: MAP_REGISTER_BASE | undefined;
  irql: number;
}

/** AllocateAdapterChannel at DISPATCH_LEVEL; the routine logs `name` and returns `action`. */
function allocate(
  rig: HalRig,
  open: { adapter: DMA_ADAPTER; ops: DMA_OPERATIONS },
  deviceObj: DEVICE_OBJECT,
  registers: number,
  action: IO_ALLOCATION_ACTION,
  log: string[],
  name: string,
): { status: number; request: Request } {
  const request: Request = { ran: false, base: undefined, irql: -1 };
  const status = rig.atDispatch(() =>
    open.ops.AllocateAdapterChannel(
      open.adapter,
      deviceObj,
      registers,
      (_d, _irp, base) => {
        request.ran = true;
        request.base = base;
        request.irql = rig.scheduler.irql;
        log.push(name);
        return action;
      },
      undefined,
    ),
  );
  return { status, request };
}

describe("AllocateAdapterChannel and the map-register queue", () => {
  it("runs the routine inside the call, at DISPATCH_LEVEL, with the device's current IRP, when all is free", () => {
    const rig = tinyPool();
    const a = open32(rig);
    const irp = fakeIrp();
    a.pdo.CurrentIrp = irp;
    let seen: unknown;
    const status = rig.atDispatch(() =>
      a.ops.AllocateAdapterChannel(
        a.adapter,
        a.pdo,
        2,
        (_d, givenIrp, base) => {
          seen = givenIrp;
          expect(base).toBeDefined();
          return DeallocateObject;
        },
        undefined,
      ),
    );
    expect(status).toBe(STATUS_SUCCESS);
    expect(seen).toBe(irp);
    expect(rig.hal.resources().mapRegistersGranted).toBe(0);
  });

  it("serves waiters strictly first in, first out: a small request never overtakes a big one", () => {
    const rig = tinyPool();
    const [a, b, c] = [open32(rig), open32(rig), open32(rig)];
    const log: string[] = [];
    const held = allocate(rig, a, a.pdo, 6, DeallocateObjectKeepRegisters, log, "a");
    const big = allocate(rig, b, b.pdo, 4, DeallocateObjectKeepRegisters, log, "b");
    const small = allocate(rig, c, c.pdo, 1, DeallocateObjectKeepRegisters, log, "c");
    // Two registers are free and c needs one, but b came first and does not fit: both wait.
    expect(log).toEqual(["a"]);
    expect([big.status, small.status]).toEqual([STATUS_SUCCESS, STATUS_SUCCESS]);
    expect(rig.hal.resources().queuedRequests).toBe(2);
    rig.atDispatch(() => a.ops.FreeMapRegisters(a.adapter, held.request.base, 6));
    expect(log).toEqual(["a", "b", "c"]);
    expect([big.request.irql, small.request.irql]).toEqual([DISPATCH_LEVEL, DISPATCH_LEVEL]);
    expect(rig.hal.resources()).toMatchObject({ queuedRequests: 0, mapRegistersGranted: 5 });
  });

  it("retries the head when registers come free and stops while it still does not fit", () => {
    const rig = tinyPool();
    const [a, b, c, d] = [open32(rig), open32(rig), open32(rig), open32(rig)];
    const log: string[] = [];
    const first = allocate(rig, a, a.pdo, 4, DeallocateObjectKeepRegisters, log, "a");
    const second = allocate(rig, b, b.pdo, 4, DeallocateObjectKeepRegisters, log, "b");
    allocate(rig, c, c.pdo, 8, DeallocateObjectKeepRegisters, log, "c");
    allocate(rig, d, d.pdo, 1, DeallocateObjectKeepRegisters, log, "d");
    rig.atDispatch(() => a.ops.FreeMapRegisters(a.adapter, first.request.base, 4));
    expect(log).toEqual(["a", "b"]);
    rig.atDispatch(() => b.ops.FreeMapRegisters(b.adapter, second.request.base, 4));
    expect(log).toEqual(["a", "b", "c"]);
  });

  it("refuses a request over the adapter's maximum at once: never queued, routine never run", () => {
    const rig = tinyPool();
    const a = open32(rig);
    const log: string[] = [];
    const { status, request } = allocate(
      rig,
      a,
      a.pdo,
      a.numberOfMapRegisters + 1,
      DeallocateObject,
      log,
      "a",
    );
    expect(status).toBe(STATUS_INSUFFICIENT_RESOURCES);
    expect(request.ran).toBe(false);
    expect(rig.hal.resources().queuedRequests).toBe(0);
  });

  it("lets one request own an adapter's channel: the next waits for FreeAdapterChannel even with registers free", () => {
    const rig = tinyPool();
    const a = open32(rig);
    const other = deviceObject(a.device.requesterId);
    const log: string[] = [];
    allocate(rig, a, a.pdo, 2, KeepObject, log, "first");
    const second = allocate(rig, a, other, 1, DeallocateObject, log, "second");
    expect(log).toEqual(["first"]);
    expect(rig.hal.resources()).toMatchObject({ channelsHeld: 1, queuedRequests: 1, mapRegistersGranted: 2 });
    rig.atDispatch(() => a.ops.FreeAdapterChannel(a.adapter));
    expect(second.request.ran).toBe(true);
    expect(rig.hal.resources()).toMatchObject({ channelsHeld: 0, queuedRequests: 0, mapRegistersGranted: 0 });
  });

  it("keeps registers after DeallocateObjectKeepRegisters until FreeMapRegisters with the same count", () => {
    const rig = tinyPool();
    const a = open32(rig);
    const { request } = allocate(rig, a, a.pdo, 3, DeallocateObjectKeepRegisters, [], "a");
    expect(rig.hal.resources()).toMatchObject({ channelsHeld: 0, mapRegistersGranted: 3 });
    const wrongCount = bugCheckOf(() =>
      rig.atDispatch(() => a.ops.FreeMapRegisters(a.adapter, request.base, 2)),
    );
    expect(wrongCount.parameters.slice(0, 2)).toEqual([0x00, 0x104]);
    rig.atDispatch(() => a.ops.FreeMapRegisters(a.adapter, request.base, 3));
    expect(rig.hal.resources().mapRegistersGranted).toBe(0);
    const twice = bugCheckOf(() => rig.atDispatch(() => a.ops.FreeMapRegisters(a.adapter, request.base, 3)));
    expect(twice.parameters[0]).toBe(0x05);
    rig.atDispatch(() => a.ops.FreeMapRegisters(a.adapter, undefined, 0));
  });

  it("frees the registers with the channel for DeallocateObject", () => {
    const rig = tinyPool();
    const a = open32(rig);
    allocate(rig, a, a.pdo, 8, DeallocateObject, [], "a");
    expect(rig.hal.resources()).toMatchObject({ channelsHeld: 0, mapRegistersGranted: 0 });
  });

  it("allows one AllocateAdapterChannel per device object at a time", () => {
    const rig = tinyPool();
    const [a, b] = [open32(rig), open32(rig)];
    allocate(rig, a, a.pdo, 8, DeallocateObjectKeepRegisters, [], "a");
    allocate(rig, b, b.pdo, 2, DeallocateObject, [], "queued");
    const check = bugCheckOf(() => allocate(rig, b, b.pdo, 2, DeallocateObject, [], "again"));
    expect(check.parameters[0]).toBe(0x0b);
  });

  it("bug-checks FreeAdapterChannel when nothing kept the channel", () => {
    const rig = tinyPool();
    const a = open32(rig);
    expect(bugCheckOf(() => rig.atDispatch(() => a.ops.FreeAdapterChannel(a.adapter))).parameters[0]).toBe(
      0x04,
    );
  });

  it("bug-checks an AdapterControl routine that returns no IO_ALLOCATION_ACTION, keeping the channel", () => {
    const rig = tinyPool();
    const a = open32(rig);
    const check = bugCheckOf(() => allocate(rig, a, a.pdo, 1, undefined as never, [], "a"));
    expect(check.parameters.slice(0, 2)).toEqual([0x00, 0x100]);
    expect(rig.hal.resources().channelsHeld).toBe(1);
  });

  it("drops queued requests when the adapter is put: their routines never run", () => {
    const rig = tinyPool();
    const [a, b] = [open32(rig), open32(rig)];
    const held = allocate(rig, a, a.pdo, 8, DeallocateObjectKeepRegisters, [], "a");
    const queued = allocate(rig, b, b.pdo, 1, DeallocateObject, [], "b");
    rig.atDispatch(() => b.ops.PutDmaAdapter(b.adapter));
    rig.atDispatch(() => a.ops.FreeMapRegisters(a.adapter, held.request.base, 8));
    expect(queued.request.ran).toBe(false);
    expect(rig.hal.resources()).toMatchObject({ queuedRequests: 0, mapRegistersGranted: 0, adaptersOpen: 1 });
  });

  it("requires DISPATCH_LEVEL", () => {
    const rig = tinyPool();
    const a = open32(rig);
    const check = bugCheckOf(() =>
      a.ops.AllocateAdapterChannel(a.adapter, a.pdo, 1, () => DeallocateObject, undefined),
    );
    expect(check.parameters).toEqual([0x13, 1, DISPATCH_LEVEL, PASSIVE_LEVEL]);
  });

  it("returns STATUS_INVALID_PARAMETER for a routine that is not a function or a count that is not a ULONG", () => {
    const rig = tinyPool();
    const a = open32(rig);
    expect(
      rig.atDispatch(() => a.ops.AllocateAdapterChannel(a.adapter, a.pdo, 1, undefined as never, undefined)),
    ).toBe(STATUS_INVALID_PARAMETER);
    expect(
      rig.atDispatch(() =>
        a.ops.AllocateAdapterChannel(a.adapter, a.pdo, 1.5, () => DeallocateObject, undefined),
      ),
    ).toBe(STATUS_INVALID_PARAMETER);
  });
});

describe("scatter/gather requests in the queues", () => {
  it("may have many lists outstanding for one device object, granted in order", () => {
    const rig = tinyPool();
    const a = open32(rig);
    const buffer = rig.highBuffer(8);
    const log: number[] = [];
    const lists: unknown[] = [];
    rig.atDispatch(() => {
      for (let i = 0; i < 4; i++) {
        const status = a.ops.GetScatterGatherList(
          a.adapter,
          a.pdo,
          buffer.mdl,
          buffer.va,
          3 * 4096,
          (_d, _i, list) => {
            log.push(i);
            lists.push(list);
          },
          undefined,
          true,
        );
        expect(status).toBe(STATUS_SUCCESS);
      }
    });
    // 8 registers: two lists of 3 fit, the third waits, the fourth waits behind it.
    expect(log).toEqual([0, 1]);
    expect(rig.hal.resources()).toMatchObject({ queuedRequests: 2, scatterGatherLists: 2 });
    rig.atDispatch(() => a.ops.PutScatterGatherList(a.adapter, lists[0] as never, true));
    expect(log).toEqual([0, 1, 2]);
    rig.atDispatch(() => a.ops.PutScatterGatherList(a.adapter, lists[1] as never, true));
    expect(log).toEqual([0, 1, 2, 3]);
    rig.atDispatch(() => {
      for (const list of lists.slice(2)) a.ops.PutScatterGatherList(a.adapter, list as never, true);
    });
    expect(rig.hal.resources()).toMatchObject({
      queuedRequests: 0,
      scatterGatherLists: 0,
      mapRegistersGranted: 0,
    });
  });
});

describe("version 3 allocations: transfer contexts, cancel and synchronous requests", () => {
  function v3(rig: HalRig): OpenAdapter {
    return rig.open({ Version: 3, DmaAddressWidth: 32, MaximumLength: 32 * 4096 });
  }

  function context(rig: HalRig, open: OpenAdapter): DMA_TRANSFER_CONTEXT {
    const ctx = new DMA_TRANSFER_CONTEXT();
    expect(rig.atDispatch(() => open.ops.InitializeDmaTransferContext(open.adapter, ctx))).toBe(
      STATUS_SUCCESS,
    );
    return ctx;
  }

  it("cancels a pending allocation: the routine never runs and the queue moves on", () => {
    const rig = tinyPool();
    const [a, b, c] = [v3(rig), v3(rig), v3(rig)];
    const log: string[] = [];
    const held = allocate(rig, a, a.pdo, 8, DeallocateObjectKeepRegisters, log, "a");
    const ctx = context(rig, b);
    const result = rig.atDispatch(() =>
      b.ops.AllocateAdapterChannelEx(
        b.adapter,
        b.pdo,
        ctx,
        6,
        0,
        () => {
          log.push("b");
          return DeallocateObject;
        },
        undefined,
        false,
      ),
    );
    expect(result.Status).toBe(STATUS_SUCCESS);
    allocate(rig, c, c.pdo, 2, DeallocateObject, log, "c");
    expect(rig.atDispatch(() => b.ops.InitializeDmaTransferContext(b.adapter, ctx))).toBe(
      STATUS_INVALID_PARAMETER,
    );
    expect(b.ops.CancelAdapterChannel(b.adapter, b.pdo, ctx)).toBe(true);
    expect(b.ops.CancelAdapterChannel(b.adapter, b.pdo, ctx)).toBe(true);
    rig.atDispatch(() => a.ops.FreeMapRegisters(a.adapter, held.request.base, 8));
    expect(log).toEqual(["a", "c"]);
  });

  it("pre-cancels an allocation with a cancel issued before it, and is too late after the grant", () => {
    const rig = tinyPool();
    const a = v3(rig);
    const ctx = context(rig, a);
    let ran = false;
    expect(a.ops.CancelAdapterChannel(a.adapter, a.pdo, ctx)).toBe(true);
    const cancelled = rig.atDispatch(() =>
      a.ops.AllocateAdapterChannelEx(
        a.adapter,
        a.pdo,
        ctx,
        1,
        0,
        () => {
          ran = true;
          return DeallocateObject;
        },
        undefined,
        false,
      ),
    );
    expect(cancelled.Status).toBe(STATUS_CANCELLED);
    expect(ran).toBe(false);
    const granted = rig.atDispatch(() =>
      a.ops.AllocateAdapterChannelEx(
        a.adapter,
        a.pdo,
        ctx,
        1,
        0,
        () => {
          ran = true;
          return DeallocateObject;
        },
        undefined,
        false,
      ),
    );
    expect([granted.Status, ran]).toEqual([STATUS_SUCCESS, true]);
    expect(a.ops.CancelAdapterChannel(a.adapter, a.pdo, ctx)).toBe(false);
  });

  it("fails a synchronous request that would have to wait, and keeps nothing of it", () => {
    const rig = tinyPool();
    const [a, b] = [v3(rig), v3(rig)];
    allocate(rig, a, a.pdo, 6, DeallocateObjectKeepRegisters, [], "a");
    const ctx = context(rig, b);
    let ran = false;
    const result = rig.atDispatch(() =>
      b.ops.AllocateAdapterChannelEx(
        b.adapter,
        b.pdo,
        ctx,
        4,
        DMA_SYNCHRONOUS_CALLBACK,
        () => {
          ran = true;
          return DeallocateObject;
        },
        undefined,
        false,
      ),
    );
    expect([result.Status, ran]).toEqual([STATUS_INSUFFICIENT_RESOURCES, false]);
    expect(rig.hal.resources().queuedRequests).toBe(0);
  });

  it("returns the MapRegisterBase of a synchronous request without a routine; FreeAdapterObject releases it", () => {
    const rig = tinyPool();
    const a = v3(rig);
    const ctx = context(rig, a);
    const result = rig.atDispatch(() =>
      a.ops.AllocateAdapterChannelEx(
        a.adapter,
        a.pdo,
        ctx,
        3,
        DMA_SYNCHRONOUS_CALLBACK,
        undefined,
        undefined,
        true,
      ),
    );
    expect(result.Status).toBe(STATUS_SUCCESS);
    expect(result.MapRegisterBase).toBeDefined();
    expect(rig.hal.resources()).toMatchObject({ channelsHeld: 1, mapRegistersGranted: 3 });
    rig.atDispatch(() => a.ops.FreeAdapterObject(a.adapter, KeepObject));
    expect(rig.hal.resources().channelsHeld).toBe(1);
    rig.atDispatch(() => a.ops.FreeAdapterObject(a.adapter, DeallocateObjectKeepRegisters));
    expect(rig.hal.resources()).toMatchObject({ channelsHeld: 0, mapRegistersGranted: 3 });
    rig.atDispatch(() => a.ops.FreeMapRegisters(a.adapter, result.MapRegisterBase, 3));
    expect(rig.hal.resources().mapRegistersGranted).toBe(0);
    expect(
      bugCheckOf(() => rig.atDispatch(() => a.ops.FreeAdapterObject(a.adapter, DeallocateObject)))
        .parameters[0],
    ).toBe(0x04);
  });

  it("rejects the argument combinations the WDK forbids", () => {
    const rig = tinyPool();
    const a = v3(rig);
    const ctx = context(rig, a);
    const call = (
      flags: number,
      routine: (() => IO_ALLOCATION_ACTION) | undefined,
      wantBase: boolean,
      context: DMA_TRANSFER_CONTEXT = ctx,
    ): number =>
      rig.atDispatch(() =>
        a.ops.AllocateAdapterChannelEx(a.adapter, a.pdo, context, 1, flags, routine, undefined, wantBase),
      ).Status;
    expect(call(0, undefined, false)).toBe(STATUS_INVALID_PARAMETER);
    expect(call(0, () => DeallocateObject, true)).toBe(STATUS_INVALID_PARAMETER);
    expect(call(DMA_SYNCHRONOUS_CALLBACK, undefined, false)).toBe(STATUS_INVALID_PARAMETER);
    expect(call(0x4, () => DeallocateObject, false)).toBe(STATUS_INVALID_PARAMETER);
    expect(call(0, () => DeallocateObject, false, new DMA_TRANSFER_CONTEXT())).toBe(STATUS_INVALID_PARAMETER);
    expect(
      rig.atDispatch(() =>
        a.ops.AllocateAdapterChannelEx(
          a.adapter,
          a.pdo,
          ctx,
          99,
          0,
          () => DeallocateObject,
          undefined,
          false,
        ),
      ).Status,
    ).toBe(STATUS_INSUFFICIENT_RESOURCES);
  });

  it("cancels a queued GetScatterGatherListEx and frees what it reserved", () => {
    const rig = tinyPool();
    const [a, b] = [v3(rig), v3(rig)];
    const held = allocate(rig, a, a.pdo, 8, DeallocateObjectKeepRegisters, [], "a");
    const buffer = rig.highBuffer(2);
    const ctx = context(rig, b);
    let ran = false;
    const result = rig.atDispatch(() =>
      b.ops.GetScatterGatherListEx(
        b.adapter,
        b.pdo,
        ctx,
        buffer.mdl,
        0,
        8192,
        0,
        () => {
          ran = true;
        },
        undefined,
        true,
        undefined,
        undefined,
        false,
      ),
    );
    expect(result.Status).toBe(STATUS_SUCCESS);
    expect(b.ops.CancelAdapterChannel(b.adapter, b.pdo, ctx)).toBe(true);
    rig.atDispatch(() => a.ops.FreeMapRegisters(a.adapter, held.request.base, 8));
    expect(ran).toBe(false);
    expect(rig.hal.resources()).toMatchObject({
      queuedRequests: 0,
      scatterGatherLists: 0,
      mapRegistersGranted: 0,
    });
    expect((b.adapter as AdapterObject).released).toBe(false);
  });
});
