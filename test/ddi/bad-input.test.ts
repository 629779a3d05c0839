import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  BAD_POOL_CALLER,
  BadPoolCaller,
  DRIVER_VERIFIER_IOMANAGER_VIOLATION,
  IoRule,
  KMODE_EXCEPTION_NOT_HANDLED,
  MEMORY_MANAGEMENT,
  MmRule,
  MULTIPLE_IRP_COMPLETE_REQUESTS,
  PAGE_FAULT_IN_NONPAGED_AREA,
} from "../../src/ddi/bug-check-codes.js";
import { FILE_DEVICE_UNKNOWN, IO_NO_INCREMENT, LevelSensitive } from "../../src/ddi/io-constants.js";
import { KDPC } from "../../src/ddi/kdpc.js";
import type { Kernel } from "../../src/ddi/kernel.js";
import { NonPagedPool, POOL_FLAG_NON_PAGED, POOL_FLAG_PAGED } from "../../src/ddi/pool-type.js";
import { BugCheck } from "../../src/hal/wdm/bug-check.js";
import { zeroedDeviceDescription } from "../../src/hal/wdm/device-description.js";
import { IRP_MJ_READ } from "../../src/hal/wdm/device-object.js";
import { MmCached, MmNonCached } from "../../src/hal/wdm/dma-v3-types.js";
import {
  STATUS_INVALID_PARAMETER,
  STATUS_OBJECT_NAME_COLLISION,
  STATUS_OBJECT_NAME_INVALID,
  STATUS_SUCCESS,
} from "../../src/hal/wdm/ntstatus.js";
import { GiB, MiB, PAGE_SIZE } from "../../src/platform/page.js";
import { bugCheckOf, ddiFixture, poolBuffer } from "./ddi-fixture.js";

function started() {
  const fixture = ddiFixture();
  fixture.io.enumerate();
  const [loaded] = fixture.io.loadDrivers();
  const node = fixture.io.node(fixture.device.requesterId);
  return { ...fixture, node, driverObject: loaded!.driverObject! };
}

describe("bad input at the DDI", () => {
  it("IoCreateDevice: a taken name and a malformed one are statuses", () => {
    const { kernel, driverObject } = started();
    expect(kernel.IoCreateDevice(driverObject, 0, "\\Device\\Tiny0", FILE_DEVICE_UNKNOWN, 0, false)).toEqual({
      Status: STATUS_OBJECT_NAME_COLLISION,
      DeviceObject: undefined,
    });
    expect(kernel.IoCreateDevice(driverObject, 0, "Tiny", FILE_DEVICE_UNKNOWN, 0, false).Status).toBe(
      STATUS_OBJECT_NAME_INVALID,
    );
    expect(kernel.IoCreateDevice(driverObject, -1, undefined, FILE_DEVICE_UNKNOWN, 0, false).Status).toBe(
      STATUS_INVALID_PARAMETER,
    );
    const unnamed = kernel.IoCreateDevice(driverObject, 16, undefined, FILE_DEVICE_UNKNOWN, 0, false);
    expect(unnamed.Status).toBe(STATUS_SUCCESS);
    kernel.IoDeleteDevice(unnamed.DeviceObject!);
    const twice = bugCheckOf(() => kernel.IoDeleteDevice(unnamed.DeviceObject!));
    expect(twice.code).toBe(DRIVER_VERIFIER_IOMANAGER_VIOLATION);
    expect(twice.parameters[0]).toBe(IoRule.deleteTwice);
  });

  it("deleting a device still attached, or the bus driver's PDO, is a bug check", () => {
    const { kernel, node } = started();
    expect(bugCheckOf(() => kernel.IoDeleteDevice(node.fdo!)).parameters[0]).toBe(IoRule.deleteAttached);
    expect(bugCheckOf(() => kernel.IoDeleteDevice(node.pdo)).parameters[0]).toBe(IoRule.deleteBusDevice);
    expect(node.pdo.AttachedDevice).toBe(node.fdo);
  });

  it("IoGetDmaAdapter refuses an FDO, a deleted device and a malformed description with NULL", () => {
    const { kernel, node } = started();
    const description = zeroedDeviceDescription();
    description.Master = true;
    description.ScatterGather = true;
    description.Dma64BitAddresses = true;
    description.MaximumLength = 4096;
    expect(kernel.IoGetDmaAdapter(node.fdo!, description)).toEqual({
      Adapter: undefined,
      NumberOfMapRegisters: 0,
    });
    expect(kernel.IoGetDmaAdapter(node.pdo, { ...description, Version: 9 }).Adapter).toBeUndefined();
    expect(kernel.IoGetDmaAdapter(node.pdo, undefined as never).Adapter).toBeUndefined();
    const { Adapter } = kernel.IoGetDmaAdapter(node.pdo, description);
    expect(Adapter?.Version).toBe(1);
  });

  it("IoConnectInterrupt: bad vector, level, mask, or an unshared line in use are STATUS_INVALID_PARAMETER", () => {
    const { kernel } = ddiFixture({}, false);
    const connect = (vector: number, irql: number, share: boolean, mask = 1) =>
      kernel.IoConnectInterrupt(
        () => true,
        undefined,
        undefined,
        vector,
        irql,
        irql,
        LevelSensitive,
        share,
        mask,
        false,
      );
    expect(connect(256, 5, false).Status).toBe(STATUS_INVALID_PARAMETER);
    expect(connect(30, 2, false).Status).toBe(STATUS_INVALID_PARAMETER);
    expect(connect(30, 5, false, 0).Status).toBe(STATUS_INVALID_PARAMETER);
    const first = connect(30, 5, false);
    expect(first.Status).toBe(STATUS_SUCCESS);
    expect(connect(30, 5, true).Status).toBe(STATUS_INVALID_PARAMETER);
    expect(connect(31, 5, true).Status).toBe(STATUS_SUCCESS);
    expect(connect(31, 5, true).Status).toBe(STATUS_SUCCESS);
    kernel.IoDisconnectInterrupt(first.InterruptObject!);
    const again = bugCheckOf(() => kernel.IoDisconnectInterrupt(first.InterruptObject!));
    expect(again.parameters[0]).toBe(IoRule.disconnectUnknown);
  });

  it("completing an IRP twice is MULTIPLE_IRP_COMPLETE_REQUESTS", () => {
    const { kernel, io } = ddiFixture();
    const irp = io.createIrp(IRP_MJ_READ);
    kernel.IoCompleteRequest(irp, IO_NO_INCREMENT);
    const check = bugCheckOf(() => kernel.IoCompleteRequest(irp, IO_NO_INCREMENT));
    expect(check.code).toBe(MULTIPLE_IRP_COMPLETE_REQUESTS);
    expect(check.parameters[0]).toBe(irp.id);
  });

  it("pool: zero bytes and bad types give NULL; a zero tag, a double free and a wrong tag are BAD_POOL_CALLER", () => {
    const { kernel } = ddiFixture();
    expect(kernel.ExAllocatePoolWithTag(NonPagedPool, 0, "Tag")).toBe(0);
    expect(kernel.ExAllocatePoolWithTag(77 as never, 16, "Tag")).toBe(0);
    expect(kernel.ExAllocatePoolWithTag(NonPagedPool, 16, "TooLong")).toBe(0);
    expect(kernel.ExAllocatePool2(POOL_FLAG_NON_PAGED | POOL_FLAG_PAGED, 16, "Tag")).toBe(0);
    const zeroTag = bugCheckOf(() => kernel.ExAllocatePool2(POOL_FLAG_NON_PAGED, 16, 0));
    expect([zeroTag.code, zeroTag.parameters[0]]).toEqual([BAD_POOL_CALLER, BadPoolCaller.zeroTag]);

    const zeroed = kernel.ExAllocatePool2(POOL_FLAG_NON_PAGED, 3 * PAGE_SIZE, 0x74736554);
    expect(kernel.ReadMemory(zeroed, 3 * PAGE_SIZE)).toEqual(new Uint8Array(3 * PAGE_SIZE));
    const wrongTag = bugCheckOf(() => kernel.ExFreePoolWithTag(zeroed, "Nope"));
    expect(wrongTag.parameters[0]).toBe(BadPoolCaller.wrongTag);
    kernel.ExFreePoolWithTag(zeroed, "Test");
    const twice = bugCheckOf(() => kernel.ExFreePoolWithTag(zeroed, "Test"));
    expect([twice.code, twice.parameters[0], twice.parameters[1]]).toEqual([
      BAD_POOL_CALLER,
      BadPoolCaller.freedTwice,
      zeroed,
    ]);

    const small = kernel.ExAllocatePoolWithTag(NonPagedPool, 40, "Smal");
    expect(bugCheckOf(() => kernel.ExFreePool(small + 8)).parameters[0]).toBe(BadPoolCaller.invalidAddress);
    expect(bugCheckOf(() => kernel.ExFreePool(0)).parameters[0]).toBe(BadPoolCaller.invalidAddress);
    kernel.ExFreePool(small);
  });

  it("contiguous memory honours its bounds, and only it can be freed as such", () => {
    const { kernel } = ddiFixture();
    const va = kernel.MmAllocateContiguousMemorySpecifyCache(5 * PAGE_SIZE, 16 * MiB, GiB - 1, 0, MmCached);
    expect(va).toBeGreaterThan(0);
    const pa = kernel.MmGetPhysicalAddress(va);
    expect(pa).toBeGreaterThanOrEqual(16 * MiB);
    expect(pa + 5 * PAGE_SIZE - 1).toBeLessThanOrEqual(GiB - 1);
    for (let page = 1; page < 5; page++)
      expect(kernel.MmGetPhysicalAddress(va + page * PAGE_SIZE)).toBe(pa + page * PAGE_SIZE);
    const bounded = kernel.MmAllocateContiguousMemorySpecifyCache(
      PAGE_SIZE * 3,
      0,
      4 * GiB - 1,
      4 * PAGE_SIZE,
      MmNonCached,
    );
    const start = kernel.MmGetPhysicalAddress(bounded);
    expect(Math.floor(start / (4 * PAGE_SIZE))).toBe(
      Math.floor((start + 3 * PAGE_SIZE - 1) / (4 * PAGE_SIZE)),
    );
    expect(kernel.MmAllocateContiguousMemorySpecifyCache(PAGE_SIZE, 0, GiB, 3 * PAGE_SIZE, MmCached)).toBe(0);
    expect(kernel.MmAllocateContiguousMemory(PAGE_SIZE, 4096)).toBe(0);
    const pool = kernel.ExAllocatePoolWithTag(NonPagedPool, PAGE_SIZE, "Pool");
    expect(bugCheckOf(() => kernel.MmFreeContiguousMemory(pool)).parameters[0]).toBe(
      MmRule.notContiguousMemory,
    );
    expect(bugCheckOf(() => kernel.ExFreePool(va)).parameters[0]).toBe(BadPoolCaller.invalidAddress);
    kernel.MmFreeContiguousMemory(va);
    expect(bugCheckOf(() => kernel.MmFreeContiguousMemory(va)).code).toBe(MEMORY_MANAGEMENT);
  });

  it("touching unmapped memory or registers is PAGE_FAULT_IN_NONPAGED_AREA", () => {
    const { kernel } = started();
    const va = kernel.ExAllocatePoolWithTag(NonPagedPool, PAGE_SIZE, "Page");
    const overrun = bugCheckOf(() => kernel.ReadMemory(va, PAGE_SIZE + 1));
    expect(overrun.code).toBe(PAGE_FAULT_IN_NONPAGED_AREA);
    expect(overrun.parameters[0]).toBe(va);
    expect(bugCheckOf(() => kernel.WriteMemory(0x1000, Uint8Array.of(1))).parameters[1]).toBe(1);
    expect(bugCheckOf(() => kernel.READ_REGISTER_ULONG(va)).code).toBe(PAGE_FAULT_IN_NONPAGED_AREA);
    expect(kernel.MmMapIoSpace(kernel.MmGetPhysicalAddress(va), 4, MmNonCached)).toBe(0);
    expect(bugCheckOf(() => kernel.MmUnmapIoSpace(va, 4)).parameters[0]).toBe(MmRule.notIoSpace);
  });

  it("registers of an unplugged device read as all ones", () => {
    const { kernel, machine, device } = started();
    const registers = kernel.MmMapIoSpace(device.barAddress, 16, MmNonCached);
    expect(kernel.READ_REGISTER_ULONG(registers)).toBe(0x7e57d0d0);
    machine.pci.detach(device.requesterId);
    expect(kernel.READ_REGISTER_ULONG(registers)).toBe(0xffffffff);
    kernel.WRITE_REGISTER_ULONG(registers + 4, 1);
    expect(machine.counters.get("ddi.mmio.master-abort")).toBe(2);
  });

  it("the wrong kind of object where a pointer belongs is KMODE_EXCEPTION_NOT_HANDLED", () => {
    const { kernel, io } = ddiFixture();
    const { mdl } = poolBuffer(kernel, 16);
    expect(bugCheckOf(() => kernel.KeInsertQueueDpc(mdl as unknown as KDPC, 0, 0)).code).toBe(
      KMODE_EXCEPTION_NOT_HANDLED,
    );
    expect(bugCheckOf(() => kernel.IoCompleteRequest({} as never, 0)).code).toBe(KMODE_EXCEPTION_NOT_HANDLED);
    expect(bugCheckOf(() => kernel.MmGetMdlByteCount(io.createIrp(IRP_MJ_READ) as never)).code).toBe(
      KMODE_EXCEPTION_NOT_HANDLED,
    );
  });

  it("whatever a driver passes, a routine returns or bug-checks: nothing else escapes", () => {
    const fixture = started();
    const { kernel, io, node } = fixture;
    const { va, mdl } = poolBuffer(kernel, 64);
    const dpc = new KDPC();
    const valid = [
      va,
      mdl,
      node.fdo!,
      node.pdo,
      io.createIrp(IRP_MJ_READ),
      dpc,
      fixture.driverObject,
      () => true,
      4096,
      5,
    ];
    const value = fc.oneof(
      fc.constantFrom(...valid),
      fc.integer({ min: -2, max: 2 ** 20 }),
      fc.double(),
      fc.string({ maxLength: 6 }),
      fc.boolean(),
      fc.constantFrom(undefined, null, {}, [], Number.NaN, 2 ** 53, -0),
    );
    const routines: [keyof Kernel, number][] = [
      ["IoGetDmaAdapter", 2],
      ["IoAllocateMdl", 5],
      ["IoFreeMdl", 1],
      ["MmBuildMdlForNonPagedPool", 1],
      ["MmProbeAndLockPages", 3],
      ["MmUnlockPages", 1],
      ["MmGetMdlVirtualAddress", 1],
      ["MmGetSystemAddressForMdlSafe", 2],
      ["MmGetPhysicalAddress", 1],
      ["ExAllocatePoolWithTag", 3],
      ["ExAllocatePool2", 3],
      ["ExFreePoolWithTag", 2],
      ["MmAllocateContiguousMemorySpecifyCache", 5],
      ["MmFreeContiguousMemory", 1],
      ["KeInitializeDpc", 3],
      ["KeInsertQueueDpc", 3],
      ["IoConnectInterrupt", 10],
      ["IoDisconnectInterrupt", 1],
      ["MmMapIoSpace", 3],
      ["MmUnmapIoSpace", 2],
      ["READ_REGISTER_ULONG", 1],
      ["WRITE_REGISTER_ULONG", 2],
      ["IoCreateDevice", 6],
      ["IoAttachDeviceToDeviceStack", 2],
      ["IoCompleteRequest", 2],
      ["IoGetCurrentIrpStackLocation", 1],
      ["IoMarkIrpPending", 1],
      ["KeFlushIoBuffers", 3],
      ["ReadMemory", 2],
      ["WriteMemory", 2],
      ["RtlZeroMemory", 2],
      ["KeStackAttachProcess", 2],
      ["KeUnstackDetachProcess", 1],
      ["KeSynchronizeExecution", 3],
      ["KeInitializeSpinLock", 1],
    ];
    fc.assert(
      fc.property(
        fc.constantFrom(...routines),
        fc.array(value, { minLength: 10, maxLength: 10 }),
        ([name, arity], args) => {
          const routine = kernel[name] as (...a: unknown[]) => unknown;
          try {
            routine.apply(kernel, args.slice(0, arity));
            fixture.machine.scheduler.runUntilIdle();
          } catch (error) {
            if (!(error instanceof BugCheck)) throw error;
          }
        },
      ),
      { numRuns: 400, seed: 7 },
    );
    expect(kernel.KeGetCurrentIrql()).toBe(0);
  });
});
