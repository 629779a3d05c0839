/**
 * The verifier over the version 3 routines (MapTransferEx, the Ex allocations, FreeAdapterObject,
 * CancelAdapterChannel, common buffer vectors) and over what devices do on their own: silent
 * when they are used right, precise when not.
 */
import { describe, expect, it } from "vitest";
import {
  DMA_SYNCHRONOUS_CALLBACK,
  DMA_TRANSFER_CONTEXT,
  type MAP_REGISTER_BASE,
  MmCached,
  type SCATTER_GATHER_LIST,
} from "../../src/ddi/index.js";
import { Hal } from "../../src/hal/hal.js";
import { BugCheck } from "../../src/hal/wdm/bug-check.js";
import {
  DEVICE_DESCRIPTION_VERSION3,
  PCIBus,
  zeroedDeviceDescription,
} from "../../src/hal/wdm/device-description.js";
import type { DEVICE_OBJECT } from "../../src/hal/wdm/device-object.js";
import type { DMA_ADAPTER, DMA_OPERATIONS } from "../../src/hal/wdm/dma-operations.js";
import {
  DeallocateObject,
  DeallocateObjectKeepRegisters,
  KeepObject,
} from "../../src/hal/wdm/io-allocation-action.js";
import { DISPATCH_LEVEL } from "../../src/hal/wdm/irql.js";
import { STATUS_SUCCESS } from "../../src/hal/wdm/ntstatus.js";
import { Machine } from "../../src/machine/machine.js";
import type { RemappingMode } from "../../src/machine/machine-options.js";
import { KernelMemory } from "../../src/platform/kernel-memory.js";
import type { Mdl } from "../../src/platform/mdl.js";
import { MemoryManager } from "../../src/platform/memory-manager.js";
import { GiB, PAGE_SIZE } from "../../src/platform/page.js";
import { PciDevice } from "../../src/platform/pci-device.js";
import { DmaVerifier } from "../../src/verifier/dma-verifier.js";
import { verifierModule } from "../../src/verifier/verifier-module.js";
import type { VerifierMode } from "../../src/verifier/verifier-options.js";
import { Overrun, VerifierCode } from "../../src/verifier/violation-codes.js";

class Master extends PciDevice {
  constructor() {
    super({ name: "v3 master", vendorId: 0x1af4, deviceId: 0x10f3, classCode: 0xff0000 }, { barSize: 4096 });
  }

  write(address: number, length: number): boolean {
    return this.port.write(address, new Uint8Array(length).fill(0x5a)).ok;
  }

  protected registerValue(): number {
    return 0;
  }

  protected onRegisterWrite(): void {}
}

/** A machine, one device, and a version 3 adapter for it, bypassing the driver model (host test code). */
function v3(remapping: RemappingMode, mode: VerifierMode = "bugcheck", width = 64) {
  const machine = new Machine({ memory: 8 * GiB, remapping }, [verifierModule({ mode })]);
  const device = new Master();
  machine.pci.attach(device, { busMaster: true });
  const pdo: DEVICE_OBJECT = {
    DriverObject: undefined,
    DeviceExtension: {},
    CurrentIrp: undefined,
    AlignmentRequirement: 0,
    Flags: 0,
    NextDevice: undefined,
    AttachedDevice: undefined,
    DeviceObjectExtension: { requesterId: device.requesterId, external: false },
  };
  const description = {
    ...zeroedDeviceDescription(),
    Version: DEVICE_DESCRIPTION_VERSION3,
    Master: true,
    ScatterGather: true,
    InterfaceType: PCIBus,
    MaximumLength: 64 * 1024,
    DmaAddressWidth: width,
  };
  const { Adapter, NumberOfMapRegisters } = machine.get(Hal).getDmaAdapter(pdo, description);
  const adapter = Adapter as DMA_ADAPTER;
  const ops: DMA_OPERATIONS = adapter.DmaOperations;
  const kernel = machine.get(KernelMemory);
  const mm = machine.get(MemoryManager);
  const owner = machine.frames.registerOwner("v3-test");
  const buffer = (length: number): { va: number; mdl: Mdl } => {
    const va = kernel.allocateNonPaged(length, { owner, tag: "Test" });
    const mdl = mm.allocateMdl(va, length);
    mm.buildForNonPagedPool(mdl);
    return { va, mdl };
  };
  const atDispatch = <T>(body: () => T): T => machine.scheduler.runAtIrql(DISPATCH_LEVEL, body);
  const verifier = machine.get(DmaVerifier);
  return {
    machine,
    device,
    pdo,
    adapter,
    ops,
    buffer,
    atDispatch,
    verifier,
    registers: NumberOfMapRegisters,
  };
}

function bugCheckOf(body: () => unknown): BugCheck {
  try {
    body();
  } catch (error) {
    if (error instanceof BugCheck) return error;
    throw error;
  }
  throw new Error("expected a bug check");
}

describe.each<RemappingMode>(["off", "strict"])(
  "version 3 routines under the verifier (remapping %s)",
  (remapping) => {
    it("a synchronous AllocateAdapterChannelEx, MapTransferEx and FlushAdapterBuffersEx, FreeAdapterObject", () => {
      const { ops, adapter, pdo, buffer, atDispatch, device, verifier, machine } = v3(
        remapping,
        "bugcheck",
        32,
      );
      const { va, mdl } = buffer(3 * PAGE_SIZE);
      const context = new DMA_TRANSFER_CONTEXT();
      const sgl = buffer(PAGE_SIZE);
      atDispatch(() => {
        expect(ops.InitializeDmaTransferContext(adapter, context)).toBe(STATUS_SUCCESS);
        const { Status, MapRegisterBase } = ops.AllocateAdapterChannelEx(
          adapter,
          pdo,
          context,
          3,
          DMA_SYNCHRONOUS_CALLBACK,
          undefined,
          undefined,
          true,
        );
        expect(Status).toBe(STATUS_SUCCESS);
        const mapped = ops.MapTransferEx(
          adapter,
          mdl,
          MapRegisterBase,
          0,
          0,
          3 * PAGE_SIZE,
          false,
          sgl.va,
          PAGE_SIZE,
          undefined,
          undefined,
        );
        expect(mapped.Status).toBe(STATUS_SUCCESS);
        for (const element of mapped.ScatterGatherList!.Elements)
          expect(device.write(element.Address, element.Length)).toBe(true);
        expect(ops.FlushAdapterBuffersEx(adapter, mdl, MapRegisterBase, 0, mapped.Length, false)).toBe(
          STATUS_SUCCESS,
        );
        ops.FreeAdapterObject(adapter, DeallocateObjectKeepRegisters);
        ops.FreeMapRegisters(adapter, MapRegisterBase, 3);
      });
      expect(machine.get(KernelMemory).physicalAddress(va)).toBeGreaterThan(0);
      expect(verifier.violationCount).toBe(0);
      const [report] = verifier.report();
      expect(report).toMatchObject({
        adapterChannels: { allocated: 1, freed: 1 },
        mapRegisters: { allocated: 3, freed: 3 },
      });
    });

    it("MapTransferEx again before FlushAdapterBuffersEx is 0x0D", () => {
      const { ops, adapter, pdo, buffer, atDispatch } = v3(remapping);
      const { mdl } = buffer(PAGE_SIZE);
      const sgl = buffer(PAGE_SIZE);
      const context = new DMA_TRANSFER_CONTEXT();
      const check = bugCheckOf(() =>
        atDispatch(() => {
          ops.InitializeDmaTransferContext(adapter, context);
          const { MapRegisterBase } = ops.AllocateAdapterChannelEx(
            adapter,
            pdo,
            context,
            2,
            DMA_SYNCHRONOUS_CALLBACK,
            undefined,
            undefined,
            true,
          );
          ops.MapTransferEx(
            adapter,
            mdl,
            MapRegisterBase,
            0,
            0,
            100,
            true,
            sgl.va,
            PAGE_SIZE,
            undefined,
            undefined,
          );
          ops.MapTransferEx(
            adapter,
            mdl,
            MapRegisterBase,
            100,
            0,
            100,
            true,
            sgl.va,
            PAGE_SIZE,
            undefined,
            undefined,
          );
        }),
      );
      // p3, the most the registers map at once: none are needed without remapping for a 64-bit device.
      expect(check.parameters).toEqual([
        VerifierCode.notFlushed,
        200,
        remapping === "off" ? 0 : 2 * PAGE_SIZE,
        0,
      ]);
    });

    it("GetScatterGatherListEx returning the list keeps the channel until FreeAdapterObject", () => {
      const { ops, adapter, pdo, buffer, atDispatch, verifier } = v3(remapping);
      const { mdl } = buffer(5000);
      const context = new DMA_TRANSFER_CONTEXT();
      let list: SCATTER_GATHER_LIST | undefined;
      atDispatch(() => {
        ops.InitializeDmaTransferContext(adapter, context);
        const result = ops.GetScatterGatherListEx(
          adapter,
          pdo,
          context,
          mdl,
          0,
          5000,
          DMA_SYNCHRONOUS_CALLBACK,
          undefined,
          undefined,
          true,
          undefined,
          undefined,
          true,
        );
        list = result.ScatterGatherList;
        expect(verifier.report()[0]!.adapterChannels).toEqual({ allocated: 1, freed: 0 });
        ops.FreeAdapterObject(adapter, DeallocateObject);
        ops.PutScatterGatherList(adapter, list!, true);
      });
      expect(verifier.violationCount).toBe(0);
      expect(verifier.report()[0]).toMatchObject({
        adapterChannels: { allocated: 1, freed: 1 },
        scatterGatherLists: { allocated: 1, freed: 1 },
      });
      // A second FreeAdapterObject: no channel is held any more.
      expect(
        bugCheckOf(() => atDispatch(() => ops.FreeAdapterObject(adapter, DeallocateObject))).parameters,
      ).toEqual([VerifierCode.channelDoubleFree, 1, 1, 0]);
    });

    it("a cancelled AllocateAdapterChannelEx leaves nothing outstanding", () => {
      const { ops, adapter, pdo, atDispatch, verifier } = v3(remapping, "log");
      const first = new DMA_TRANSFER_CONTEXT();
      const second = new DMA_TRANSFER_CONTEXT();
      atDispatch(() => {
        ops.InitializeDmaTransferContext(adapter, first);
        ops.InitializeDmaTransferContext(adapter, second);
        ops.AllocateAdapterChannelEx(adapter, pdo, first, 0, 0, () => KeepObject, undefined, false);
        ops.AllocateAdapterChannelEx(adapter, pdo, second, 0, 0, () => KeepObject, undefined, false);
        expect(ops.CancelAdapterChannel(adapter, pdo, second)).toBe(true);
        ops.FreeAdapterChannel(adapter);
      });
      // The second request was a second channel while the first was held: reported, then cancelled.
      expect(verifier.violations.map((v) => v.parameters)).toEqual([[VerifierCode.secondChannel, 1, 1, 0]]);
      expect(verifier.report()[0]!.outstanding).toEqual([]);
    });

    it("common buffer vectors: a device writing its elements is covered; PutDmaAdapter with one left is 0x07", () => {
      const { ops, adapter, atDispatch, device, verifier } = v3(remapping, "log");
      const { Status, VectorOut } = ops.AllocateCommonBufferVector(
        adapter,
        0,
        2 ** 40,
        MmCached,
        0,
        0,
        4,
        512,
      );
      expect(Status).toBe(STATUS_SUCCESS);
      const element = atDispatch(() => ops.GetCommonBufferFromVectorByIndex(adapter, VectorOut!, 2));
      expect(device.write(element.LogicalAddressOut, 512)).toBe(true);
      expect(verifier.violationCount).toBe(0);
      ops.PutDmaAdapter(adapter);
      expect(verifier.violations.map((v) => v.parameters)).toEqual([
        [VerifierCode.leftoverCommonBuffers, 1, 1, 0],
      ]);
    });
  },
);

describe("devices under the verifier", () => {
  it("lazy invalidation: a device writing through a stale IOTLB entry after the put is 0x0F/3", () => {
    const { ops, adapter, pdo, buffer, atDispatch, device, verifier } = v3("lazy", "log");
    const { va, mdl } = buffer(PAGE_SIZE);
    let address = 0;
    atDispatch(() =>
      ops.GetScatterGatherList(
        adapter,
        pdo,
        mdl,
        va,
        PAGE_SIZE,
        (_d, _i, list) => {
          address = list.Elements[0]!.Address;
          expect(device.write(address, 64)).toBe(true);
          ops.PutScatterGatherList(adapter, list, false);
        },
        undefined,
        false,
      ),
    );
    // The unmap waits in the flush queue; the IOTLB still translates the IOVA.
    expect(device.write(address, 64)).toBe(true);
    expect(verifier.violations.map((v) => v.parameters)).toEqual([
      [VerifierCode.boundaryOverrun, Overrun.freeMapRegister, address, 64],
    ]);
    expect(verifier.violations[0]!.explanation).toMatch(/stale IOTLB entry/);
  });

  it("strict invalidation: the same late write is an IOMMU fault, 0x26", () => {
    const { ops, adapter, pdo, buffer, atDispatch, device, verifier } = v3("strict", "log");
    const { va, mdl } = buffer(PAGE_SIZE);
    let address = 0;
    atDispatch(() =>
      ops.GetScatterGatherList(
        adapter,
        pdo,
        mdl,
        va,
        PAGE_SIZE,
        (_d, _i, list) => {
          address = list.Elements[0]!.Address;
          expect(device.write(address, 64)).toBe(true);
          ops.PutScatterGatherList(adapter, list, false);
        },
        undefined,
        false,
      ),
    );
    expect(device.write(address, 64)).toBe(false);
    expect(verifier.violations.map((v) => v.code)).toEqual([VerifierCode.iommuViolation]);
  });

  it("a MapRegisterBase kept from an Ex allocation shows in the report until freed", () => {
    const { ops, adapter, pdo, atDispatch, verifier } = v3("strict", "log");
    const context = new DMA_TRANSFER_CONTEXT();
    let base: MAP_REGISTER_BASE | undefined;
    atDispatch(() => {
      ops.InitializeDmaTransferContext(adapter, context);
      base = ops.AllocateAdapterChannelEx(
        adapter,
        pdo,
        context,
        4,
        DMA_SYNCHRONOUS_CALLBACK,
        () => DeallocateObjectKeepRegisters,
        undefined,
        false,
      ).MapRegisterBase;
    });
    expect(base).toBeUndefined();
    expect(verifier.report()[0]!.outstanding.map((site) => site.kind)).toEqual(["map registers"]);
  });
});
