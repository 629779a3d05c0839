import { describe, expect, it } from "vitest";
import {
  DomainTypePassThrough,
  DomainTypeTranslate,
  type FAULT_INFORMATION,
  FaultInformationX64,
  type IOMMU_INTERFACE_STATE_CHANGE,
  MapPhysicalAddressTypePfn,
  PermissionFault,
  TranslationFault,
} from "../../src/hal/wdm/iommu-interface.js";
import { PASSIVE_LEVEL } from "../../src/hal/wdm/irql.js";
import {
  STATUS_INVALID_PARAMETER_1,
  STATUS_INVALID_PARAMETER_4,
  STATUS_NOT_SUPPORTED,
  STATUS_SUCCESS,
  STATUS_UNSUCCESSFUL,
} from "../../src/hal/wdm/ntstatus.js";
import { deviceOnlyFrames, interfaceFixture } from "./interface-fixture.js";

describe("SetDeviceFaultReporting", () => {
  it("hands each fault of the device to its handler at PASSIVE_LEVEL, after the access", () => {
    const f = interfaceFixture();
    const { DomainOut: domain } = f.v2.CreateDomainEx(DomainTypeTranslate, 0, undefined, undefined);
    f.v2.AttachDeviceEx(domain!, f.v2.CreateDevice(f.consumerPdo, undefined).DmaDeviceOut!);
    const frames = deviceOnlyFrames(f.machine, 1);
    const map = {
      MapType: MapPhysicalAddressTypePfn,
      PfnArray: { PageFrame: frames, NumberOfPages: 1 },
    } as const;
    expect(f.v2.MapLogicalRangeEx(domain!, 1, map, 0x20000, undefined, undefined).Status).toBe(
      STATUS_SUCCESS,
    );
    const seen: { info: FAULT_INFORMATION; context: unknown; irql: number }[] = [];
    const handler = (context: unknown, info: FAULT_INFORMATION): void => {
      seen.push({ info, context, irql: f.kernel.KeGetCurrentIrql() });
    };
    expect(f.v1.SetDeviceFaultReporting(f.consumerPdo, 0, true, undefined)).toBe(STATUS_INVALID_PARAMETER_4);
    expect(
      f.v1.SetDeviceFaultReporting(f.producerPdo, 0, true, { FaultHandler: handler, FaultContext: 1 }),
    ).toBe(STATUS_INVALID_PARAMETER_1);
    expect(
      f.v1.SetDeviceFaultReporting(f.consumerPdo, 0, true, { FaultHandler: handler, FaultContext: "ctx" }),
    ).toBe(STATUS_SUCCESS);
    f.consumer.read(0x40000, 8);
    f.consumer.write(0x20000, Uint8Array.of(1));
    expect(seen).toEqual([]);
    f.machine.runUntilIdle();
    expect(seen.map((s) => s.irql)).toEqual([PASSIVE_LEVEL, PASSIVE_LEVEL]);
    expect(seen[0]!.context).toBe("ctx");
    expect(seen[0]!.info.Type).toBe(FaultInformationX64);
    expect(seen[0]!.info.X64.DomainHandle).toBe(domain);
    expect(seen[0]!.info.X64.FaultAddress).toBe(0x40000);
    expect(seen[0]!.info.X64.Type).toBe(TranslationFault);
    expect(seen[0]!.info.X64.Flags.WriteNotRead).toBe(false);
    expect(seen[1]!.info.X64.Type).toBe(PermissionFault);
    expect(seen[1]!.info.X64.Flags.WriteNotRead).toBe(true);
    expect(f.v1.SetDeviceFaultReporting(f.consumerPdo, 0, false, undefined)).toBe(STATUS_SUCCESS);
    f.consumer.read(0x40000, 8);
    f.machine.runUntilIdle();
    expect(seen.length).toBe(2);
  });
});

describe("interface state change callbacks", () => {
  it("run at once on registration, then at PASSIVE_LEVEL when DMA Guard changes what is available", () => {
    const f = interfaceFixture();
    const device = f.v2.CreateDevice(f.producerPdo, undefined).DmaDeviceOut!;
    const changes: IOMMU_INTERFACE_STATE_CHANGE[] = [];
    const callback = (change: IOMMU_INTERFACE_STATE_CHANGE): void => {
      changes.push(change);
    };
    expect(
      f.v2.RegisterInterfaceStateChangeCallback(callback, undefined, device, { AvailableDomainTypes: false }),
    ).toBe(STATUS_INVALID_PARAMETER_4);
    expect(
      f.v2.RegisterInterfaceStateChangeCallback(callback, undefined, device, { AvailableDomainTypes: true }),
    ).toBe(STATUS_SUCCESS);
    expect(changes.map((c) => c.AvailableDomainTypes)).toEqual([0b111]);
    expect(
      f.v2.RegisterInterfaceStateChangeCallback(callback, undefined, device, { AvailableDomainTypes: true }),
    ).toBe(STATUS_UNSUCCESSFUL);
    f.hal.setDmaGuardBlocking(true);
    f.machine.runUntilIdle();
    expect(changes.map((c) => c.AvailableDomainTypes)).toEqual([0b111, 0b101]);
    expect(f.v2.QueryAvailableDomainTypes(device)).toBe(0b101);
    expect(f.v2.CreateDomainEx(DomainTypePassThrough, 0, undefined, undefined).Status).toBe(
      STATUS_NOT_SUPPORTED,
    );
    expect(f.v2.UnregisterInterfaceStateChangeCallback(() => undefined, device)).toBe(STATUS_UNSUCCESSFUL);
    expect(f.v2.UnregisterInterfaceStateChangeCallback(callback, device)).toBe(STATUS_SUCCESS);
    f.hal.setDmaGuardBlocking(false);
    f.machine.runUntilIdle();
    expect(changes.length).toBe(2);
  });
});
