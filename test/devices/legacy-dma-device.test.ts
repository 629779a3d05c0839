import { describe, expect, it } from "vitest";
import { LegacyDmaDevice } from "../../src/devices/legacy-dma-device.js";
import {
  LegacyDmaControl,
  LegacyDmaRegister,
  LegacyDmaStatus,
} from "../../src/devices/legacy-dma-registers.js";
import { FaultReason } from "../../src/iommu/fault-reason.js";
import { GiB, MiB, PAGE_SIZE } from "../../src/platform/page.js";
import { PlatformError } from "../../src/platform/platform-error.js";
import { type TestMachine, testBytes } from "../../src/testing/index.js";
import { countInterrupts, makeRig, plug } from "./device-rig.js";

/** Programs one transfer the way a driver written for a 64-bit register pair would. */
function program(
  rig: TestMachine,
  device: LegacyDmaDevice,
  address: number,
  length: number,
  toMemory: boolean,
): void {
  rig.mmioWrite(device, LegacyDmaRegister.address, address % 2 ** 32);
  rig.mmioWrite(device, LegacyDmaRegister.addressHigh, Math.floor(address / 2 ** 32));
  rig.mmioWrite(device, LegacyDmaRegister.length, length);
  rig.mmioWrite(
    device,
    LegacyDmaRegister.control,
    LegacyDmaControl.start | (toMemory ? LegacyDmaControl.toMemory : 0),
  );
}

describe("LegacyDmaDevice (32-bit, no scatter/gather)", () => {
  it("moves a buffer to memory and back, with BUSY, DONE and an interrupt", () => {
    const rig = makeRig();
    const device = plug(rig, new LegacyDmaDevice());
    const irq = countInterrupts(rig, device);
    const data = testBytes(10_000, 3);
    device.load(data);
    program(rig, device, 0x30_0000, data.length, true);
    expect(rig.mmioRead(device, LegacyDmaRegister.status)).toBe(LegacyDmaStatus.busy);
    rig.scheduler.runUntilIdle();
    expect(rig.mmioRead(device, LegacyDmaRegister.status)).toBe(LegacyDmaStatus.done);
    expect(rig.mmioRead(device, LegacyDmaRegister.bytesDone)).toBe(data.length);
    expect(rig.mmioRead(device, LegacyDmaRegister.control) & LegacyDmaControl.start).toBe(0);
    expect(rig.readPhysical(0x30_0000, data.length)).toEqual(data);
    expect(irq.count).toBe(1);

    rig.mmioWrite(device, LegacyDmaRegister.status, LegacyDmaStatus.done);
    expect(rig.mmioRead(device, LegacyDmaRegister.status)).toBe(0);
    rig.memory.write(0x50_0000, testBytes(4096, 8));
    program(rig, device, 0x50_0000, 4096, false);
    rig.scheduler.runUntilIdle();
    expect(device.contents(4096)).toEqual(testBytes(4096, 8));
  });

  it("loses the upper address bits: a buffer at 4 GiB + 2 MiB is written at 2 MiB instead", () => {
    const rig = makeRig();
    const device = plug(rig, new LegacyDmaDevice());
    const intended = 4 * GiB + 2 * MiB;
    const kernelData = testBytes(8192, 77);
    rig.memory.write(2 * MiB, kernelData);
    device.load(testBytes(8192, 1));
    program(rig, device, intended, 8192, true);
    rig.scheduler.runUntilIdle();

    expect(rig.mmioRead(device, LegacyDmaRegister.addressHigh)).toBe(0);
    expect(rig.mmioRead(device, LegacyDmaRegister.address)).toBe(2 * MiB);
    expect(rig.mmioRead(device, LegacyDmaRegister.status)).toBe(LegacyDmaStatus.done);
    // The driver's buffer never got the data...
    expect(rig.readPhysical(intended, 8192).every((b) => b === 0)).toBe(true);
    // ...and whatever lived at 2 MiB was overwritten.
    expect(rig.readPhysical(2 * MiB, 8192)).toEqual(testBytes(8192, 1));
    expect(rig.readPhysical(2 * MiB, 8192)).not.toEqual(kernelData);
  });

  it("wraps its 32-bit address counter at 4 GiB", () => {
    const rig = makeRig({ memory: 4 * GiB, mmioHoleStart: 4 * GiB });
    const device = plug(rig, new LegacyDmaDevice());
    const data = testBytes(3 * PAGE_SIZE, 5);
    device.load(data);
    program(rig, device, 4 * GiB - PAGE_SIZE, data.length, true);
    rig.scheduler.runUntilIdle();
    expect(rig.mmioRead(device, LegacyDmaRegister.status)).toBe(LegacyDmaStatus.done);
    expect(rig.readPhysical(4 * GiB - PAGE_SIZE, PAGE_SIZE)).toEqual(data.subarray(0, PAGE_SIZE));
    expect(rig.readPhysical(0, 2 * PAGE_SIZE)).toEqual(data.subarray(PAGE_SIZE));
  });

  it("reports a faulting transfer with DMA_ERROR, the bytes moved, and an interrupt", () => {
    const rig = makeRig();
    rig.injectDmaError({ address: 0x30_0000 + 2 * PAGE_SIZE });
    const device = plug(rig, new LegacyDmaDevice());
    const irq = countInterrupts(rig, device);
    device.load(testBytes(4 * PAGE_SIZE, 2));
    program(rig, device, 0x30_0000, 4 * PAGE_SIZE, true);
    rig.scheduler.runUntilIdle();
    expect(rig.mmioRead(device, LegacyDmaRegister.status)).toBe(
      LegacyDmaStatus.done | LegacyDmaStatus.dmaError,
    );
    expect(rig.mmioRead(device, LegacyDmaRegister.bytesDone)).toBe(2 * PAGE_SIZE);
    expect(irq.count).toBe(1);
    expect(device.dmaErrors[0]).toMatchObject({
      during: "write to memory",
      result: { kind: "iommu-fault", faultReason: FaultReason.WriteNotPermitted, bytesDone: 2 * PAGE_SIZE },
    });
    expect(device.stats.failedTransfers).toBe(1);
  });

  it("reports a transfer into the MMIO hole as a DMA error", () => {
    const rig = makeRig();
    const device = plug(rig, new LegacyDmaDevice());
    program(rig, device, 3 * GiB, 512, false);
    rig.scheduler.runUntilIdle();
    expect(rig.mmioRead(device, LegacyDmaRegister.status)).toBe(
      LegacyDmaStatus.done | LegacyDmaStatus.dmaError,
    );
    expect(device.dmaErrors[0]!.result.kind).toBe("unassigned");
    expect(device.contents(512).every((b) => b === 0xff)).toBe(true);
  });

  it("refuses a zero or oversized length with LENGTH_ERROR and moves nothing", () => {
    const rig = makeRig();
    const device = plug(rig, new LegacyDmaDevice({ bufferSize: 4096 }));
    program(rig, device, 0x30_0000, 8192, true);
    rig.scheduler.runUntilIdle();
    expect(rig.mmioRead(device, LegacyDmaRegister.status)).toBe(
      LegacyDmaStatus.done | LegacyDmaStatus.lengthError,
    );
    expect(rig.mmioRead(device, LegacyDmaRegister.bytesDone)).toBe(0);
  });

  it("ignores register writes while busy and rejects bad host-side buffer access", () => {
    const rig = makeRig();
    const device = plug(rig, new LegacyDmaDevice({ bufferSize: 4096 }));
    program(rig, device, 0x30_0000, 4096, true);
    rig.mmioWrite(device, LegacyDmaRegister.address, 0x40_0000);
    expect(rig.mmioRead(device, LegacyDmaRegister.address)).toBe(0x30_0000);
    rig.scheduler.runUntilIdle();
    expect(() => device.load(new Uint8Array(10), 4090)).toThrow(PlatformError);
    expect(() => device.contents(5000)).toThrow(PlatformError);
  });
});
