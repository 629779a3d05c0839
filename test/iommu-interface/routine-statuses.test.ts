import { describe, expect, it } from "vitest";
import { NonPagedPool } from "../../src/ddi/pool-type.js";
import {
  DomainConfigurationArm64,
  DomainConfigurationX64,
  DomainTypePassThrough,
  DomainTypeTranslate,
  DomainTypeTranslateS1,
  DomainTypeUnmanaged,
  type INPUT_MAPPING_ELEMENT,
  IommuDmaLogicalAllocatorBuddy,
  MapPhysicalAddressTypeContiguousRange,
  MapPhysicalAddressTypePfn,
  STATUS_ACCESS_DENIED,
} from "../../src/hal/wdm/iommu-interface.js";
import {
  STATUS_BUFFER_TOO_SMALL,
  STATUS_INSUFFICIENT_RESOURCES,
  STATUS_INVALID_PARAMETER,
  STATUS_INVALID_PARAMETER_1,
  STATUS_INVALID_PARAMETER_2,
  STATUS_INVALID_PARAMETER_3,
  STATUS_INVALID_PARAMETER_4,
  STATUS_INVALID_PARAMETER_MIX,
  STATUS_NOT_IMPLEMENTED,
  STATUS_NOT_SUPPORTED,
  STATUS_RESOURCE_IN_USE,
  STATUS_SUCCESS,
} from "../../src/hal/wdm/ntstatus.js";
import { PAGE_SIZE } from "../../src/platform/page.js";
import { deviceOnlyFrames, type InterfaceFixture, interfaceFixture } from "./interface-fixture.js";

const buddy = (AddressWidth: number) => ({
  LogicalAllocatorType: IommuDmaLogicalAllocatorBuddy,
  BuddyAllocatorConfig: { AddressWidth },
});
const pfns = (PageFrame: number[]) => ({
  MapType: MapPhysicalAddressTypePfn,
  PfnArray: { PageFrame, NumberOfPages: PageFrame.length },
});
const range = (Base: number, Size: number) => ({
  MapType: MapPhysicalAddressTypeContiguousRange,
  ContiguousRange: { Base, Size },
});

function pageMdl(f: InterfaceFixture, bytes: number, offset = 0) {
  const va = f.kernel.ExAllocatePoolWithTag(NonPagedPool, bytes + PAGE_SIZE, "Test");
  const mdl = f.kernel.IoAllocateMdl(va + offset, bytes, false, false, undefined)!;
  f.kernel.MmBuildMdlForNonPagedPool(mdl);
  return mdl;
}

describe("V1: OS-managed and caller-managed domains", () => {
  it("maps an MDL at an explicit logical address and checks every argument", () => {
    const f = interfaceFixture();
    const { Status, DomainOut: domain } = f.v1.CreateDomain(true);
    expect(Status).toBe(STATUS_SUCCESS);
    expect(f.v1.AttachDevice(domain!, f.consumerPdo, 0, 1)).toBe(STATUS_SUCCESS);
    const mdl = pageMdl(f, 2 * PAGE_SIZE);
    expect(f.v1.MapLogicalRange(domain!, 0, mdl, 0x10000)).toBe(STATUS_INVALID_PARAMETER_2);
    expect(f.v1.MapLogicalRange(domain!, 3, pageMdl(f, 100, 8), 0x10000)).toBe(STATUS_INVALID_PARAMETER_3);
    expect(f.v1.MapLogicalRange(domain!, 3, mdl, 0x10010)).toBe(STATUS_INVALID_PARAMETER_4);
    expect(f.v1.MapLogicalRange(domain!, 1, mdl, 0x10000)).toBe(STATUS_SUCCESS);
    expect(f.v1.MapLogicalRange(domain!, 1, mdl, 0x11000)).toBe(STATUS_RESOURCE_IN_USE);
    expect(f.consumer.read(0x10000, 2 * PAGE_SIZE).outcome).toBe("complete");
    expect(f.consumer.write(0x10000, new Uint8Array(4)).outcome).toBe("blocked");
    expect(f.v1.UnmapLogicalRange(domain!, 0x11000, 1)).toBe(STATUS_SUCCESS);
    expect(f.consumer.read(0x10000, 2 * PAGE_SIZE).outcome).toBe("partial");
    expect(f.v1.UnmapLogicalRange(domain!, 0x11000, 1)).toBe(STATUS_INVALID_PARAMETER_2);
    expect(f.v1.ConfigureDomain(domain!, { Type: DomainConfigurationX64 })).toBe(STATUS_INVALID_PARAMETER_1);
    expect(f.v1.FlushDomain(domain!)).toBe(STATUS_INVALID_PARAMETER_1);
    expect(f.v1.DeleteDomain(domain!)).toBe(STATUS_RESOURCE_IN_USE);
    expect(f.v1.DetachDevice(domain!, f.producerPdo, 0)).toBe(STATUS_INVALID_PARAMETER_2);
    expect(f.v1.DetachDevice(domain!, f.consumerPdo, 0)).toBe(STATUS_SUCCESS);
    expect(f.v1.DeleteDomain(domain!)).toBe(STATUS_SUCCESS);
    expect(f.v1.DeleteDomain(domain!)).toBe(STATUS_INVALID_PARAMETER_1);
  });

  it("identity-maps an MDL: logical address = physical address", () => {
    const f = interfaceFixture();
    const { DomainOut: domain } = f.v1.CreateDomain(true);
    f.v1.AttachDevice(domain!, f.producerPdo, 0, 1);
    const mdl = pageMdl(f, PAGE_SIZE);
    expect(f.v1.MapIdentityRange(domain!, 3, mdl)).toBe(STATUS_SUCCESS);
    const physical = mdl.pfns[0]! * PAGE_SIZE;
    expect(f.producer.write(physical, Uint8Array.of(1, 2, 3)).outcome).toBe("complete");
    expect(f.v1.UnmapIdentityRange(domain!, mdl)).toBe(STATUS_SUCCESS);
    expect(f.producer.write(physical, Uint8Array.of(1)).outcome).toBe("blocked");
    expect(f.v1.UnmapIdentityRange(domain!, mdl)).toBe(STATUS_INVALID_PARAMETER_2);
  });

  it("blocks every DMA of a caller-managed domain, whose x64 configuration is the system's", () => {
    const f = interfaceFixture();
    const { DomainOut: domain } = f.v1.CreateDomain(false);
    expect(f.v1.AttachDevice(domain!, f.producerPdo, 0, 1)).toBe(STATUS_SUCCESS);
    expect(f.v1.AttachDevice(domain!, f.consumerPdo, 1, 1)).toBe(STATUS_INVALID_PARAMETER_3);
    expect(f.v1.AttachDevice(domain!, f.consumerPdo, 0, 2)).toBe(STATUS_INVALID_PARAMETER_4);
    expect(f.v1.MapLogicalRange(domain!, 3, pageMdl(f, PAGE_SIZE), 0x1000)).toBe(STATUS_INVALID_PARAMETER_1);
    expect(f.v1.ConfigureDomain(domain!, { Type: 7 })).toBe(STATUS_INVALID_PARAMETER_2);
    expect(f.v1.ConfigureDomain(domain!, { Type: DomainConfigurationX64 })).toBe(STATUS_NOT_SUPPORTED);
    expect(f.v1.ConfigureDomain(domain!, { Type: DomainConfigurationArm64 })).toBe(STATUS_NOT_SUPPORTED);
    expect(f.producer.read(0x1000, 8).outcome).toBe("blocked");
    f.invalidations.length = 0;
    expect(f.v1.FlushDomain(domain!)).toBe(STATUS_SUCCESS);
    expect(f.invalidations.map((e) => e.kind)).toEqual(["iotlb-domain"]);
    expect(f.v1.FlushDomainByVaList(domain!, true, 3, [0x1000, 0x2000])).toBe(STATUS_INVALID_PARAMETER_3);
    expect(f.v1.FlushDomainByVaList(domain!, true, 1, [-1])).toBe(STATUS_INVALID_PARAMETER_4);
    expect(f.v1.FlushDomainByVaList(domain!, true, 2, [0x1000, 0x5000])).toBe(STATUS_SUCCESS);
  });

  it("reports the requester id as the one input mapping, after a size check", () => {
    const f = interfaceFixture();
    const buffer: INPUT_MAPPING_ELEMENT[] = [];
    expect(f.v1.QueryInputMappings(f.consumerPdo, buffer, 0)).toEqual({
      Status: STATUS_BUFFER_TOO_SMALL,
      ReturnLength: 4,
    });
    expect(buffer).toEqual([]);
    expect(f.v1.QueryInputMappings(f.consumerPdo, buffer, 4)).toEqual({
      Status: STATUS_SUCCESS,
      ReturnLength: 4,
    });
    expect(buffer).toEqual([{ InputMappingId: f.consumer.requesterId }]);
  });
});

describe("V2: domain types, devices and the logical allocator", () => {
  it("creates only the documented domain types with valid flags, allocator and regions", () => {
    const f = interfaceFixture();
    expect(f.v2.CreateDomainEx(DomainTypeTranslateS1, 0, undefined, undefined).Status).toBe(
      STATUS_NOT_SUPPORTED,
    );
    expect(f.v2.CreateDomainEx(9, 0, undefined, undefined).Status).toBe(STATUS_INVALID_PARAMETER_1);
    expect(f.v2.CreateDomainEx(DomainTypeTranslate, 1, undefined, undefined).Status).toBe(
      STATUS_INVALID_PARAMETER_2,
    );
    expect(f.v2.CreateDomainEx(DomainTypeTranslate, 0, buddy(8), undefined).Status).toBe(
      STATUS_INVALID_PARAMETER_3,
    );
    expect(f.v2.CreateDomainEx(DomainTypePassThrough, 0, buddy(32), undefined).Status).toBe(
      STATUS_INVALID_PARAMETER_3,
    );
    const badRegion = { RegionNext: undefined, Base: 0x1234, NumberOfPages: 1, ShouldMap: false };
    expect(f.v2.CreateDomainEx(DomainTypeTranslate, 0, undefined, badRegion).Status).toBe(
      STATUS_INVALID_PARAMETER_4,
    );
  });

  it("maps with the Buddy allocator: low addresses, power-of-two blocks, inside [Min, Max]", () => {
    const f = interfaceFixture();
    const { DomainOut: domain } = f.v2.CreateDomainEx(DomainTypeTranslate, 0, buddy(32), undefined);
    const frames = deviceOnlyFrames(f.machine, 3);
    const first = f.v2.MapLogicalRangeEx(domain!, 3, pfns(frames), undefined, undefined, undefined);
    expect(first).toEqual({ Status: STATUS_SUCCESS, LogicalAddressOut: 4 * PAGE_SIZE });
    const windowed = f.v2.MapLogicalRangeEx(
      domain!,
      3,
      pfns(frames.slice(0, 1)),
      undefined,
      0x100000,
      0x1fffff,
    );
    expect(windowed.Status).toBe(STATUS_SUCCESS);
    expect(windowed.LogicalAddressOut).toBe(0x100000);
    const mix = (min: number, max: number) =>
      f.v2.MapLogicalRangeEx(domain!, 3, pfns(frames), undefined, min, max).Status;
    expect(mix(0x200000, 0x100000)).toBe(STATUS_INVALID_PARAMETER_MIX);
    expect(mix(0x100000, 0x101fff)).toBe(STATUS_INVALID_PARAMETER_MIX);
    expect(f.v2.MapLogicalRangeEx(domain!, 3, pfns(frames), 0x40000, undefined, undefined).Status).toBe(
      STATUS_NOT_SUPPORTED,
    );
    expect(
      f.v2.MapLogicalRangeEx(domain!, 3, range(0x1001, PAGE_SIZE), undefined, undefined, undefined).Status,
    ).toBe(STATUS_INVALID_PARAMETER_3);
    expect(f.v2.MapIdentityRangeEx(domain!, 3, pfns(frames))).toBe(STATUS_NOT_SUPPORTED);
    expect(f.v2.UnmapLogicalRange(domain!, first.LogicalAddressOut, 1)).toBe(STATUS_SUCCESS);
    expect(f.v2.MapLogicalRangeEx(domain!, 3, pfns(frames), undefined, undefined, 0x7fff).Status).toBe(
      STATUS_INSUFFICIENT_RESOURCES,
    );
    expect(f.v2.UnmapLogicalRange(domain!, first.LogicalAddressOut + PAGE_SIZE, 2)).toBe(STATUS_SUCCESS);
    const again = f.v2.MapLogicalRangeEx(domain!, 3, pfns(frames), undefined, undefined, undefined);
    expect(again.LogicalAddressOut).toBe(first.LogicalAddressOut);
  });

  it("needs an explicit address without an allocator, and refuses a mapped one", () => {
    const f = interfaceFixture();
    const { DomainOut: domain } = f.v2.CreateDomainEx(DomainTypeTranslate, 0, undefined, undefined);
    const frames = deviceOnlyFrames(f.machine, 2);
    expect(f.v2.MapLogicalRangeEx(domain!, 3, pfns(frames), undefined, undefined, undefined).Status).toBe(
      STATUS_NOT_SUPPORTED,
    );
    expect(f.v2.MapLogicalRangeEx(domain!, 3, pfns(frames), 0x8001, undefined, undefined).Status).toBe(
      STATUS_INVALID_PARAMETER_4,
    );
    expect(f.v2.MapLogicalRangeEx(domain!, 3, pfns(frames), 0x8000, undefined, undefined)).toEqual({
      Status: STATUS_SUCCESS,
      LogicalAddressOut: 0x8000,
    });
    expect(f.v2.MapLogicalRangeEx(domain!, 3, pfns(frames), 0x9000, undefined, undefined).Status).toBe(
      STATUS_RESOURCE_IN_USE,
    );
    expect(f.v2.MapLogicalRangeEx(domain!, 3, pfns(frames), 0xfee00000, undefined, undefined).Status).toBe(
      STATUS_INVALID_PARAMETER_4,
    );
  });

  it("tracks devices: one attachment each, deletion only when detached", () => {
    const f = interfaceFixture();
    expect(f.v2.CreateDevice(f.producerPdo, {}).Status).toBe(STATUS_INVALID_PARAMETER_2);
    const device = f.v2.CreateDevice(f.producerPdo, undefined).DmaDeviceOut!;
    const { DomainOut: a } = f.v2.CreateDomainEx(DomainTypeTranslate, 0, undefined, undefined);
    const { DomainOut: b } = f.v2.CreateDomainEx(DomainTypeUnmanaged, 0, undefined, undefined);
    expect(f.v2.DetachDeviceEx(device)).toBe(STATUS_INVALID_PARAMETER_1);
    expect(f.v2.AttachDeviceEx(a!, device)).toBe(STATUS_SUCCESS);
    expect(f.v2.AttachDeviceEx(b!, device)).toBe(STATUS_INVALID_PARAMETER);
    expect(f.v2.DeleteDevice(device)).toBe(STATUS_RESOURCE_IN_USE);
    expect(f.v2.DeleteDomain(a!)).toBe(STATUS_RESOURCE_IN_USE);
    expect(f.v2.DetachDeviceEx(device)).toBe(STATUS_SUCCESS);
    expect(f.v2.AttachDeviceEx(b!, device)).toBe(STATUS_SUCCESS);
    expect(f.v2.DetachDeviceEx(device)).toBe(STATUS_SUCCESS);
    expect(f.v2.DeleteDevice(device)).toBe(STATUS_SUCCESS);
    expect(f.v2.AttachDeviceEx(a!, device)).toBe(STATUS_INVALID_PARAMETER_2);
    expect(f.v2.SetDeviceFaultReportingEx(device, 0, true, undefined)).toBe(STATUS_NOT_IMPLEMENTED);
  });

  it("gives a pass-through domain identity DMA, but never to an external device", () => {
    const f = interfaceFixture("strict", [0x100]);
    const { DomainOut: pt } = f.v2.CreateDomainEx(DomainTypePassThrough, 0, undefined, undefined);
    const inside = f.v2.CreateDevice(f.producerPdo, undefined).DmaDeviceOut!;
    const external = f.v2.CreateDevice(f.consumerPdo, undefined).DmaDeviceOut!;
    expect(f.v2.QueryAvailableDomainTypes(inside)).toBe(0b111);
    expect(f.v2.QueryAvailableDomainTypes(external)).toBe(0b101);
    expect(f.v2.AttachDeviceEx(pt!, external)).toBe(STATUS_ACCESS_DENIED);
    expect(f.v2.AttachDeviceEx(pt!, inside)).toBe(STATUS_SUCCESS);
    expect(f.producer.read(0x100000, 16).outcome).toBe("complete");
    expect(f.v2.MapLogicalRangeEx(pt!, 3, range(0, PAGE_SIZE), 0, undefined, undefined).Status).toBe(
      STATUS_INVALID_PARAMETER_1,
    );
    expect(f.v2.MapIdentityRangeEx(pt!, 3, range(0, PAGE_SIZE))).toBe(STATUS_SUCCESS);
  });

  it("identity-maps reserved regions at creation and keeps them out of the allocator", () => {
    const f = interfaceFixture();
    const region = { RegionNext: undefined, Base: 0x4000, NumberOfPages: 4, ShouldMap: true };
    const { Status, DomainOut: domain } = f.v2.CreateDomainEx(DomainTypeTranslate, 0, buddy(32), region);
    expect(Status).toBe(STATUS_SUCCESS);
    f.v2.AttachDeviceEx(domain!, f.v2.CreateDevice(f.consumerPdo, undefined).DmaDeviceOut!);
    expect(f.consumer.read(0x4000, 4 * PAGE_SIZE).outcome).toBe("complete");
    const frames = deviceOnlyFrames(f.machine, 4);
    expect(
      f.v2.MapLogicalRangeEx(domain!, 3, pfns(frames), undefined, undefined, undefined).LogicalAddressOut,
    ).toBe(0x8000);
  });
});

describe("reserved logical ranges", () => {
  it("build their tables at reservation: mapping and unmapping segments never allocates or frees one", () => {
    const f = interfaceFixture();
    const { DomainOut: domain } = f.v2.CreateDomainEx(DomainTypeTranslate, 0, buddy(39), undefined);
    f.v2.AttachDeviceEx(domain!, f.v2.CreateDevice(f.consumerPdo, undefined).DmaDeviceOut!);
    const { Status, LogicalAddressToken: token } = f.v2.ReserveLogicalAddressRange(
      domain!,
      8 * 1024 * 1024,
      undefined,
      undefined,
      undefined,
    );
    expect(Status).toBe(STATUS_SUCCESS);
    const tables = () => f.hal.hardwareDomain(domain!)!.pageTable.tableCount;
    const before = tables();
    const frames = deviceOnlyFrames(f.machine, 512);
    const whole = f.v2.MapReservedLogicalRange(token!, 2 * 1024 * 1024, 3, pfns(frames));
    const single = f.v2.MapReservedLogicalRange(token!, 6 * 1024 * 1024, 1, pfns(frames.slice(0, 1)));
    expect(whole.Status).toBe(STATUS_SUCCESS);
    expect(single.Status).toBe(STATUS_SUCCESS);
    expect(tables()).toBe(before);
    expect(f.consumer.read(token!.LogicalAddressBase + 2 * 1024 * 1024, 2 * 1024 * 1024).outcome).toBe(
      "complete",
    );
    expect(f.v2.MapReservedLogicalRange(token!, 3 * 1024 * 1024, 3, pfns(frames.slice(0, 1))).Status).toBe(
      STATUS_RESOURCE_IN_USE,
    );
    expect(f.v2.MapReservedLogicalRange(token!, 100, 3, pfns(frames)).Status).toBe(
      STATUS_INVALID_PARAMETER_2,
    );
    expect(f.v2.MapReservedLogicalRange(token!, 0, 4, pfns(frames)).Status).toBe(STATUS_INVALID_PARAMETER_3);
    expect(f.v2.MapReservedLogicalRange(token!, 7 * 1024 * 1024, 3, pfns(frames)).Status).toBe(
      STATUS_INVALID_PARAMETER_4,
    );
    expect(f.v2.FreeReservedLogicalAddressRange(token!)).toBe(STATUS_RESOURCE_IN_USE);
    expect(f.v2.DeleteDomain(domain!)).toBe(STATUS_RESOURCE_IN_USE);
    expect(f.v2.UnmapReservedLogicalRange(whole.MappedSegment!)).toBe(STATUS_SUCCESS);
    expect(f.v2.UnmapReservedLogicalRange(whole.MappedSegment!)).toBe(STATUS_INVALID_PARAMETER);
    expect(f.v2.UnmapReservedLogicalRange(single.MappedSegment!)).toBe(STATUS_SUCCESS);
    expect(tables()).toBe(before);
    expect(f.consumer.read(token!.LogicalAddressBase + 2 * 1024 * 1024, 8).outcome).toBe("blocked");
    expect(f.v2.FreeReservedLogicalAddressRange(token!)).toBe(STATUS_SUCCESS);
    expect(f.v2.MapReservedLogicalRange(token!, 0, 3, pfns(frames)).Status).not.toBe(STATUS_SUCCESS);
  });

  it("check the domain type, the size and an explicit address", () => {
    const f = interfaceFixture();
    const { DomainOut: plain } = f.v2.CreateDomainEx(DomainTypeTranslate, 0, undefined, undefined);
    const { DomainOut: unmanaged } = f.v2.CreateDomainEx(DomainTypeUnmanaged, 0, undefined, undefined);
    const reserve = (d: typeof plain, size: number, explicit?: number) =>
      f.v2.ReserveLogicalAddressRange(d!, size, explicit, undefined, undefined).Status;
    expect(reserve(unmanaged, PAGE_SIZE, 0x1000)).toBe(STATUS_INVALID_PARAMETER_1);
    expect(reserve(plain, 100, 0x1000)).toBe(STATUS_INVALID_PARAMETER_2);
    expect(reserve(plain, PAGE_SIZE, 0x1001)).toBe(STATUS_INVALID_PARAMETER_3);
    expect(reserve(plain, PAGE_SIZE)).toBe(STATUS_NOT_SUPPORTED);
    expect(reserve(plain, 2 * PAGE_SIZE, 0x10000)).toBe(STATUS_SUCCESS);
    expect(reserve(plain, PAGE_SIZE, 0x11000)).toBe(STATUS_RESOURCE_IN_USE);
  });
});
