import { describe, expect, it } from "vitest";
import { MEMORY_MANAGEMENT, MmRule } from "../../src/ddi/bug-check-codes.js";
import { KAPC_STATE } from "../../src/ddi/kapc-state.js";
import {
  IoModifyAccess,
  IoWriteAccess,
  KernelMode,
  NormalPagePriority,
  UserMode,
} from "../../src/ddi/mm-constants.js";
import { NonPagedPool } from "../../src/ddi/pool-type.js";
import { IRP_MJ_READ } from "../../src/hal/wdm/device-object.js";
import { STATUS_ACCESS_VIOLATION, STATUS_SUCCESS } from "../../src/hal/wdm/ntstatus.js";
import { PAGE_SIZE } from "../../src/platform/page.js";
import { ProcessManager } from "../../src/platform/process-manager.js";
import { bugCheckOf, ddiFixture } from "./ddi-fixture.js";

describe("MDL routines through the DDI", () => {
  it("describe a nonpaged buffer: address, count, offset, system address and frames", () => {
    const { kernel } = ddiFixture();
    const va = kernel.ExAllocatePoolWithTag(NonPagedPool, 3 * PAGE_SIZE, "MdlT");
    const mdl = kernel.IoAllocateMdl(va + 100, 2 * PAGE_SIZE, false, false, undefined)!;
    expect(kernel.MmGetMdlVirtualAddress(mdl)).toBe(va + 100);
    expect(kernel.MmGetMdlByteCount(mdl)).toBe(2 * PAGE_SIZE);
    expect(kernel.MmGetMdlByteOffset(mdl)).toBe(100);
    kernel.MmBuildMdlForNonPagedPool(mdl);
    expect(kernel.MmGetSystemAddressForMdlSafe(mdl, NormalPagePriority)).toBe(va + 100);
    expect(mdl.pfns).toHaveLength(3);
    for (let page = 0; page < 3; page++) {
      expect(kernel.MmGetPhysicalAddress(va + page * PAGE_SIZE + 7)).toBe(mdl.pfns[page]! * PAGE_SIZE + 7);
    }
    kernel.IoFreeMdl(mdl);
    expect(bugCheckOf(() => kernel.MmGetMdlByteCount(mdl)).parameters[0]).toBe(MmRule.freeTwice);
    expect(bugCheckOf(() => kernel.IoFreeMdl(mdl)).code).toBe(MEMORY_MANAGEMENT);
  });

  it("attach an IRP's MDL and chain a secondary buffer behind it", () => {
    const { kernel, io } = ddiFixture();
    const va = kernel.ExAllocatePoolWithTag(NonPagedPool, 2 * PAGE_SIZE, "MdlT");
    const irp = io.createIrp(IRP_MJ_READ);
    const first = kernel.IoAllocateMdl(va, 100, false, false, irp)!;
    const second = kernel.IoAllocateMdl(va + PAGE_SIZE, 200, true, false, irp)!;
    expect(irp.MdlAddress).toBe(first);
    expect(first.next).toBe(second);
  });

  it("lock a user buffer, map it into system space, and unlock it", () => {
    const { kernel, machine } = ddiFixture();
    const process = machine.get(ProcessManager).create("app");
    const userVa = process.allocate(2 * PAGE_SIZE);
    const apc = new KAPC_STATE();
    kernel.KeStackAttachProcess(process, apc);
    const mdl = kernel.IoAllocateMdl(userVa + 10, PAGE_SIZE, false, false, undefined)!;
    expect(kernel.MmProbeAndLockPages(mdl, UserMode, IoWriteAccess)).toBe(STATUS_SUCCESS);
    expect(process.pinnedBytes).toBe(2 * PAGE_SIZE);
    expect(kernel.MmGetPhysicalAddress(userVa + 10)).toBe(process.translate(userVa + 10));
    const system = kernel.MmGetSystemAddressForMdlSafe(mdl, NormalPagePriority);
    expect(system).toBeGreaterThan(0);
    kernel.WriteMemory(system, Uint8Array.of(1, 2, 3));
    expect(kernel.ReadMemory(userVa + 10, 3)).toEqual(Uint8Array.of(1, 2, 3));
    const back = new Uint8Array(3);
    process.read(userVa + 10, back);
    expect(back).toEqual(Uint8Array.of(1, 2, 3));
    kernel.MmUnlockPages(mdl);
    expect(process.pinnedBytes).toBe(0);
    kernel.IoFreeMdl(mdl);
    kernel.KeUnstackDetachProcess(apc);
    expect(kernel.IoAllocateMdl(userVa, 16, false, false, undefined)).toBeUndefined();
  });

  it("probing a hole returns STATUS_ACCESS_VIOLATION and locks nothing", () => {
    const { kernel, machine } = ddiFixture();
    const process = machine.get(ProcessManager).create("app");
    const userVa = process.allocate(PAGE_SIZE);
    const apc = new KAPC_STATE();
    kernel.KeStackAttachProcess(process, apc);
    const mdl = kernel.IoAllocateMdl(userVa, 2 * PAGE_SIZE, false, false, undefined)!;
    expect(kernel.MmProbeAndLockPages(mdl, UserMode, IoModifyAccess)).toBe(STATUS_ACCESS_VIOLATION);
    expect(mdl.locked).toBe(false);
    expect(process.pinnedBytes).toBe(0);
    kernel.KeUnstackDetachProcess(apc);
    const kernelVa = kernel.ExAllocatePoolWithTag(NonPagedPool, 64, "MdlT");
    const kernelMdl = kernel.IoAllocateMdl(kernelVa, 64, false, false, undefined)!;
    expect(kernel.MmProbeAndLockPages(kernelMdl, UserMode, IoWriteAccess)).toBe(STATUS_ACCESS_VIOLATION);
    expect(kernel.MmProbeAndLockPages(kernelMdl, KernelMode, IoWriteAccess)).toBe(STATUS_SUCCESS);
  });

  it("unlocking twice, freeing locked pages and mapping an unlocked MDL are bug checks", () => {
    const { kernel } = ddiFixture();
    const va = kernel.ExAllocatePoolWithTag(NonPagedPool, 64, "MdlT");
    const mdl = kernel.IoAllocateMdl(va, 64, false, false, undefined)!;
    expect(bugCheckOf(() => kernel.MmGetSystemAddressForMdlSafe(mdl, NormalPagePriority)).parameters[0]).toBe(
      MmRule.notResident,
    );
    kernel.MmProbeAndLockPages(mdl, KernelMode, IoWriteAccess);
    expect(bugCheckOf(() => kernel.MmProbeAndLockPages(mdl, KernelMode, IoWriteAccess)).parameters[0]).toBe(
      MmRule.alreadyResident,
    );
    expect(bugCheckOf(() => kernel.IoFreeMdl(mdl)).parameters[0]).toBe(MmRule.freeLocked);
    kernel.MmUnlockPages(mdl);
    const twice = bugCheckOf(() => kernel.MmUnlockPages(mdl));
    expect(twice.code).toBe(MEMORY_MANAGEMENT);
    expect(twice.parameters).toEqual([MmRule.unlockNotLocked, mdl.id, 0, 0]);
    expect(twice.message).toContain("MEMORY_MANAGEMENT");
  });

  it("KeFlushIoBuffers writes dirty lines back before the device reads, and drops stale ones before it writes", () => {
    const { kernel, machine } = ddiFixture({ coherent: false });
    const va = kernel.ExAllocatePoolWithTag(NonPagedPool, PAGE_SIZE, "Fl");
    const mdl = kernel.IoAllocateMdl(va, 256, false, false, undefined)!;
    kernel.MmBuildMdlForNonPagedPool(mdl);
    const pa = kernel.MmGetPhysicalAddress(va);
    const inMemory = (): Uint8Array => {
      const out = new Uint8Array(4);
      machine.memory.read(pa, out);
      return out;
    };
    kernel.WriteMemory(va, Uint8Array.of(9, 9, 9, 9));
    expect(inMemory()).not.toEqual(Uint8Array.of(9, 9, 9, 9));
    kernel.KeFlushIoBuffers(mdl, false, true);
    expect(inMemory()).toEqual(Uint8Array.of(9, 9, 9, 9));

    machine.memory.write(pa, Uint8Array.of(7, 7, 7, 7));
    expect(kernel.ReadMemory(va, 4)).toEqual(Uint8Array.of(9, 9, 9, 9));
    kernel.KeFlushIoBuffers(mdl, true, true);
    expect(kernel.ReadMemory(va, 4)).toEqual(Uint8Array.of(7, 7, 7, 7));
  });

  it("KeFlushIoBuffers costs nothing visible on a coherent machine", () => {
    const { kernel, machine } = ddiFixture();
    const va = kernel.ExAllocatePoolWithTag(NonPagedPool, 64, "Fl");
    const mdl = kernel.IoAllocateMdl(va, 64, false, false, undefined)!;
    kernel.MmBuildMdlForNonPagedPool(mdl);
    kernel.WriteMemory(va, Uint8Array.of(5));
    const out = new Uint8Array(1);
    machine.memory.read(kernel.MmGetPhysicalAddress(va), out);
    expect(out[0]).toBe(5);
    kernel.KeFlushIoBuffers(mdl, false, true);
    expect(machine.counters.get("ddi.KeFlushIoBuffers")).toBe(1);
  });
});
