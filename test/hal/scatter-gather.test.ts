import { describe, expect, it } from "vitest";
import { appendElement, scatterGatherListSize } from "../../src/hal/scatter-gather-builder.js";
import type { DMA_ADAPTER, DMA_OPERATIONS } from "../../src/hal/wdm/dma-operations.js";
import {
  DMA_SYNCHRONOUS_CALLBACK,
  DMA_TRANSFER_CONTEXT,
  emptyDmaTransferInfo,
} from "../../src/hal/wdm/dma-v3-types.js";
import { DeallocateObjectKeepRegisters } from "../../src/hal/wdm/io-allocation-action.js";
import { DISPATCH_LEVEL, PASSIVE_LEVEL } from "../../src/hal/wdm/irql.js";
import {
  STATUS_BUFFER_TOO_SMALL,
  STATUS_INSUFFICIENT_RESOURCES,
  STATUS_INVALID_PARAMETER,
  STATUS_NONE_MAPPED,
  STATUS_NOT_SUPPORTED,
  STATUS_SUCCESS,
} from "../../src/hal/wdm/ntstatus.js";
import type { SCATTER_GATHER_ELEMENT, SCATTER_GATHER_LIST } from "../../src/hal/wdm/scatter-gather-list.js";
import type { Mdl } from "../../src/platform/mdl.js";
import { GiB, PAGE_SIZE } from "../../src/platform/page.js";
import { bugCheckOf, HalRig, type OpenAdapter, pattern, sameBytes } from "./support/hal-rig.js";

const FOUR_GIB = 4 * GiB;

/** GetScatterGatherList at DISPATCH_LEVEL; returns the list the routine got (undefined if it did not run). */
function getList(
  rig: HalRig,
  open: OpenAdapter,
  mdl: Mdl,
  va: number,
  length: number,
  write: boolean,
): SCATTER_GATHER_LIST | undefined {
  let list: SCATTER_GATHER_LIST | undefined;
  const status = rig.atDispatch(() =>
    open.ops.GetScatterGatherList(
      open.adapter,
      open.pdo,
      mdl,
      va,
      length,
      (_d, _i, given) => {
        list = given;
      },
      undefined,
      write,
    ),
  );
  expect(status).toBe(STATUS_SUCCESS);
  return list;
}

function put(
  rig: HalRig,
  open: { adapter: DMA_ADAPTER; ops: DMA_OPERATIONS },
  list: SCATTER_GATHER_LIST,
  write: boolean,
): void {
  rig.atDispatch(() => open.ops.PutScatterGatherList(open.adapter, list, write));
}

/** What the device reads when it follows the list. */
function gather(open: OpenAdapter, list: SCATTER_GATHER_LIST): Uint8Array {
  return Buffer.concat(list.Elements.map((e) => open.device.read(e.Address, e.Length).bytes));
}

describe("scatter/gather elements", () => {
  it("merges adjacent pieces and splits at 4 GiB boundaries", () => {
    const elements: SCATTER_GATHER_ELEMENT[] = [];
    appendElement(elements, { logicalAddress: 0x1000, length: 0x1000 });
    appendElement(elements, { logicalAddress: 0x2000, length: 0x800 });
    appendElement(elements, { logicalAddress: FOUR_GIB - 0x1000, length: 0x3000 });
    appendElement(elements, { logicalAddress: FOUR_GIB + 0x2000, length: 0x100 });
    expect(elements.map((e) => [e.Address, e.Length])).toEqual([
      [0x1000, 0x1800],
      [FOUR_GIB - 0x1000, 0x1000],
      [FOUR_GIB, 0x2100],
    ]);
  });

  it("sizes a list as the x64 header, 24 bytes per element and the HAL's private context", () => {
    expect(scatterGatherListSize(3, 3)).toBe(16 + 3 * 24 + 64 + 3 * 8);
  });
});

describe("CalculateScatterGatherList", () => {
  it("reports the worst case without an MDL and the exact count with one, at any IRQL", () => {
    const rig = new HalRig();
    const open = rig.open({ MaximumLength: 16 * PAGE_SIZE });
    const noMdl = open.ops.CalculateScatterGatherList(open.adapter, undefined, 0x123, 2 * PAGE_SIZE);
    expect(noMdl).toEqual({
      Status: STATUS_SUCCESS,
      ScatterGatherListSize: scatterGatherListSize(3, 3),
      NumberOfMapRegisters: 3,
    });
    // KMDF sizes its lookaside buffers this way and expects the adapter's own count back.
    const kmdf = rig.atDispatch(() =>
      open.ops.CalculateScatterGatherList(open.adapter, undefined, 0, open.numberOfMapRegisters * PAGE_SIZE),
    );
    expect(kmdf.NumberOfMapRegisters).toBe(open.numberOfMapRegisters);
    const buffer = rig.buffer(3 * PAGE_SIZE);
    const tail = rig.mdlFor(rig.buffer(PAGE_SIZE).va + 8, 100, buffer.mdl);
    expect(tail.next).toBeUndefined();
    const exact = open.ops.CalculateScatterGatherList(
      open.adapter,
      buffer.mdl,
      buffer.va + PAGE_SIZE,
      2 * PAGE_SIZE + 100,
    );
    expect(exact.NumberOfMapRegisters).toBe(3);
  });

  it("says STATUS_INSUFFICIENT_RESOURCES past the adapter's registers and STATUS_BUFFER_TOO_SMALL past the MDL", () => {
    const rig = new HalRig();
    const open = rig.open({ MaximumLength: 4 * PAGE_SIZE });
    expect(open.ops.CalculateScatterGatherList(open.adapter, undefined, 0, 8 * PAGE_SIZE).Status).toBe(
      STATUS_INSUFFICIENT_RESOURCES,
    );
    const buffer = rig.buffer(PAGE_SIZE);
    expect(
      open.ops.CalculateScatterGatherList(open.adapter, buffer.mdl, buffer.va, 2 * PAGE_SIZE).Status,
    ).toBe(STATUS_BUFFER_TOO_SMALL);
  });
});

describe("GetScatterGatherList / PutScatterGatherList", () => {
  it("gives a 64-bit device its physical runs, and a 32-bit one a single bounced element for pages above 4 GiB", () => {
    const rig = new HalRig();
    const wide = rig.open();
    const data = pattern(6 * PAGE_SIZE, 1);
    const buffer = rig.highBuffer(6, data);
    const direct = getList(rig, wide, buffer.mdl, buffer.va, 6 * PAGE_SIZE, true)!;
    expect(direct.Elements.every((e) => e.Address >= FOUR_GIB)).toBe(true);
    expect(sameBytes(gather(wide, direct), data)).toBe(true);
    put(rig, wide, direct, true);
    const narrow = rig.open({ Dma64BitAddresses: false });
    const bounced = getList(rig, narrow, buffer.mdl, buffer.va + 10, 6 * PAGE_SIZE - 10, true)!;
    expect(bounced.NumberOfElements).toBe(1);
    expect(bounced.Elements[0]!.Address).toBeLessThan(FOUR_GIB);
    expect(sameBytes(gather(narrow, bounced), data.subarray(10))).toBe(true);
    put(rig, narrow, bounced, true);
    expect(rig.hal.resources()).toMatchObject({
      scatterGatherLists: 0,
      mapRegistersGranted: 0,
      bouncePages: 0,
    });
  });

  it("follows a chain of MDLs and merges what is adjacent across them", () => {
    const rig = new HalRig();
    const open = rig.open();
    const data = pattern(4 * PAGE_SIZE, 2);
    const contiguous = rig.contiguousBuffer(4 * PAGE_SIZE, 60 * 1024 * 1024, 0, data);
    const head = rig.mdlFor(contiguous.va, 2 * PAGE_SIZE);
    rig.mdlFor(contiguous.va + 2 * PAGE_SIZE, 2 * PAGE_SIZE, head);
    const list = getList(rig, open, head, contiguous.va + 100, 4 * PAGE_SIZE - 100, true)!;
    expect(list.Elements.map((e) => e.Length)).toEqual([4 * PAGE_SIZE - 100]);
    expect(sameBytes(gather(open, list), data.subarray(100))).toBe(true);
    put(rig, open, list, true);
  });

  it("delivers device writes to the buffer at PutScatterGatherList", () => {
    const rig = new HalRig();
    const open = rig.open({ Dma64BitAddresses: false });
    const buffer = rig.highBuffer(3);
    const list = getList(rig, open, buffer.mdl, buffer.va, 3 * PAGE_SIZE, false)!;
    const incoming = pattern(3 * PAGE_SIZE, 3);
    let offset = 0;
    for (const e of list.Elements) {
      open.device.write(e.Address, incoming.subarray(offset, offset + e.Length));
      offset += e.Length;
    }
    expect(sameBytes(rig.read(buffer.va, 3 * PAGE_SIZE), incoming)).toBe(false);
    put(rig, open, list, false);
    expect(sameBytes(rig.read(buffer.va, 3 * PAGE_SIZE), incoming)).toBe(true);
  });

  it("refuses more pages than the adapter's map registers", () => {
    const rig = new HalRig();
    const open = rig.open({ MaximumLength: 2 * PAGE_SIZE });
    const buffer = rig.buffer(8 * PAGE_SIZE);
    let ran = false;
    const status = rig.atDispatch(() =>
      open.ops.GetScatterGatherList(
        open.adapter,
        open.pdo,
        buffer.mdl,
        buffer.va,
        8 * PAGE_SIZE,
        () => {
          ran = true;
        },
        undefined,
        true,
      ),
    );
    expect([status, ran]).toEqual([STATUS_INSUFFICIENT_RESOURCES, false]);
  });

  it("bug-checks lists of pages that are not locked, outside the MDL, past its end or empty", () => {
    const rig = new HalRig();
    const open = rig.open();
    const buffer = rig.buffer(2 * PAGE_SIZE);
    const unlocked = rig.mm.allocateMdl(buffer.va, PAGE_SIZE);
    const call = (mdl: Mdl, va: number, length: number) => () =>
      rig.atDispatch(() =>
        open.ops.GetScatterGatherList(open.adapter, open.pdo, mdl, va, length, () => {}, undefined, true),
      );
    expect(bugCheckOf(call(unlocked, buffer.va, PAGE_SIZE)).parameters[0]).toBe(0x0e);
    expect(bugCheckOf(call(buffer.mdl, buffer.va - 1, PAGE_SIZE)).parameters[0]).toBe(0x1b);
    expect(bugCheckOf(call(buffer.mdl, buffer.va, 3 * PAGE_SIZE)).parameters.slice(0, 2)).toEqual([
      0x24,
      PAGE_SIZE,
    ]);
    expect(bugCheckOf(call(buffer.mdl, buffer.va, 0)).parameters[0]).toBe(0x21);
    expect(
      bugCheckOf(() =>
        open.ops.GetScatterGatherList(
          open.adapter,
          open.pdo,
          buffer.mdl,
          buffer.va,
          1,
          () => {},
          undefined,
          true,
        ),
      ).parameters,
    ).toEqual([0x13, 1, DISPATCH_LEVEL, PASSIVE_LEVEL]);
  });

  it("bug-checks a list put back twice, or put back on another adapter", () => {
    const rig = new HalRig();
    const [a, b] = [rig.open(), rig.open()];
    const buffer = rig.buffer(PAGE_SIZE);
    const list = getList(rig, a, buffer.mdl, buffer.va, PAGE_SIZE, true)!;
    expect(bugCheckOf(() => put(rig, b, list, true)).parameters.slice(0, 2)).toEqual([0x00, 0x103]);
    put(rig, a, list, true);
    expect(bugCheckOf(() => put(rig, a, list, true)).parameters[0]).toBe(0x06);
  });
});

describe("BuildScatterGatherList", () => {
  it("writes the list into the caller's buffer in the x64 layout", () => {
    const rig = new HalRig();
    const open = rig.open();
    const buffer = rig.buffer(3 * PAGE_SIZE);
    const size = open.ops.CalculateScatterGatherList(
      open.adapter,
      buffer.mdl,
      buffer.va,
      3 * PAGE_SIZE,
    ).ScatterGatherListSize;
    const listBuffer = rig.buffer(size).va;
    let list: SCATTER_GATHER_LIST | undefined;
    const status = rig.atDispatch(() =>
      open.ops.BuildScatterGatherList(
        open.adapter,
        open.pdo,
        buffer.mdl,
        buffer.va,
        3 * PAGE_SIZE,
        (_d, _i, given) => {
          list = given;
        },
        undefined,
        true,
        listBuffer,
        size,
      ),
    );
    expect(status).toBe(STATUS_SUCCESS);
    const bytes = rig.read(listBuffer, 16 + 24 * list!.NumberOfElements);
    const view = new DataView(bytes.buffer);
    expect(view.getUint32(0, true)).toBe(list!.NumberOfElements);
    list!.Elements.forEach((e, i) => {
      expect(Number(view.getBigUint64(16 + 24 * i, true))).toBe(e.Address);
      expect(view.getUint32(16 + 24 * i + 8, true)).toBe(e.Length);
    });
    put(rig, open, list!, true);
  });

  it("returns STATUS_BUFFER_TOO_SMALL for a buffer smaller than CalculateScatterGatherList says", () => {
    const rig = new HalRig();
    const open = rig.open();
    const buffer = rig.buffer(2 * PAGE_SIZE);
    const size = open.ops.CalculateScatterGatherList(
      open.adapter,
      buffer.mdl,
      buffer.va,
      2 * PAGE_SIZE,
    ).ScatterGatherListSize;
    const listBuffer = rig.buffer(size).va;
    let ran = false;
    const status = rig.atDispatch(() =>
      open.ops.BuildScatterGatherList(
        open.adapter,
        open.pdo,
        buffer.mdl,
        buffer.va,
        2 * PAGE_SIZE,
        () => {
          ran = true;
        },
        undefined,
        true,
        listBuffer,
        size - 1,
      ),
    );
    expect([status, ran]).toEqual([STATUS_BUFFER_TOO_SMALL, false]);
  });

  it("bug-checks a list buffer with no memory behind it (PAGE_FAULT_IN_NONPAGED_AREA)", () => {
    const rig = new HalRig();
    const open = rig.open();
    const buffer = rig.buffer(PAGE_SIZE);
    const check = bugCheckOf(() =>
      rig.atDispatch(() =>
        open.ops.BuildScatterGatherList(
          open.adapter,
          open.pdo,
          buffer.mdl,
          buffer.va,
          PAGE_SIZE,
          () => {},
          undefined,
          true,
          0x10000,
          4096,
        ),
      ),
    );
    expect(check.code).toBe(0x50);
  });
});

describe("BuildMdlFromScatterGatherList", () => {
  it("returns the original MDL when nothing bounced, an MDL over the bounce pages otherwise, once", () => {
    const rig = new HalRig();
    const wide = rig.open({ Version: 2 });
    const data = pattern(2 * PAGE_SIZE, 4);
    const buffer = rig.highBuffer(2, data);
    const direct = getList(rig, wide, buffer.mdl, buffer.va, 2 * PAGE_SIZE, true)!;
    expect(wide.ops.BuildMdlFromScatterGatherList(wide.adapter, direct, undefined).Status).toBe(
      STATUS_INVALID_PARAMETER,
    );
    expect(wide.ops.BuildMdlFromScatterGatherList(wide.adapter, direct, buffer.mdl)).toEqual({
      Status: STATUS_SUCCESS,
      TargetMdl: buffer.mdl,
    });
    expect(wide.ops.BuildMdlFromScatterGatherList(wide.adapter, direct, buffer.mdl).Status).toBe(
      STATUS_NONE_MAPPED,
    );
    put(rig, wide, direct, true);
    const narrow = rig.open({ Version: 2, Dma64BitAddresses: false });
    const bounced = getList(rig, narrow, buffer.mdl, buffer.va, 2 * PAGE_SIZE, true)!;
    const { Status, TargetMdl } = narrow.ops.BuildMdlFromScatterGatherList(
      narrow.adapter,
      bounced,
      buffer.mdl,
    );
    expect(Status).toBe(STATUS_SUCCESS);
    expect(TargetMdl).not.toBe(buffer.mdl);
    expect(TargetMdl!.pfns.every((pfn) => pfn * PAGE_SIZE < FOUR_GIB)).toBe(true);
    expect(sameBytes(rig.read(TargetMdl!.systemVa!, 2 * PAGE_SIZE), data)).toBe(true);
    put(rig, narrow, bounced, true);
    expect(TargetMdl!.freed).toBe(true);
  });
});

describe("version 3 scatter/gather", () => {
  function v3(rig: HalRig, overrides = {}): OpenAdapter {
    return rig.open({ Version: 3, DmaAddressWidth: 64, ...overrides });
  }

  function ctx(rig: HalRig, open: OpenAdapter): DMA_TRANSFER_CONTEXT {
    const context = new DMA_TRANSFER_CONTEXT();
    rig.atDispatch(() => open.ops.InitializeDmaTransferContext(open.adapter, context));
    return context;
  }

  it("GetScatterGatherListEx maps from an offset into a chain, synchronously, and holds the channel until FreeAdapterObject", () => {
    const rig = new HalRig();
    const open = v3(rig, { DmaAddressWidth: 32 });
    const data = pattern(5 * PAGE_SIZE, 5);
    const first = rig.highBuffer(2, data.subarray(0, 2 * PAGE_SIZE));
    const second = rig.highBuffer(3, data.subarray(2 * PAGE_SIZE));
    const head = first.mdl;
    head.next = second.mdl;
    const result = open.ops.GetScatterGatherListEx(
      open.adapter,
      open.pdo,
      ctx(rig, open),
      head,
      1000,
      4 * PAGE_SIZE,
      DMA_SYNCHRONOUS_CALLBACK,
      undefined,
      undefined,
      true,
      undefined,
      undefined,
      true,
    );
    expect(result.Status).toBe(STATUS_SUCCESS);
    expect(
      sameBytes(gather(open, result.ScatterGatherList!), data.subarray(1000, 1000 + 4 * PAGE_SIZE)),
    ).toBe(true);
    expect(rig.hal.resources().channelsHeld).toBe(1);
    open.ops.FreeAdapterObject(open.adapter, DeallocateObjectKeepRegisters);
    expect(rig.hal.resources().channelsHeld).toBe(0);
    put(rig, open, result.ScatterGatherList!, true);
    expect(rig.hal.resources()).toMatchObject({ mapRegistersGranted: 0, scatterGatherLists: 0 });
  });

  it("BuildScatterGatherListEx returns the list it wrote, and checks the buffer size", () => {
    const rig = new HalRig();
    const open = v3(rig);
    const buffer = rig.buffer(2 * PAGE_SIZE);
    const info = emptyDmaTransferInfo(2);
    expect(open.ops.GetDmaTransferInfo(open.adapter, buffer.mdl, 0, 2 * PAGE_SIZE, false, info)).toBe(
      STATUS_SUCCESS,
    );
    const listBuffer = rig.buffer(info.V2.ScatterGatherListSize).va;
    let seen: SCATTER_GATHER_LIST | undefined;
    const build = (length: number) =>
      rig.atDispatch(() =>
        open.ops.BuildScatterGatherListEx(
          open.adapter,
          open.pdo,
          ctx(rig, open),
          buffer.mdl,
          0,
          2 * PAGE_SIZE,
          0,
          (_d, _i, list) => {
            seen = list;
          },
          undefined,
          true,
          listBuffer,
          length,
          undefined,
          undefined,
        ),
      );
    expect(build(info.V2.ScatterGatherListSize - 1).Status).toBe(STATUS_BUFFER_TOO_SMALL);
    const result = build(info.V2.ScatterGatherListSize);
    expect(result.Status).toBe(STATUS_SUCCESS);
    expect(result.ScatterGatherList).toBe(seen);
    put(rig, open, seen!, true);
  });

  it("rejects completion routines and forbidden flag combinations", () => {
    const rig = new HalRig();
    const open = v3(rig);
    const buffer = rig.buffer(PAGE_SIZE);
    const get = (flags: number, routine: (() => void) | undefined, want: boolean, completion?: () => void) =>
      open.ops.GetScatterGatherListEx(
        open.adapter,
        open.pdo,
        ctx(rig, open),
        buffer.mdl,
        0,
        PAGE_SIZE,
        flags,
        routine,
        undefined,
        true,
        completion,
        undefined,
        want,
      ).Status;
    expect(
      get(
        0,
        () => {},
        false,
        () => {},
      ),
    ).toBe(STATUS_INVALID_PARAMETER);
    expect(get(0, undefined, false)).toBe(STATUS_INVALID_PARAMETER);
    expect(get(0, () => {}, true)).toBe(STATUS_INVALID_PARAMETER);
    expect(get(DMA_SYNCHRONOUS_CALLBACK, undefined, false)).toBe(STATUS_INVALID_PARAMETER);
    expect(
      open.ops.GetScatterGatherListEx(
        open.adapter,
        open.pdo,
        ctx(rig, open),
        buffer.mdl,
        PAGE_SIZE,
        1,
        0,
        () => {},
        undefined,
        true,
        undefined,
        undefined,
        false,
      ).Status,
    ).toBe(STATUS_INVALID_PARAMETER);
  });

  it("GetDmaTransferInfo reports registers, elements and list size, version 1 or 2 only", () => {
    const rig = new HalRig();
    const open = v3(rig);
    const buffer = rig.buffer(3 * PAGE_SIZE);
    const v1 = emptyDmaTransferInfo(1);
    expect(open.ops.GetDmaTransferInfo(open.adapter, buffer.mdl, 100, 2 * PAGE_SIZE, false, v1)).toBe(
      STATUS_SUCCESS,
    );
    expect(v1.V1).toEqual({
      MapRegisterCount: 3,
      ScatterGatherElementCount: 3,
      ScatterGatherListSize: scatterGatherListSize(3, 3),
    });
    expect(
      open.ops.GetDmaTransferInfo(open.adapter, buffer.mdl, 0, PAGE_SIZE, false, emptyDmaTransferInfo(3)),
    ).toBe(STATUS_NOT_SUPPORTED);
    expect(
      open.ops.GetDmaTransferInfo(open.adapter, buffer.mdl, 3 * PAGE_SIZE, 1, false, emptyDmaTransferInfo(1)),
    ).toBe(STATUS_INVALID_PARAMETER);
  });

  it("MapTransferEx writes what fits into the list buffer and FlushAdapterBuffersEx ends it", () => {
    const rig = new HalRig({ mmioHoleStart: 3 * GiB });
    const open = v3(rig, { DmaAddressWidth: 32 });
    const buffer = rig.buffer(8 * PAGE_SIZE);
    const listBuffer = rig.buffer(16 + 24 * 2).va;
    const context = ctx(rig, open);
    const { MapRegisterBase } = rig.atDispatch(() =>
      open.ops.AllocateAdapterChannelEx(
        open.adapter,
        open.pdo,
        context,
        8,
        DMA_SYNCHRONOUS_CALLBACK,
        undefined,
        undefined,
        true,
      ),
    );
    open.ops.FreeAdapterObject(open.adapter, DeallocateObjectKeepRegisters);
    const map = (offset: number, length: number, listLength = 16 + 24 * 2) =>
      open.ops.MapTransferEx(
        open.adapter,
        buffer.mdl,
        MapRegisterBase,
        offset,
        0,
        length,
        false,
        listBuffer,
        listLength,
        undefined,
        undefined,
      );
    const first = map(0, 8 * PAGE_SIZE);
    expect(first.Status).toBe(STATUS_SUCCESS);
    expect(first.ScatterGatherList!.NumberOfElements).toBeLessThanOrEqual(2);
    expect(first.Length).toBe(first.ScatterGatherList!.Elements.reduce((sum, e) => sum + e.Length, 0));
    const incoming = pattern(first.Length, 6);
    let offset = 0;
    for (const e of first.ScatterGatherList!.Elements) {
      open.device.write(e.Address, incoming.subarray(offset, offset + e.Length));
      offset += e.Length;
    }
    expect(
      open.ops.FlushAdapterBuffersEx(open.adapter, buffer.mdl, MapRegisterBase, 0, first.Length, false),
    ).toBe(STATUS_SUCCESS);
    expect(sameBytes(rig.read(buffer.va, first.Length), incoming)).toBe(true);
    expect(
      open.ops.MapTransferEx(
        open.adapter,
        buffer.mdl,
        MapRegisterBase,
        0,
        4,
        10,
        false,
        listBuffer,
        40,
        undefined,
        undefined,
      ).Status,
    ).toBe(STATUS_INVALID_PARAMETER);
    expect(map(0, 10, 39).Status).toBe(STATUS_INVALID_PARAMETER);
    expect(
      open.ops.MapTransferEx(
        open.adapter,
        buffer.mdl,
        MapRegisterBase,
        0,
        0,
        10,
        false,
        listBuffer,
        40,
        () => {},
        undefined,
      ).Status,
    ).toBe(STATUS_INVALID_PARAMETER);
    expect(
      open.ops.MapTransferEx(
        open.adapter,
        buffer.mdl,
        undefined,
        0,
        0,
        10,
        false,
        listBuffer,
        40,
        undefined,
        undefined,
      ).Status,
    ).toBe(STATUS_INSUFFICIENT_RESOURCES);
    rig.atDispatch(() => open.ops.FreeMapRegisters(open.adapter, MapRegisterBase, 8));
  });
});
