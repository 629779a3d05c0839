import { describe, expect, it } from "vitest";
import { DriverContribution } from "../../src/ddi/driver.js";
import {
  ContainerModule,
  DEVICE_DESCRIPTION_VERSION,
  type DMA_ADAPTER,
  type DRIVER_OBJECT,
  DRIVER_VERIFIER_DMA_VIOLATION,
  injectable,
  PCIBus,
  STATUS_SUCCESS,
  zeroedDeviceDescription,
} from "../../src/ddi/index.js";
import { GiB, MiB, PAGE_SIZE } from "../../src/platform/page.js";
import { PlatformError } from "../../src/platform/platform-error.js";
import {
  createTestMachine,
  forEachMode,
  LeakError,
  ScriptableCommand,
  ScriptableDevice,
  ScriptableRegister,
  type TestMachine,
  testMachine,
} from "../../src/testing/index.js";
import sensorModule from "../tutorial/drivers/sensor-module.js";

/** An adapter for `device` taken straight from IoGetDmaAdapter, as a driver's START would. */
function adapterFor(t: TestMachine, device: ScriptableDevice): DMA_ADAPTER {
  t.io.enumerate();
  const description = zeroedDeviceDescription();
  description.Version = DEVICE_DESCRIPTION_VERSION;
  description.Master = true;
  description.ScatterGather = true;
  description.Dma64BitAddresses = true;
  description.InterfaceType = PCIBus;
  description.MaximumLength = 64 * 1024;
  return t.kernel.IoGetDmaAdapter(t.node(device).pdo, description).Adapter!;
}

/** The LeakError dispose() throws, or a failure if it throws nothing. */
function leakError(t: TestMachine): LeakError {
  try {
    t.dispose();
  } catch (error) {
    if (error instanceof LeakError) return error;
    throw error;
  }
  throw new Error("dispose() found no leak");
}

@injectable()
class NoUnloadDriver implements DriverContribution {
  readonly serviceName = "sticky";
  readonly hardwareIds = ["PCI\\VEN_1B36&DEV_7E57"];

  DriverEntry(_driver: DRIVER_OBJECT): number {
    return STATUS_SUCCESS;
  }
}

describe("TestMachine", () => {
  it("builds the machine from the options people vary", () => {
    const t = testMachine({
      memory: 512 * MiB,
      mmioHoleStart: 256 * MiB,
      remapping: "lazy",
      coherent: false,
      seed: 9,
    });
    expect(t.mode).toBe("lazy");
    expect(t.memory.ranges).toEqual([
      { start: 0, end: 256 * MiB },
      { start: 4 * GiB, end: 4 * GiB + 256 * MiB },
    ]);
    expect(t.machine.options.platform).toMatchObject({ coherent: false, seed: 9 });
    expect(t.iommu.translationEnabled).toBe(true);
  });

  it("places buffers the same way for the same seed, and where the options say", () => {
    const placed = (seed: number): number[] => {
      const t = createTestMachine({ seed });
      const pfns = [...t.buffer(3 * PAGE_SIZE).pfns];
      t.dispose();
      return pfns;
    };
    expect(placed(5)).toEqual(placed(5));
    expect(placed(5)).not.toEqual(placed(6));
    const t = testMachine();
    const high = t.buffer(100, { minAddress: 4 * GiB, offset: 96, fill: 0xab });
    expect(high.physicalAddress()).toBeGreaterThanOrEqual(4 * GiB);
    expect(high.mdl.byteOffset).toBe(96);
    expect(high.read()).toEqual(new Uint8Array(100).fill(0xab));
  });

  it("gives everything back at dispose when nothing leaked, and frees its buffers", () => {
    const t = createTestMachine({ remapping: "strict" });
    const device = t.plug(new ScriptableDevice());
    const adapter = adapterFor(t, device);
    const buffer = t.buffer(2 * PAGE_SIZE);
    const common = adapter.DmaOperations.AllocateCommonBuffer(adapter, PAGE_SIZE, true);
    adapter.DmaOperations.FreeCommonBuffer(
      adapter,
      PAGE_SIZE,
      common.LogicalAddress,
      common.VirtualAddress,
      true,
    );
    adapter.DmaOperations.PutDmaAdapter(adapter);
    expect(t.leaks()).toEqual([]);
    t.dispose();
    expect(buffer.freed).toBe(true);
    expect(t.frames.framesOwnedBy(buffer.owner)).toBe(0);
    expect(() => t.dispose()).not.toThrow();
  });

  it("names every leak: adapter, common buffer, IOVA, frames, pool", () => {
    const t = createTestMachine({ remapping: "strict" });
    const adapter = adapterFor(t, t.plug(new ScriptableDevice()));
    adapter.DmaOperations.AllocateCommonBuffer(adapter, 3 * PAGE_SIZE, true);
    t.kernel.ExAllocatePoolWithTag(0, 48, "Oops");
    const error = leakError(t);
    expect(error.leaks.map((leak) => leak.kind)).toEqual([
      "adaptersOpen",
      "iovaPages",
      "commonBuffers",
      "frames",
      "pool",
    ]);
    expect(error.message).toContain("1 DMA adapter(s) not released with PutDmaAdapter");
    expect(error.message).toContain('3 frame(s) of "hal.common-buffer" not freed');
    expect(error.message).toContain('1 pool block(s) not freed: "Oops"');
  });

  it("unloads drivers first, and reports a driver that cannot be unloaded and an IRQL left raised", () => {
    const t = createTestMachine({
      modules: [
        new ContainerModule(({ bind }) => {
          bind(NoUnloadDriver).toSelf().inSingletonScope();
          bind(DriverContribution).toService(NoUnloadDriver);
        }),
      ],
    });
    t.plug(new ScriptableDevice());
    t.loadDrivers();
    t.kernel.KeRaiseIrqlToDpcLevel();
    const error = leakError(t);
    expect(error.leaks.map((leak) => leak.kind)).toEqual(["irql", "drivers"]);
    expect(error.message).toMatch(/IRQL was left at 2/);
    expect(error.message).toMatch(/\\Driver\\sticky has no DriverUnload/);
  });

  it("reports the interrupt of a driven device still connected after its driver left", () => {
    const t = createTestMachine({ modules: [sensorModule] });
    const device = t.plug(new ScriptableDevice());
    t.loadDrivers();
    t.kernel.IoDisconnectInterrupt = () => {};
    expect(leakError(t).message).toContain(
      `interrupt line ${device.interruptLine} of scriptable device is still connected`,
    );
  });

  it("checks nothing when told so", () => {
    const t = createTestMachine({ leakCheck: false });
    t.kernel.ExAllocatePoolWithTag(0, 48, "Oops");
    expect(() => t.dispose()).not.toThrow();
    const u = createTestMachine({ leakCheck: { ignoreOwners: ["iommu", "contiguous-memory"] } });
    u.kernel.MmAllocateContiguousMemory(PAGE_SIZE, 4 * GiB - 1);
    expect(() => u.dispose()).not.toThrow();
  });

  it("controls virtual time: advance, run until an event, run until a condition", () => {
    const t = testMachine({ remapping: "off" });
    const device = t.plug(new ScriptableDevice({ latencyNs: 1000 }), { busMaster: true });
    device.onDoorbell([{ op: "stall", ns: 9000 }, { op: "complete" }, { op: "interrupt" }]);
    t.mmioWrite(device, ScriptableRegister.doorbell, ScriptableCommand.toDevice);
    t.advance(500);
    expect(t.now).toBe(500);
    expect(device.interrupts).toEqual([]);
    const event = t.runUntilEvent("scheduler.interrupt", (e) => e.line === device.interruptLine);
    expect(event.time).toBe(10_000);
    expect(() => t.runUntilEvent("pci.attach", () => true, { limitNs: 1000 })).toThrow(
      /waited for event "pci.attach", but 1000 ns passed first/,
    );
    expect(() => t.runUntil(() => false, "a miracle")).toThrow(
      /waited for a miracle, but the machine went idle first/,
    );
  });

  it("injects DMA errors at the port: by requester, access and count, never as IOMMU faults", () => {
    const t = testMachine({ remapping: "off" });
    const device = t.plug(new ScriptableDevice(), { busMaster: true });
    const other = t.plug(new ScriptableDevice({ name: "other" }), { busMaster: true });
    const injected = t.injectDmaError({
      requesterId: device.requesterId,
      address: 0x10_0000,
      length: 2 * PAGE_SIZE,
      access: "read",
      reason: 9,
      times: 1,
    });
    for (const d of [device, device, other]) {
      d.onDoorbell([{ op: "read", address: 0x10_1000, length: 8 }, { op: "complete" }]);
      t.mmioWrite(d, ScriptableRegister.doorbell, ScriptableCommand.toDevice);
      t.runUntilIdle();
    }
    expect(device.accesses.map((a) => a.result.ok)).toEqual([false, true]);
    expect(device.accesses[0]!.result).toMatchObject({ kind: "iommu-fault", faultReason: 9 });
    expect(other.accesses[0]!.result.ok).toBe(true);
    expect(injected.hits).toBe(1);
    expect(t).toHaveNoIommuFaults();
    expect(() => t.injectDmaError({ address: -4 })).toThrow(PlatformError);
  });

  it("snapshots memory except the given buffers and the machine's own structures", () => {
    const t = testMachine({ remapping: "strict" });
    const mine = t.buffer(64);
    const theirs = t.buffer(64);
    const snapshot = t.snapshot({ except: [mine] });
    mine.write(new Uint8Array([1, 2, 3]));
    expect(snapshot).toBeUnchanged();
    theirs.write(new Uint8Array([4]));
    expect(snapshot.changedFrames().map((c) => c.ownerName)).toEqual([t.frames.ownerName(theirs.owner)]);
  });

  it("loads the verifier when asked: it stops a driver that releases an adapter still holding a buffer", () => {
    const t = testMachine({ remapping: "strict", verifier: true, leakCheck: false });
    const adapter = adapterFor(t, t.plug(new ScriptableDevice()));
    adapter.DmaOperations.AllocateCommonBuffer(adapter, PAGE_SIZE, true);
    expect(() => adapter.DmaOperations.PutDmaAdapter(adapter)).toThrowBugCheck(
      DRIVER_VERIFIER_DMA_VIOLATION,
      [0x07],
    );
    expect(t.verifier.violationCount).toBe(1);
    expect(() => testMachine().verifier).toThrow(/no verifier/);
  });
});

const seen: string[] = [];
forEachMode((mode) => {
  it("runs the body once per remapping mode", () => {
    seen.push(mode);
    expect(testMachine({ remapping: mode }).mode).toBe(mode);
    expect(seen).toEqual(["off", "passthrough", "strict", "lazy"].slice(0, seen.length));
  });
});
