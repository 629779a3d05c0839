import { describe, expect, it } from "vitest";
import { vectorLayout } from "../../src/hal/common-buffer-vector.js";
import {
  CommonBufferConfigTypeHardwareAccessPermissions,
  CommonBufferConfigTypeLogicalAddressLimits,
  CommonBufferConfigTypeSubSection,
  CommonBufferHardwareAccessReadOnly,
  DOMAIN_COMMON_BUFFER_LARGE_PAGE,
  MM_ANY_NODE_OK,
  MmCached,
  MmNonCached,
} from "../../src/hal/wdm/dma-v3-types.js";
import { DISPATCH_LEVEL } from "../../src/hal/wdm/irql.js";
import {
  STATUS_INSUFFICIENT_RESOURCES,
  STATUS_INVALID_PARAMETER,
  STATUS_NOT_SUPPORTED,
  STATUS_SUCCESS,
} from "../../src/hal/wdm/ntstatus.js";
import { GiB, MiB, PAGE_SIZE } from "../../src/platform/page.js";
import { bugCheckOf, HAL_MODES, HalRig, pattern, sameBytes } from "./support/hal-rig.js";

const FOUR_GIB = 4 * GiB;

describe.each(HAL_MODES)("common buffers, remapping %s", (mode) => {
  it("AllocateCommonBuffer: mapped for the CPU, reachable by the device, shared both ways", () => {
    const rig = new HalRig({ remapping: mode, mmioHoleStart: 3 * GiB });
    const open = rig.open({ Dma64BitAddresses: false });
    const { VirtualAddress, LogicalAddress } = open.ops.AllocateCommonBuffer(
      open.adapter,
      3 * PAGE_SIZE,
      true,
    );
    expect(VirtualAddress).not.toBe(0);
    expect(LogicalAddress + 3 * PAGE_SIZE - 1).toBeLessThan(FOUR_GIB);
    const data = pattern(3 * PAGE_SIZE, 1);
    rig.write(VirtualAddress, data);
    expect(sameBytes(open.device.read(LogicalAddress, 3 * PAGE_SIZE).bytes, data)).toBe(true);
    const reply = pattern(100, 2);
    open.device.write(LogicalAddress + 5000, reply);
    expect(sameBytes(rig.read(VirtualAddress + 5000, 100), reply)).toBe(true);
    open.ops.FreeCommonBuffer(open.adapter, 3 * PAGE_SIZE, LogicalAddress, VirtualAddress, true);
    expect(rig.hal.resources().commonBuffers).toBe(0);
  });

  it("FreeCommonBuffer must repeat the allocation exactly and only once", () => {
    const rig = new HalRig({ remapping: mode });
    const open = rig.open();
    const buffer = open.ops.AllocateCommonBuffer(open.adapter, 100, false);
    const free = (length: number, logical: number, cache: boolean) => () =>
      open.ops.FreeCommonBuffer(open.adapter, length, logical, buffer.VirtualAddress, cache);
    expect(bugCheckOf(free(99, buffer.LogicalAddress, false)).parameters.slice(0, 2)).toEqual([0x00, 0x106]);
    expect(bugCheckOf(free(100, buffer.LogicalAddress, true)).parameters.slice(0, 2)).toEqual([0x00, 0x106]);
    free(100, buffer.LogicalAddress, false)();
    expect(bugCheckOf(free(100, buffer.LogicalAddress, false)).parameters[0]).toBe(0x03);
    const other = rig.open();
    const theirs = other.ops.AllocateCommonBuffer(other.adapter, 100, false);
    expect(
      bugCheckOf(() =>
        open.ops.FreeCommonBuffer(open.adapter, 100, theirs.LogicalAddress, theirs.VirtualAddress, false),
      ).parameters[1],
    ).toBe(0x103);
  });

  it("returns NULL for a zero or oversized length, and needs PASSIVE_LEVEL", () => {
    const rig = new HalRig({ remapping: mode });
    const open = rig.open();
    expect(open.ops.AllocateCommonBuffer(open.adapter, 0, true)).toEqual({
      VirtualAddress: 0,
      LogicalAddress: 0,
    });
    expect(open.ops.AllocateCommonBuffer(open.adapter, 2 ** 32, true)).toEqual({
      VirtualAddress: 0,
      LogicalAddress: 0,
    });
    expect(
      bugCheckOf(() => rig.atDispatch(() => open.ops.AllocateCommonBuffer(open.adapter, 10, true)))
        .parameters,
    ).toEqual([0x13, 1, 0, DISPATCH_LEVEL]);
  });

  it("AllocateCommonBufferEx and AllocateCommonBufferWithBounds honour the logical bounds", () => {
    const rig = new HalRig({ remapping: mode, mmioHoleStart: 3 * GiB });
    const open = rig.open({ Version: 3, DmaAddressWidth: 64 });
    const below = open.ops.AllocateCommonBufferEx(
      open.adapter,
      256 * MiB - 1,
      2 * PAGE_SIZE,
      true,
      MM_ANY_NODE_OK,
    );
    expect(below.LogicalAddress + 2 * PAGE_SIZE - 1).toBeLessThan(256 * MiB);
    const bounded = open.ops.AllocateCommonBufferWithBounds(
      open.adapter,
      64 * MiB,
      128 * MiB - 1,
      PAGE_SIZE,
      0,
      MmNonCached,
      MM_ANY_NODE_OK,
    );
    expect(bounded.LogicalAddress).toBeGreaterThanOrEqual(64 * MiB);
    expect(bounded.LogicalAddress + PAGE_SIZE - 1).toBeLessThan(128 * MiB);
    expect(
      open.ops.AllocateCommonBufferWithBounds(open.adapter, 2 * MiB, MiB, PAGE_SIZE, 0, MmCached, 0)
        .VirtualAddress,
    ).toBe(0);
    expect(
      open.ops.AllocateCommonBufferWithBounds(
        open.adapter,
        undefined,
        undefined,
        PAGE_SIZE,
        0x80,
        MmCached,
        0,
      ).VirtualAddress,
    ).toBe(0);
    const large = open.ops.AllocateCommonBufferWithBounds(
      open.adapter,
      undefined,
      undefined,
      PAGE_SIZE,
      DOMAIN_COMMON_BUFFER_LARGE_PAGE,
      undefined,
      0,
    );
    expect(large.LogicalAddress % (2 * MiB)).toBe(0);
    for (const buffer of [below, bounded, large])
      open.ops.FreeCommonBuffer(
        open.adapter,
        buffer === below ? 2 * PAGE_SIZE : PAGE_SIZE,
        buffer.LogicalAddress,
        buffer.VirtualAddress,
        buffer !== bounded,
      );
    expect(rig.hal.resources().commonBuffers).toBe(0);
  });

  it("common buffer vectors: elements by index, freed one by one, then the vector", () => {
    const rig = new HalRig({ remapping: mode });
    const open = rig.open({ Version: 3, DmaAddressWidth: 32 });
    const { Status, VectorOut } = open.ops.AllocateCommonBufferVector(
      open.adapter,
      0,
      FOUR_GIB - 1,
      MmCached,
      0,
      0,
      100,
      200,
    );
    expect(Status).toBe(STATUS_SUCCESS);
    const addresses = Array.from({ length: 100 }, (_, i) =>
      open.ops.GetCommonBufferFromVectorByIndex(open.adapter, VectorOut!, i),
    );
    const data = pattern(200, 3);
    rig.write(addresses[42]!.VirtualAddressOut, data);
    expect(sameBytes(open.device.read(addresses[42]!.LogicalAddressOut, 200).bytes, data)).toBe(true);
    expect(new Set(addresses.map((a) => a.LogicalAddressOut)).size).toBe(100);
    expect(
      bugCheckOf(() => open.ops.GetCommonBufferFromVectorByIndex(open.adapter, VectorOut!, 100)).parameters,
    ).toEqual([0x3, 100, 100, 0]);
    expect(
      bugCheckOf(() => open.ops.FreeCommonBufferVector(open.adapter, VectorOut!)).parameters.slice(0, 2),
    ).toEqual([0x2, 0]);
    for (let i = 0; i < 100; i++) open.ops.FreeCommonBufferFromVector(open.adapter, VectorOut!, i);
    expect(
      bugCheckOf(() => open.ops.FreeCommonBufferFromVector(open.adapter, VectorOut!, 7)).parameters,
    ).toEqual([0x4, 7, 0, 0]);
    open.ops.FreeCommonBufferVector(open.adapter, VectorOut!);
    expect(rig.hal.resources()).toMatchObject({ commonBuffers: 0, commonBufferVectors: 0 });
    expect(open.ops.AllocateCommonBufferVector(open.adapter, 10, 5, MmCached, 0, 0, 1, 1).Status).toBe(
      STATUS_INVALID_PARAMETER,
    );
  });

  it("reports a wrong IRQL in the vector routines as DMA_COMMON_BUFFER_VECTOR_ERROR 1", () => {
    const rig = new HalRig({ remapping: mode });
    const open = rig.open({ Version: 3, DmaAddressWidth: 64 });
    const check = bugCheckOf(() =>
      rig.atDispatch(() =>
        open.ops.AllocateCommonBufferVector(open.adapter, 0, FOUR_GIB, MmCached, 0, 0, 1, 1),
      ),
    );
    expect([check.code, check.parameters[0]]).toEqual([0x1dc, 0x1]);
  });

  it("CreateCommonBufferFromMdl turns a driver's pages into a common buffer freed by FreeCommonBuffer", () => {
    const rig = new HalRig({ remapping: mode });
    const open = rig.open({ Version: 3, DmaAddressWidth: 64 });
    const buffer = rig.contiguousBuffer(4 * PAGE_SIZE, 60 * MiB);
    const configs = [
      {
        ConfigType: CommonBufferConfigTypeSubSection,
        SubSection: { Offset: PAGE_SIZE, Length: 2 * PAGE_SIZE },
      },
    ] as const;
    const { Status, LogicalAddress } = open.ops.CreateCommonBufferFromMdl(open.adapter, buffer.mdl, configs);
    expect(Status).toBe(STATUS_SUCCESS);
    const data = pattern(2 * PAGE_SIZE, 4);
    rig.write(buffer.va + PAGE_SIZE, data);
    expect(sameBytes(open.device.read(LogicalAddress, 2 * PAGE_SIZE).bytes, data)).toBe(true);
    open.ops.FreeCommonBuffer(open.adapter, 2 * PAGE_SIZE, LogicalAddress, buffer.va + PAGE_SIZE, true);
    const twice = [
      {
        ConfigType: CommonBufferConfigTypeLogicalAddressLimits,
        LogicalAddressLimits: { Minimum: 0, Maximum: FOUR_GIB },
      },
      {
        ConfigType: CommonBufferConfigTypeLogicalAddressLimits,
        LogicalAddressLimits: { Minimum: 0, Maximum: FOUR_GIB },
      },
    ] as const;
    expect(open.ops.CreateCommonBufferFromMdl(open.adapter, buffer.mdl, twice).Status).toBe(
      STATUS_INVALID_PARAMETER,
    );
    const unaligned = rig.mdlFor(buffer.va + 8, PAGE_SIZE);
    expect(open.ops.CreateCommonBufferFromMdl(open.adapter, unaligned, []).Status).toBe(
      STATUS_INVALID_PARAMETER,
    );
    const readOnly = [
      {
        ConfigType: CommonBufferConfigTypeHardwareAccessPermissions,
        HardwareAccessPermissions: CommonBufferHardwareAccessReadOnly,
      },
    ] as const;
    const remapping = mode === "strict" || mode === "lazy";
    const ro = open.ops.CreateCommonBufferFromMdl(open.adapter, buffer.mdl, readOnly);
    expect(ro.Status).toBe(remapping ? STATUS_SUCCESS : STATUS_NOT_SUPPORTED);
    if (remapping) open.ops.FreeCommonBuffer(open.adapter, 4 * PAGE_SIZE, ro.LogicalAddress, buffer.va, true);
    expect(rig.hal.resources().commonBuffers).toBe(0);
  });

  it("domain members: remapping delegates, no remapping has no domains", () => {
    const rig = new HalRig({ remapping: mode });
    const a = rig.open({ Version: 3, DmaAddressWidth: 64 });
    const b = rig.open({ Version: 3, DmaAddressWidth: 64 });
    const domain = a.ops.GetDmaDomain(a.adapter);
    if (mode === "strict" || mode === "lazy") {
      expect(domain).toBeDefined();
      expect(b.ops.JoinDmaDomain(b.adapter, domain!)).toBe(STATUS_SUCCESS);
      expect(b.ops.GetDmaDomain(b.adapter)).toBe(domain);
      const shared = b.ops.AllocateDomainCommonBuffer(
        b.adapter,
        domain!,
        undefined,
        PAGE_SIZE,
        0,
        undefined,
        0,
      );
      expect(shared.Status).toBe(STATUS_SUCCESS);
      b.ops.FreeCommonBuffer(b.adapter, PAGE_SIZE, shared.LogicalAddress, shared.VirtualAddress, true);
      expect(b.ops.LeaveDmaDomain(b.adapter)).toBe(STATUS_SUCCESS);
      expect(b.ops.AllocateDomainCommonBuffer(b.adapter, domain!, undefined, 0, 0, undefined, 0).Status).toBe(
        STATUS_INVALID_PARAMETER,
      );
    } else {
      expect(domain).toBeUndefined();
      expect(b.ops.JoinDmaDomain(b.adapter, { kind: "DMA_DOMAIN" })).toBe(STATUS_NOT_SUPPORTED);
      expect(b.ops.LeaveDmaDomain(b.adapter)).toBe(STATUS_NOT_SUPPORTED);
      expect(
        b.ops.AllocateDomainCommonBuffer(
          b.adapter,
          { kind: "DMA_DOMAIN" },
          undefined,
          PAGE_SIZE,
          0,
          undefined,
          0,
        ).Status,
      ).toBe(STATUS_NOT_SUPPORTED);
    }
  });
});

describe("common buffers without remapping", () => {
  it("are physically contiguous, below the device's reach, and never cross 4 GiB", () => {
    const rig = new HalRig({ mmioHoleStart: 4 * GiB });
    const open = rig.open();
    for (let i = 0; i < 8; i++) {
      const { VirtualAddress, LogicalAddress } = open.ops.AllocateCommonBuffer(open.adapter, 3 * MiB, true);
      expect(Math.floor(LogicalAddress / FOUR_GIB)).toBe(
        Math.floor((LogicalAddress + 3 * MiB - 1) / FOUR_GIB),
      );
      expect(rig.kernel.physicalAddress(VirtualAddress + 3 * MiB - 1)).toBe(LogicalAddress + 3 * MiB - 1);
    }
  });

  it("fail (NULL) when no contiguous run is left below the device's reach", () => {
    const rig = new HalRig();
    const open = rig.open({ Version: 3, DmaAddressWidth: 24, ScatterGather: false });
    expect(open.ops.AllocateCommonBuffer(open.adapter, 32 * MiB, true).VirtualAddress).toBe(0);
    expect(
      open.ops.AllocateCommonBufferVector(open.adapter, 0, FOUR_GIB, MmCached, 0, 0, 20, 4 * MiB).Status,
    ).toBe(STATUS_INSUFFICIENT_RESOURCES);
    expect(rig.hal.resources().commonBuffers).toBe(0);
  });

  it("vector elements smaller than half a page share pages, each on its own cache lines", () => {
    expect(vectorLayout(200)).toEqual({ stride: 256, perChunk: 16 });
    expect(vectorLayout(3000)).toEqual({ stride: 3000, perChunk: 1 });
  });
});
