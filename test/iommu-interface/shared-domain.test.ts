import { describe, expect, it } from "vitest";
import { Kernel } from "../../src/ddi/kernel.js";
import { BugCheck, IRQL_NOT_LESS_OR_EQUAL } from "../../src/hal/wdm/bug-check.js";
import {
  DMA_IOMMU_INTERFACE_EX_SIZE_V2,
  DomainTypeTranslate,
  IommuDmaLogicalAllocatorBuddy,
  MapPhysicalAddressTypePfn,
} from "../../src/hal/wdm/iommu-interface.js";
import { DISPATCH_LEVEL } from "../../src/hal/wdm/irql.js";
import {
  STATUS_INVALID_PARAMETER_2,
  STATUS_NOT_SUPPORTED,
  STATUS_SUCCESS,
} from "../../src/hal/wdm/ntstatus.js";
import { Machine } from "../../src/machine/machine.js";
import { PAGE_SIZE } from "../../src/platform/page.js";
import { deviceOnlyFrames, interfaceFixture, tableFrames } from "./interface-fixture.js";

const BUDDY_39 = {
  LogicalAllocatorType: IommuDmaLogicalAllocatorBuddy,
  BuddyAllocatorConfig: { AddressWidth: 39 },
};

function pattern(length: number, seed: number): Uint8Array {
  return Uint8Array.from({ length }, (_, i) => (i * 31 + seed) % 251);
}

describe("IoGetIommuInterface(Ex)", () => {
  it("hands out the V1 and V2 tables when remapping is on", () => {
    const { kernel } = interfaceFixture();
    const ex = kernel.IoGetIommuInterfaceEx(2, 0);
    expect(ex.Status).toBe(STATUS_SUCCESS);
    expect(ex.InterfaceOut?.Size).toBe(DMA_IOMMU_INTERFACE_EX_SIZE_V2);
    const old = kernel.IoGetIommuInterface(1);
    expect(old.Status).toBe(STATUS_SUCCESS);
    expect(old.InterfaceOut?.Version).toBe(1);
    expect(typeof old.InterfaceOut?.MapLogicalRange).toBe("function");
  });

  it("refuses unknown versions, nonzero flags and machines without remapping", () => {
    const { kernel } = interfaceFixture();
    expect(kernel.IoGetIommuInterfaceEx(3, 0).Status).toBe(STATUS_NOT_SUPPORTED);
    expect(kernel.IoGetIommuInterfaceEx(2, 1).Status).toBe(STATUS_INVALID_PARAMETER_2);
    expect(kernel.IoGetIommuInterface(2).Status).toBe(STATUS_NOT_SUPPORTED);
    const off = new Machine({ remapping: "off" }, []);
    expect(off.get(Kernel).IoGetIommuInterfaceEx(2, 0).Status).toBe(STATUS_NOT_SUPPORTED);
  });

  it("is a PASSIVE_LEVEL routine", () => {
    const { kernel, machine } = interfaceFixture();
    const error = machine.scheduler.runAtIrql(DISPATCH_LEVEL, () => {
      try {
        kernel.IoGetIommuInterfaceEx(2, 0);
      } catch (caught) {
        return caught;
      }
      return undefined;
    });
    expect(error).toBeInstanceOf(BugCheck);
    expect((error as BugCheck).code).toBe(IRQL_NOT_LESS_OR_EQUAL);
  });
});

describe("one domain page table shared by devices behind different remapping units", () => {
  it("points both context entries at the same table, each unit with its own domain id", () => {
    const f = interfaceFixture();
    const { DomainOut: domain } = f.v2.CreateDomainEx(DomainTypeTranslate, 0, BUDDY_39, undefined);
    const a = f.v2.CreateDevice(f.producerPdo, undefined).DmaDeviceOut!;
    const b = f.v2.CreateDevice(f.consumerPdo, undefined).DmaDeviceOut!;
    expect(f.v2.AttachDeviceEx(domain!, a)).toBe(STATUS_SUCCESS);
    expect(f.v2.AttachDeviceEx(domain!, b)).toBe(STATUS_SUCCESS);
    const [dmar0, dmar1] = f.machine.iommu.units;
    const consumerEntry = dmar0!.readContextEntry(f.consumer.requesterId);
    const producerEntry = dmar1!.readContextEntry(f.producer.requesterId);
    expect(consumerEntry.pageTableAddress).toBe(producerEntry.pageTableAddress);
    expect(consumerEntry.pageTableAddress).toBe(f.hal.hardwareDomain(domain!)!.pageTable.rootAddress);
    expect(f.hal.hardwareDomain(domain!)!.domainId(0)).toBe(consumerEntry.domainId);
    expect(f.hal.hardwareDomain(domain!)!.domainId(1)).toBe(producerEntry.domainId);
  });

  it("moves data device to device through memory the CPU never mapped, and unmaps it on both units", () => {
    const f = interfaceFixture();
    const { DomainOut: domain } = f.v2.CreateDomainEx(DomainTypeTranslate, 0, BUDDY_39, undefined);
    for (const pdo of [f.producerPdo, f.consumerPdo]) {
      expect(f.v2.AttachDeviceEx(domain!, f.v2.CreateDevice(pdo, undefined).DmaDeviceOut!)).toBe(
        STATUS_SUCCESS,
      );
    }
    const frames = deviceOnlyFrames(f.machine, 8);
    const mapped = f.v2.MapLogicalRangeEx(
      domain!,
      3,
      { MapType: MapPhysicalAddressTypePfn, PfnArray: { PageFrame: frames, NumberOfPages: 8 } },
      undefined,
      undefined,
      undefined,
    );
    expect(mapped.Status).toBe(STATUS_SUCCESS);
    const data = pattern(8 * PAGE_SIZE, 3);
    expect(f.producer.write(mapped.LogicalAddressOut, data).outcome).toBe("complete");
    const seen = f.consumer.read(mapped.LogicalAddressOut, data.length);
    expect(seen.outcome).toBe("complete");
    expect(Buffer.compare(seen.bytes, data)).toBe(0);
    const inRam = new Uint8Array(PAGE_SIZE);
    f.machine.memory.read(frames[5]! * PAGE_SIZE, inRam);
    expect(Buffer.compare(inRam, data.subarray(5 * PAGE_SIZE, 6 * PAGE_SIZE))).toBe(0);

    f.invalidations.length = 0;
    expect(f.v2.UnmapLogicalRange(domain!, mapped.LogicalAddressOut, 8)).toBe(STATUS_SUCCESS);
    const units = new Set(f.invalidations.filter((e) => e.kind === "iotlb-page").map((e) => e.unit));
    expect(units).toEqual(new Set(["dmar0", "dmar1"]));
    expect(f.producer.write(mapped.LogicalAddressOut, data.subarray(0, 8)).outcome).toBe("blocked");
    expect(f.consumer.read(mapped.LogicalAddressOut, 8).outcome).toBe("blocked");
  });

  it("keeps a device attached by the HAL out: it is already attached to a domain", () => {
    const f = interfaceFixture();
    f.machine.iommu.attachPassthrough(f.producer.requesterId);
    const { DomainOut: domain } = f.v2.CreateDomainEx(DomainTypeTranslate, 0, BUDDY_39, undefined);
    const device = f.v2.CreateDevice(f.producerPdo, undefined).DmaDeviceOut!;
    expect(f.v2.AttachDeviceEx(domain!, device)).not.toBe(STATUS_SUCCESS);
    expect(f.hal.ownsRequester(f.producer.requesterId)).toBe(false);
  });

  it("returns every domain, device and table frame when the driver cleans up", () => {
    const f = interfaceFixture();
    const { DomainOut: domain } = f.v2.CreateDomainEx(DomainTypeTranslate, 0, BUDDY_39, undefined);
    const device = f.v2.CreateDevice(f.consumerPdo, undefined).DmaDeviceOut!;
    f.v2.AttachDeviceEx(domain!, device);
    const frames = deviceOnlyFrames(f.machine, 2);
    const mapped = f.v2.MapLogicalRangeEx(
      domain!,
      1,
      { MapType: MapPhysicalAddressTypePfn, PfnArray: { PageFrame: frames, NumberOfPages: 2 } },
      undefined,
      undefined,
      undefined,
    );
    f.v2.UnmapLogicalRange(domain!, mapped.LogicalAddressOut, 2);
    expect(f.v2.DetachDeviceEx(device)).toBe(STATUS_SUCCESS);
    expect(f.v2.DeleteDevice(device)).toBe(STATUS_SUCCESS);
    const tables = f.hal.hardwareDomain(domain!)!.pageTable.tableCount;
    const before = tableFrames(f.machine);
    expect(f.v2.DeleteDomain(domain!)).toBe(STATUS_SUCCESS);
    expect(tableFrames(f.machine)).toBe(before - tables);
    expect(f.hal.resources()).toEqual({
      domains: 0,
      devices: 0,
      attachedDevices: 0,
      tokens: 0,
      mappedPages: 0,
      faultReporting: 0,
    });
  });
});
