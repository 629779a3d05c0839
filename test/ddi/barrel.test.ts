import { describe, expect, it } from "vitest";
import { CpuAccess } from "../../src/ddi/cpu-access.js";
import { DriverRegistry } from "../../src/ddi/driver-registry.js";
import * as ddi from "../../src/ddi/index.js";
import { IoManager } from "../../src/ddi/io-manager.js";
import { IoSpace } from "../../src/ddi/io-space.js";
import { PoolAllocator } from "../../src/ddi/pool-allocator.js";
import * as bugCheck from "../../src/hal/wdm/bug-check.js";
import * as deviceDescription from "../../src/hal/wdm/device-description.js";
import * as deviceObject from "../../src/hal/wdm/device-object.js";
import * as dmaOperations from "../../src/hal/wdm/dma-operations.js";
import * as dmaV3Types from "../../src/hal/wdm/dma-v3-types.js";
import * as ioAllocationAction from "../../src/hal/wdm/io-allocation-action.js";
import * as irql from "../../src/hal/wdm/irql.js";
import * as ntstatus from "../../src/hal/wdm/ntstatus.js";
import * as scatterGatherList from "../../src/hal/wdm/scatter-gather-list.js";
import { Machine } from "../../src/machine/machine.js";
import { TinyDriver } from "./drivers/tiny-driver.js";
import tinyDriverModule from "./drivers/tiny-driver-module.js";

const WDM_MODULES: Record<string, Record<string, unknown>> = {
  bugCheck,
  deviceDescription,
  deviceObject,
  dmaOperations,
  dmaV3Types,
  ioAllocationAction,
  irql,
  ntstatus,
  scatterGatherList,
};

describe("the DDI barrel", () => {
  it("re-exports every value of src/hal/wdm, unchanged", () => {
    for (const [name, module] of Object.entries(WDM_MODULES)) {
      expect(Object.keys(module).length, name).toBeGreaterThan(0);
      for (const [key, value] of Object.entries(module)) {
        expect(ddi, `${name}.ts exports ${key}`).toHaveProperty(key);
        expect((ddi as Record<string, unknown>)[key], `${name}.ts exports ${key}`).toBe(value);
      }
    }
  });

  it("exports what a driver needs: the Kernel, the contribution token, DI, objects and constants", () => {
    const needed = [
      "Kernel",
      "DriverContribution",
      "injectable",
      "inject",
      "ContainerModule",
      "KDPC",
      "KSPIN_LOCK",
      "KAPC_STATE",
      "KINTERRUPT",
      "NT_SUCCESS",
      "STATUS_SUCCESS",
      "STATUS_PENDING",
      "STATUS_INSUFFICIENT_RESOURCES",
      "BugCheck",
      "zeroedDeviceDescription",
      "DEVICE_DESCRIPTION_VERSION3",
      "PCIBus",
      "PASSIVE_LEVEL",
      "DISPATCH_LEVEL",
      "KeepObject",
      "DeallocateObject",
      "DeallocateObjectKeepRegisters",
      "SCATTER_GATHER_ELEMENT_SIZE",
      "DMA_OPERATIONS_SIZE_V3",
      "DMA_TRANSFER_CONTEXT",
      "DMA_SYNCHRONOUS_CALLBACK",
      "IRP_MJ_READ",
      "IRP_MN_START_DEVICE",
      "IRP_MN_SURPRISE_REMOVAL",
      "DO_DEVICE_INITIALIZING",
      "IO_NO_INCREMENT",
      "NonPagedPool",
      "POOL_FLAG_NON_PAGED",
      "IoWriteAccess",
      "KernelMode",
      "NormalPagePriority",
      "PAGE_SIZE",
      "BYTES_TO_PAGES",
      "ADDRESS_AND_SIZE_TO_SPAN_PAGES",
      "LevelSensitive",
      "MULTIPLE_IRP_COMPLETE_REQUESTS",
      "STATUS_ACCESS_VIOLATION",
    ];
    for (const name of needed) expect(ddi, name).toHaveProperty(name);
    expect(ddi.ADDRESS_AND_SIZE_TO_SPAN_PAGES(0xfff, 2)).toBe(2);
    expect(ddi.BYTES_TO_PAGES(4097)).toBe(2);
    expect(ddi.PAGE_ALIGN(0x12345)).toBe(0x12000);
    expect(ddi.BYTE_OFFSET(0x12345)).toBe(0x345);
    expect(ddi.ROUND_TO_PAGES(1)).toBe(4096);
  });

  it("keeps the host side out: no IoManager, no platform classes", () => {
    for (const name of [
      "IoManager",
      "DriverRegistry",
      "IoSpace",
      "PciBus",
      "Scheduler",
      "Machine",
      "PlatformError",
    ]) {
      expect(ddi).not.toHaveProperty(name);
    }
  });

  it("a driver package's module loads into a machine, and every DDI binding resolves", () => {
    const machine = new Machine({}, [tinyDriverModule]);
    for (const id of [ddi.Kernel, IoManager, IoSpace, PoolAllocator, CpuAccess, DriverRegistry, TinyDriver]) {
      expect(machine.get(id as never)).toBeDefined();
    }
    expect(machine.container.getAll(ddi.DriverContribution)).toEqual([machine.get(TinyDriver)]);
    expect(machine.get(DriverRegistry).drivers).toEqual([machine.get(TinyDriver)]);
    expect(new Machine().get(DriverRegistry).drivers).toEqual([]);
  });
});
