import { describe, expect, it } from "vitest";
import { DMA_OPERATION_MEMBERS, memberOffset } from "../../src/hal/dma-operation-members.js";
import { HalDmaOperations } from "../../src/hal/hal-dma-operations.js";
import type { DmaAdapterEvent } from "../../src/hal/hal-events.js";
import type { DMA_ADAPTER, DMA_OPERATIONS } from "../../src/hal/wdm/dma-operations.js";
import {
  DMA_ADAPTER_INFO_VERSION1,
  DMA_TRANSFER_CONTEXT,
  emptyDmaAdapterInfo,
} from "../../src/hal/wdm/dma-v3-types.js";
import { DeallocateObjectKeepRegisters } from "../../src/hal/wdm/io-allocation-action.js";
import { DISPATCH_LEVEL, HIGH_LEVEL, PASSIVE_LEVEL } from "../../src/hal/wdm/irql.js";
import {
  STATUS_INVALID_PARAMETER,
  STATUS_NOT_IMPLEMENTED,
  STATUS_NOT_SUPPORTED,
  STATUS_SUCCESS,
} from "../../src/hal/wdm/ntstatus.js";
import { Irql } from "../../src/platform/irql.js";
import { PAGE_SIZE } from "../../src/platform/page.js";
import { bugCheckOf, HAL_MODES, HalRig } from "./support/hal-rig.js";

/** Calls member `name` of `ops` with `adapter` and no other arguments (the checks before them fire first). */
function call(ops: DMA_OPERATIONS, name: string, adapter: DMA_ADAPTER | undefined): unknown {
  return (ops[name as keyof DMA_OPERATIONS] as (...args: unknown[]) => unknown)(adapter);
}

const VECTOR_MEMBERS = new Set([
  "AllocateCommonBufferVector",
  "GetCommonBufferFromVectorByIndex",
  "FreeCommonBufferFromVector",
  "FreeCommonBufferVector",
]);

describe("the DMA_OPERATIONS table", () => {
  it("has the 39 members of wdm.h in order: 12 of version 1, 3 of version 2, 24 of version 3 and later", () => {
    expect(DMA_OPERATION_MEMBERS).toHaveLength(39);
    expect(DMA_OPERATION_MEMBERS.map((m) => m.version).filter((v) => v === 1)).toHaveLength(12);
    expect(DMA_OPERATION_MEMBERS.map((m) => m.version).filter((v) => v === 2)).toHaveLength(3);
    expect(memberOffset("CreateCommonBufferFromMdl")).toBe(0x140 - 8);
    for (const { name } of DMA_OPERATION_MEMBERS)
      expect(typeof HalDmaOperations.prototype[name]).toBe("function");
  });
});

describe.each(HAL_MODES)("every member checks its caller, remapping %s", (mode) => {
  it.each(DMA_OPERATION_MEMBERS.filter((m) => !VECTOR_MEMBERS.has(m.name) && m.irql !== "any"))(
    "$name at the wrong IRQL: 0xE6 / 0x13",
    ({ name, irql }) => {
      const rig = new HalRig({ remapping: mode });
      const { adapter, ops } = rig.open({ Version: 3, DmaAddressWidth: 64 });
      const wrong = irql === "passive" ? DISPATCH_LEVEL : irql === "dispatch" ? PASSIVE_LEVEL : Irql.device;
      const check = bugCheckOf(() => rig.scheduler.runAtIrql(wrong, () => call(ops, name, adapter)));
      const expected =
        irql === "passive"
          ? [1, PASSIVE_LEVEL]
          : irql === "dispatch"
            ? [1, DISPATCH_LEVEL]
            : [2, DISPATCH_LEVEL];
      expect(check.parameters).toEqual([0x13, ...expected, wrong]);
    },
  );

  it("the vector members report a wrong IRQL as 0x1DC / 1", () => {
    const rig = new HalRig({ remapping: mode });
    const { adapter, ops } = rig.open({ Version: 3, DmaAddressWidth: 64 });
    for (const name of VECTOR_MEMBERS) {
      const check = bugCheckOf(() => rig.scheduler.runAtIrql(Irql.device, () => call(ops, name, adapter)));
      expect([check.code, check.parameters[0]]).toEqual([0x1dc, 1]);
    }
  });

  it("CalculateScatterGatherList works at any IRQL", () => {
    const rig = new HalRig({ remapping: mode });
    const { adapter, ops } = rig.open();
    expect(
      rig.scheduler.runAtIrql(HIGH_LEVEL, () =>
        ops.CalculateScatterGatherList(adapter, undefined, 0, PAGE_SIZE),
      ).Status,
    ).toBe(STATUS_SUCCESS);
  });

  it.each(DMA_OPERATION_MEMBERS)("$name refuses a NULL, foreign or released adapter", ({ name }) => {
    const rig = new HalRig({ remapping: mode });
    const { adapter, ops } = rig.open({ Version: 3, DmaAddressWidth: 64 });
    expect(bugCheckOf(() => call(ops, name, undefined)).parameters[0]).toBe(0x19);
    const foreign = new HalRig({ remapping: mode }).open({ Version: 3, DmaAddressWidth: 64 }).adapter;
    expect(bugCheckOf(() => call(ops, name, foreign)).parameters.slice(0, 2)).toEqual([0x00, 0x102]);
    ops.PutDmaAdapter(adapter);
    expect(bugCheckOf(() => call(ops, name, adapter)).parameters[0]).toBe(0x18);
  });

  it("a member beyond the adapter's table version is a driver bug", () => {
    const rig = new HalRig({ remapping: mode });
    const { adapter, ops } = rig.open({ Version: 1 });
    const check = bugCheckOf(() => ops.CalculateScatterGatherList(adapter, undefined, 0, PAGE_SIZE));
    expect(check.parameters).toEqual([0x00, 0x101, 2, 1]);
    expect(bugCheckOf(() => ops.GetDmaDomain(adapter)).parameters).toEqual([0x00, 0x101, 3, 1]);
  });
});

describe("members with nothing to do for a bus master", () => {
  it("GetDmaAlignment is 1, ReadDmaCounter 0, ConfigureAdapterChannel unknown, CancelMappedTransfer unsupported", () => {
    const rig = new HalRig();
    const { adapter, ops } = rig.open({ Version: 3, DmaAddressWidth: 64 });
    expect(ops.GetDmaAlignment(adapter)).toBe(1);
    expect(ops.ReadDmaCounter(adapter)).toBe(0);
    expect(ops.ConfigureAdapterChannel(adapter, 1, undefined)).toBe(STATUS_NOT_IMPLEMENTED);
    expect(ops.CancelMappedTransfer(adapter, new DMA_TRANSFER_CONTEXT())).toBe(STATUS_NOT_SUPPORTED);
  });

  it("GetDmaAdapterInfo describes the adapter for version 1 only", () => {
    const rig = new HalRig();
    const { adapter, ops, numberOfMapRegisters } = rig.open({ Version: 3, DmaAddressWidth: 40 });
    const info = emptyDmaAdapterInfo(DMA_ADAPTER_INFO_VERSION1);
    expect(ops.GetDmaAdapterInfo(adapter, info)).toBe(STATUS_SUCCESS);
    expect(info.V1).toEqual({
      ReadDmaCounterAvailable: false,
      ScatterGatherLimit: numberOfMapRegisters,
      DmaAddressWidth: 40,
      Flags: 0,
      MinimumTransferUnit: 1,
    });
    expect(ops.GetDmaAdapterInfo(adapter, emptyDmaAdapterInfo(2))).toBe(STATUS_NOT_SUPPORTED);
  });

  it("InitializeDmaTransferContext wants a DMA_TRANSFER_CONTEXT; FlushDmaBuffer a resident MDL", () => {
    const rig = new HalRig({ coherent: false });
    const { adapter, ops } = rig.open({ Version: 3, DmaAddressWidth: 64 });
    expect(ops.InitializeDmaTransferContext(adapter, {} as DMA_TRANSFER_CONTEXT)).toBe(
      STATUS_INVALID_PARAMETER,
    );
    const buffer = rig.buffer(PAGE_SIZE);
    expect(ops.FlushDmaBuffer(adapter, buffer.mdl, false)).toBe(STATUS_SUCCESS);
    expect(rig.machine.counters.get("cpu.cache.flush.calls")).toBeGreaterThan(0);
    expect(ops.FlushDmaBuffer(adapter, rig.mm.allocateMdl(buffer.va, 8), true)).toBe(
      STATUS_INVALID_PARAMETER,
    );
  });
});

describe("PutDmaAdapter and the teardown books", () => {
  it("leaves nothing behind when the driver cleaned up", () => {
    const rig = new HalRig();
    const { adapter, ops, pdo } = rig.open({ Dma64BitAddresses: false });
    const buffer = rig.highBuffer(2);
    rig.atDispatch(() =>
      ops.GetScatterGatherList(
        adapter,
        pdo,
        buffer.mdl,
        buffer.va,
        2 * PAGE_SIZE,
        (_d, _i, list) => ops.PutScatterGatherList(adapter, list, true),
        undefined,
        true,
      ),
    );
    const common = ops.AllocateCommonBuffer(adapter, 100, true);
    ops.FreeCommonBuffer(adapter, 100, common.LogicalAddress, common.VirtualAddress, true);
    ops.PutDmaAdapter(adapter);
    expect(rig.hal.resources()).toEqual({
      adaptersOpen: 0,
      mapRegistersGranted: 0,
      bouncePages: 0,
      iovaPages: 0,
      commonBuffers: 0,
      commonBufferVectors: 0,
      scatterGatherLists: 0,
      queuedRequests: 0,
      channelsHeld: 0,
    });
  });

  it("releases the adapter even with resources outstanding, which then leak as on Windows", () => {
    const rig = new HalRig();
    const events: DmaAdapterEvent[] = [];
    rig.machine.events.on("dma.adapter", (event) => events.push(event));
    const { adapter, ops, pdo } = rig.open({ Dma64BitAddresses: false });
    rig.atDispatch(() =>
      ops.AllocateAdapterChannel(adapter, pdo, 2, () => DeallocateObjectKeepRegisters, undefined),
    );
    ops.AllocateCommonBuffer(adapter, 100, true);
    ops.PutDmaAdapter(adapter);
    expect(events.map((e) => [e.action, e.leaked])).toEqual([
      ["open", 0],
      ["close", 2],
    ]);
    expect(rig.hal.resources()).toMatchObject({ adaptersOpen: 0, mapRegistersGranted: 2, commonBuffers: 1 });
  });
});
