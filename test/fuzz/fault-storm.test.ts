/**
 * A fault storm: a rogue multi-function card (16 requester ids) writes a million times into IOVA
 * nobody mapped, under strict remapping with the verifier watching one of its functions in log
 * mode. The IOMMU's fault log stays at its 8 records with the overflow flag (PFO) set, the
 * verifier's log stays at its bound while counting every fault, host memory stays flat, and the
 * machine goes on: software services the log, and a driver's transfer on another device works.
 */
import { describe, expect, it } from "vitest";
import { Hal } from "../../src/hal/hal.js";
import {
  DEVICE_DESCRIPTION_VERSION2,
  PCIBus,
  zeroedDeviceDescription,
} from "../../src/hal/wdm/device-description.js";
import { FSTS_PFO } from "../../src/iommu/fault-recorder.js";
import { PciDevice } from "../../src/platform/pci-device.js";
import { VerifierCode } from "../../src/verifier/violation-codes.js";
import { testPattern } from "../verifier/dma-test-device.js";
import { CorrectDriver } from "../verifier/drivers/correct-driver.js";
import { VerifierRig } from "../verifier/verifier-rig.js";

const FAULTS = 1_000_000;
const FUNCTIONS = 16;
const MAX_VIOLATIONS = 100;

class RogueFunction extends PciDevice {
  constructor(index: number) {
    super(
      { name: `rogue-${index}`, vendorId: 0xbad0, deviceId: 0x0001, classCode: 0xff0000 },
      { barSize: 4096 },
    );
  }

  /** `count` 8-byte writes at IOVA 0x7000_0000 + k * 4 KiB, none of them mapped. */
  storm(count: number): number {
    const bytes = new Uint8Array(8).fill(0xcc);
    let failed = 0;
    for (let i = 0; i < count; i++) {
      if (!this.port.write(0x7000_0000 + (i % 1024) * 4096, bytes).ok) failed++;
    }
    return failed;
  }

  protected registerValue(): number {
    return 0;
  }

  protected onRegisterWrite(): void {}
}

describe("fault storm", () => {
  it("a million faults: the fault log stays bounded with PFO set, memory stays flat, the machine works", () => {
    const rig = new VerifierRig(CorrectDriver, {
      machine: { remapping: "strict" },
      verifier: { mode: "log", maxViolations: MAX_VIOLATIONS },
    });
    const functions = Array.from({ length: FUNCTIONS }, (_, i) => new RogueFunction(i));
    for (const [i, device] of functions.entries()) {
      rig.machine.pci.attach(device, { bus: 3, device: Math.floor(i / 8), function: i % 8, busMaster: true });
    }
    // The verifier watches the card's first function: it gets an adapter (and so a domain).
    const description = {
      ...zeroedDeviceDescription(),
      Version: DEVICE_DESCRIPTION_VERSION2,
      Master: true,
      ScatterGather: true,
      Dma64BitAddresses: true,
      InterfaceType: PCIBus,
      MaximumLength: 65536,
    };
    const pdo = {
      DriverObject: undefined,
      DeviceExtension: {},
      CurrentIrp: undefined,
      AlignmentRequirement: 0,
      Flags: 0,
      NextDevice: undefined,
      AttachedDevice: undefined,
      DeviceObjectExtension: { requesterId: functions[0]!.requesterId, external: false },
    };
    expect(rig.machine.get(Hal).getDmaAdapter(pdo, description).Adapter).toBeDefined();
    const touched = rig.machine.memory.touchedFrames;
    const heapBefore = process.memoryUsage().heapUsed;

    let failed = 0;
    for (const device of functions) failed += device.storm(FAULTS / FUNCTIONS);

    expect(failed).toBe(FAULTS);
    const unit = rig.machine.iommu.unitFor(functions[0]!.requesterId);
    expect(unit.faults.status & FSTS_PFO).toBe(FSTS_PFO);
    expect(rig.machine.counters.get("iommu.fault")).toBe(FAULTS);
    expect(rig.machine.counters.get("iommu.fault.recorded")).toBe(unit.faults.size);
    // Every fault of the watched function was seen; only the first MAX_VIOLATIONS are kept.
    const verifier = rig.verifier!;
    expect(verifier.violationCount).toBe(FAULTS / FUNCTIONS);
    expect(verifier.violations).toHaveLength(MAX_VIOLATIONS);
    expect(verifier.violations[0]!.code).toBe(VerifierCode.iommuViolation);
    // Nothing grew with the storm: no frame of simulated RAM, and (roughly) no host heap.
    expect(rig.machine.memory.touchedFrames).toBe(touched);
    expect(process.memoryUsage().heapUsed - heapBefore).toBeLessThan(64 * 1024 * 1024);

    // Software services the log (Linux dmar_fault): 8 records, then the unit records again.
    const records = rig.machine.iommu.serviceFaults();
    expect(records).toHaveLength(unit.faults.size);
    expect(unit.faults.status & FSTS_PFO).toBe(0);
    expect(functions[0]!.storm(1)).toBe(1);
    expect(rig.machine.counters.get("iommu.fault.recorded")).toBe(unit.faults.size + 1);

    // And the machine works: a driver's read on another device arrives intact.
    const buffer = rig.poolBuffer(3000);
    const irp = rig.read(buffer);
    expect(irp.IoStatus.Status).toBe(0);
    expect(rig.bytes(buffer)).toEqual(testPattern(0x40, 3000));
  }, 120_000);
});
