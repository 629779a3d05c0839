import { ContainerModule } from "inversify";
import { describe, expect, it } from "vitest";
import { AdapterObject } from "../../src/hal/adapter-object.js";
import { addressLimitOf, describeAdapter } from "../../src/hal/device-description-rules.js";
import { DirectMapping } from "../../src/hal/direct-mapping.js";
import { Hal } from "../../src/hal/hal.js";
import { HalDmaOperations } from "../../src/hal/hal-dma-operations.js";
import { RemapMapping } from "../../src/hal/remap-mapping.js";
import { DmaOperations } from "../../src/hal/tokens.js";
import {
  DEVICE_DESCRIPTION_VERSION,
  DEVICE_DESCRIPTION_VERSION1,
  DEVICE_DESCRIPTION_VERSION2,
  DEVICE_DESCRIPTION_VERSION3,
  InterfaceTypeUndefined,
  Isa,
  PCIBus,
  PNPBus,
} from "../../src/hal/wdm/device-description.js";
import {
  type DMA_OPERATIONS,
  DMA_OPERATIONS_SIZE_V1,
  DMA_OPERATIONS_SIZE_V2,
  DMA_OPERATIONS_SIZE_V3,
} from "../../src/hal/wdm/dma-operations.js";
import { DISPATCH_LEVEL } from "../../src/hal/wdm/irql.js";
import { Machine } from "../../src/machine/machine.js";
import { GiB, KiB, MiB } from "../../src/platform/page.js";
import { BusMaster, bugCheckOf, description, deviceObject, HAL_MODES, HalRig } from "./support/hal-rig.js";

describe("DEVICE_DESCRIPTION rules", () => {
  it("maps description versions 0-3 to table versions 1, 1, 2, 3 and refuses the others", () => {
    const versions = [
      DEVICE_DESCRIPTION_VERSION,
      DEVICE_DESCRIPTION_VERSION1,
      DEVICE_DESCRIPTION_VERSION2,
      DEVICE_DESCRIPTION_VERSION3,
    ];
    expect(
      versions.map(
        (Version) => describeAdapter(description({ Version, DmaAddressWidth: 64 }), true)?.tableVersion,
      ),
    ).toEqual([1, 1, 2, 3]);
    for (const Version of [4, -1, 1.5, Number.NaN])
      expect(describeAdapter(description({ Version }), true)).toBeUndefined();
  });

  it("takes the address width from Dma64BitAddresses, then scatter/gather on PCI, then Dma32BitAddresses, else 24 bits", () => {
    const bits = (o: Parameters<typeof description>[0]): number | undefined =>
      describeAdapter(description(o), true)?.addressBits;
    expect(bits({ Dma64BitAddresses: true, Dma32BitAddresses: false })).toBe(64);
    expect(bits({ Dma64BitAddresses: false, Dma32BitAddresses: false, ScatterGather: true })).toBe(32);
    expect(bits({ Dma64BitAddresses: false, Dma32BitAddresses: true, ScatterGather: false })).toBe(32);
    expect(bits({ Dma64BitAddresses: false, ScatterGather: false })).toBe(24);
    expect(bits({ Dma64BitAddresses: false, ScatterGather: true, InterfaceType: Isa })).toBe(24);
  });

  it("uses DmaAddressWidth for VERSION3 and ignores the 32/64-bit flags there", () => {
    const v3 = describeAdapter(
      description({ Version: DEVICE_DESCRIPTION_VERSION3, DmaAddressWidth: 36, Dma64BitAddresses: true }),
      true,
    );
    expect(v3?.addressBits).toBe(36);
    expect(v3?.addressLimit).toBe(2 ** 36 - 1);
    for (const DmaAddressWidth of [0, 65, 31.5]) {
      expect(
        describeAdapter(description({ Version: DEVICE_DESCRIPTION_VERSION3, DmaAddressWidth }), true),
      ).toBeUndefined();
    }
  });

  it("asks the PDO for the bus when InterfaceType is undefined or PNPBus", () => {
    for (const InterfaceType of [InterfaceTypeUndefined, PNPBus]) {
      const desc = description({ InterfaceType, Dma64BitAddresses: false, ScatterGather: true });
      expect(describeAdapter(desc, true)).toMatchObject({ interfaceType: PCIBus, addressBits: 32 });
      expect(describeAdapter(desc, false)?.addressBits).toBe(24);
    }
  });

  it("refuses subordinate devices, Reserved1 and a MaximumLength that is not a ULONG", () => {
    expect(describeAdapter(description({ Master: false }), true)).toBeUndefined();
    expect(describeAdapter(description({ Reserved1: true }), true)).toBeUndefined();
    for (const MaximumLength of [-1, 2 ** 32, 0.5])
      expect(describeAdapter(description({ MaximumLength }), true)).toBeUndefined();
  });

  it("gives 64-bit devices every representable address", () => {
    expect(addressLimitOf(64)).toBe(Number.MAX_SAFE_INTEGER);
    expect(addressLimitOf(32)).toBe(2 ** 32 - 1);
  });
});

describe("IoGetDmaAdapter", () => {
  it("returns BYTES_TO_PAGES(MaximumLength) + 1 map registers", () => {
    const rig = new HalRig({ remapping: "off" });
    const registers = (MaximumLength: number): number => rig.open({ MaximumLength }).numberOfMapRegisters;
    expect([
      registers(0),
      registers(1),
      registers(4 * KiB),
      registers(4 * KiB + 1),
      registers(64 * KiB),
    ]).toEqual([1, 2, 2, 3, 17]);
  });

  it("caps the count at the bounce pool for devices that need map registers, and not for the others", () => {
    const rig = new HalRig({ remapping: "off", mapRegisterPoolPages: 16 });
    expect(rig.open({ MaximumLength: MiB, Dma64BitAddresses: false }).numberOfMapRegisters).toBe(16);
    expect(rig.open({ MaximumLength: MiB, ScatterGather: false }).numberOfMapRegisters).toBe(16);
    expect(rig.open({ MaximumLength: MiB }).numberOfMapRegisters).toBe(257);
  });

  it("is not capped by a bounce pool when remapping", () => {
    const rig = new HalRig({ remapping: "strict", mapRegisterPoolPages: 16 });
    expect(rig.open({ MaximumLength: MiB, Dma64BitAddresses: false }).numberOfMapRegisters).toBe(257);
  });

  it("reports the table version in DMA_OPERATIONS.Size only; DMA_ADAPTER.Version is always 1", () => {
    const rig = new HalRig();
    const sizes = [0, 1, 2, 3].map((Version) => rig.open({ Version, DmaAddressWidth: 64 }).adapter);
    expect(sizes.map((a) => a.DmaOperations.Size)).toEqual([
      DMA_OPERATIONS_SIZE_V1,
      DMA_OPERATIONS_SIZE_V1,
      DMA_OPERATIONS_SIZE_V2,
      DMA_OPERATIONS_SIZE_V3,
    ]);
    expect(sizes.map((a) => a.Version)).toEqual([1, 1, 1, 1]);
  });

  it("numbers adapters 1, 2, 3 per machine, and a refused request takes no number", () => {
    const rig = new HalRig();
    const first = rig.open().adapter as AdapterObject;
    const device = rig.plug();
    expect(rig.hal.getDmaAdapter(deviceObject(device.requesterId), description({ Version: 7 }))).toEqual({
      Adapter: undefined,
      NumberOfMapRegisters: 0,
    });
    const second = rig.open().adapter as AdapterObject;
    expect([first.id, second.id]).toEqual([1, 2]);
    expect((new HalRig().open().adapter as AdapterObject).id).toBe(1);
  });

  it("returns NULL for a PDO that is not a device object", () => {
    const rig = new HalRig();
    expect(rig.hal.getDmaAdapter(undefined as never, description()).Adapter).toBeUndefined();
    expect(rig.hal.getDmaAdapter({} as never, description()).Adapter).toBeUndefined();
  });

  it("must be called at PASSIVE_LEVEL", () => {
    const rig = new HalRig();
    const device = rig.plug();
    const check = bugCheckOf(() =>
      rig.atDispatch(() => rig.hal.getDmaAdapter(deviceObject(device.requesterId), description())),
    );
    expect(check.code).toBe(0xe6);
    expect(check.parameters).toEqual([0x13, 1, 0, DISPATCH_LEVEL]);
  });

  it.each(HAL_MODES)("picks the mapping strategy of remapping mode %s", (mode) => {
    const rig = new HalRig({ remapping: mode });
    const adapter = rig.open().adapter as AdapterObject;
    const remapping = mode === "strict" || mode === "lazy";
    expect(adapter.strategy).toBe(remapping ? rig.machine.get(RemapMapping) : rig.machine.get(DirectMapping));
  });

  it("in passthrough mode attaches the requester to a pass-through context entry until its last adapter is put", () => {
    const rig = new HalRig({ remapping: "passthrough" });
    const { adapter, ops, device, pdo } = rig.open();
    const twin = rig.hal.getDmaAdapter(pdo, description()).Adapter!;
    expect(rig.machine.iommu.attachment(device.requesterId)).toBe("passthrough");
    ops.PutDmaAdapter(adapter);
    expect(rig.machine.iommu.attachment(device.requesterId)).toBe("passthrough");
    twin.DmaOperations.PutDmaAdapter(twin);
    expect(rig.machine.iommu.attachment(device.requesterId)).toBeUndefined();
  });

  it("hands out tables that call whatever is bound to the DmaOperations token (the verifier's seam)", () => {
    const calls: string[] = [];
    const decorator = new ContainerModule(({ rebind }) => {
      rebind(DmaOperations).toResolvedValue(
        (inner: HalDmaOperations) =>
          new Proxy(inner, {
            get(target, name, receiver) {
              const value = Reflect.get(target, name, receiver);
              if (typeof value !== "function") return value;
              return (...args: unknown[]) => {
                calls.push(String(name));
                return value.apply(target, args);
              };
            },
          }) as DMA_OPERATIONS,
        [HalDmaOperations],
      );
    });
    const machine = new Machine({ memory: 8 * GiB, remapping: "off" }, [decorator]);
    const device = new BusMaster();
    machine.pci.attach(device, { busMaster: true });
    const { Adapter } = machine.get(Hal).getDmaAdapter(deviceObject(device.requesterId), description());
    expect(Adapter!.DmaOperations.GetDmaAlignment(Adapter!)).toBe(1);
    expect(calls).toEqual(["GetDmaAlignment"]);
  });
});
