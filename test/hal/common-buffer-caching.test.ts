/**
 * CacheEnabled on a non-coherent machine (reference section 5): an uncached common buffer is
 * shared with the device as it is, a cached one needs KeFlushIoBuffers like any other buffer. A
 * coherent machine ignores the attribute, as x86 does.
 */
import { describe, expect, it } from "vitest";
import { Kernel } from "../../src/ddi/kernel.js";
import { MM_ANY_NODE_OK, MmNonCached } from "../../src/hal/wdm/dma-v3-types.js";
import { CpuMemory } from "../../src/platform/cpu-memory.js";
import { PAGE_SIZE } from "../../src/platform/page.js";
import { HAL_MODES, HalRig, pattern, sameBytes } from "./support/hal-rig.js";

const LENGTH = 2 * PAGE_SIZE;

describe.each(HAL_MODES)("common buffer caching on a non-coherent machine, remapping %s", (mode) => {
  it("a cached common buffer loses CPU writes without KeFlushIoBuffers and keeps them with it", () => {
    const rig = new HalRig({ remapping: mode, coherent: false });
    const open = rig.open();
    const { VirtualAddress, LogicalAddress } = open.ops.AllocateCommonBuffer(open.adapter, LENGTH, true);
    const data = pattern(LENGTH, 1);
    rig.write(VirtualAddress, data);
    expect(sameBytes(open.device.read(LogicalAddress, LENGTH).bytes, data)).toBe(false);
    rig.machine.get(Kernel).KeFlushIoBuffers(rig.mdlFor(VirtualAddress, LENGTH), false, true);
    expect(sameBytes(open.device.read(LogicalAddress, LENGTH).bytes, data)).toBe(true);
    open.ops.FreeCommonBuffer(open.adapter, LENGTH, LogicalAddress, VirtualAddress, true);
  });

  it("an uncached common buffer is shared both ways with no cache maintenance", () => {
    const rig = new HalRig({ remapping: mode, coherent: false });
    const cpu = rig.machine.get(CpuMemory);
    const open = rig.open();
    const { VirtualAddress, LogicalAddress } = open.ops.AllocateCommonBuffer(open.adapter, LENGTH, false);
    expect(cpu.uncachedPages).toBe(2);
    rig.read(VirtualAddress, LENGTH);
    const data = pattern(LENGTH, 2);
    rig.write(VirtualAddress, data);
    expect(sameBytes(open.device.read(LogicalAddress, LENGTH).bytes, data)).toBe(true);
    const reply = pattern(100, 3);
    open.device.write(LogicalAddress + 5000, reply);
    expect(sameBytes(rig.read(VirtualAddress + 5000, 100), reply)).toBe(true);
    open.ops.FreeCommonBuffer(open.adapter, LENGTH, LogicalAddress, VirtualAddress, false);
    expect(cpu.uncachedPages).toBe(0);
  });

  it("AllocateCommonBufferWithBounds(MmNonCached) is uncached until it is freed", () => {
    const rig = new HalRig({ remapping: mode, coherent: false });
    const cpu = rig.machine.get(CpuMemory);
    const open = rig.open({ Version: 3, DmaAddressWidth: 64 });
    const { VirtualAddress, LogicalAddress } = open.ops.AllocateCommonBufferWithBounds(
      open.adapter,
      undefined,
      undefined,
      PAGE_SIZE,
      0,
      MmNonCached,
      MM_ANY_NODE_OK,
    );
    const data = pattern(PAGE_SIZE, 4);
    rig.write(VirtualAddress, data);
    expect(sameBytes(open.device.read(LogicalAddress, PAGE_SIZE).bytes, data)).toBe(true);
    expect(cpu.uncachedPages).toBe(1);
    open.ops.FreeCommonBuffer(open.adapter, PAGE_SIZE, LogicalAddress, VirtualAddress, false);
    expect(cpu.uncachedPages).toBe(0);
  });
});

describe("common buffer caching on a coherent machine", () => {
  it("ignores CacheEnabled: nothing is marked uncached, and nothing needs a flush", () => {
    const rig = new HalRig();
    const open = rig.open();
    const { VirtualAddress, LogicalAddress } = open.ops.AllocateCommonBuffer(open.adapter, LENGTH, false);
    expect(rig.machine.get(CpuMemory).uncachedPages).toBe(0);
    const data = pattern(LENGTH, 5);
    rig.write(VirtualAddress, data);
    expect(sameBytes(open.device.read(LogicalAddress, LENGTH).bytes, data)).toBe(true);
  });
});
