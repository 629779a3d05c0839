import { describe, expect, it } from "vitest";
import { FaultReason } from "../../src/iommu/fault-reason.js";
import { GiB, PAGE_SIZE } from "../../src/platform/page.js";
import { PlatformError } from "../../src/platform/platform-error.js";
import { pattern, RemapRig, sameBytes } from "./remap-fixture.js";

describe("RemapMapping transfers", () => {
  it("always uses map registers: an IOVA window of the requested size", () => {
    const rig = new RemapRig("strict");
    const adapter = rig.open(rig.plug());
    expect(rig.remap.needsMapRegisters(adapter)).toBe(true);
    const file = rig.remap.tryAllocateMapRegisters(adapter, 5)!;
    expect(file.count).toBe(5);
    expect(rig.remap.resources()).toMatchObject({ mapRegisters: 5, iovaPages: 8 });
    rig.remap.freeMapRegisters(file);
    expect(rig.remap.resources()).toMatchObject({ mapRegisters: 0, iovaPages: 0 });
  });

  it("maps a fragmented buffer as ONE logical run the device reads in one access", () => {
    const rig = new RemapRig("strict");
    const device = rig.plug();
    const adapter = rig.open(device, { scatterGather: true });
    const data = pattern(8 * PAGE_SIZE, 1);
    const { mdl } = rig.buffer(8 * PAGE_SIZE, data);
    const contiguous = mdl.pfns.every((pfn, i) => i === 0 || pfn === mdl.pfns[i - 1]! + 1);
    expect(contiguous).toBe(false);

    const offset = 100;
    const length = 8 * PAGE_SIZE - 300;
    const file = rig.remap.tryAllocateMapRegisters(adapter, 9)!;
    const piece = rig.remap.mapTransfer(adapter, file, mdl, mdl.virtualAddress + offset, length, true);
    expect(piece.length).toBe(length);
    expect(piece.logicalAddress % PAGE_SIZE).toBe(offset);
    const { result, bytes } = device.read(piece.logicalAddress, length);
    expect(result.ok).toBe(true);
    expect(sameBytes(bytes, data.subarray(offset, offset + length))).toBe(true);
    expect(rig.machine.counters.get("hal.swiotlb.bounce")).toBe(0);

    rig.remap.flushAdapterBuffers(adapter, file, mdl, mdl.virtualAddress + offset, length, true);
    rig.remap.freeMapRegisters(file);
  });

  it("gives a 32-bit device memory above 4 GiB without bouncing", () => {
    const rig = new RemapRig("strict");
    const device = rig.plug();
    const adapter = rig.open(device, { addressBits: 32 });
    const high = rig.highBuffer(4, new Uint8Array(4 * PAGE_SIZE));
    expect(Math.min(...high.pfns) * PAGE_SIZE).toBeGreaterThanOrEqual(4 * GiB);

    const file = rig.remap.tryAllocateMapRegisters(adapter, 4)!;
    const piece = rig.remap.mapTransfer(
      adapter,
      file,
      high.mdl,
      high.mdl.virtualAddress,
      4 * PAGE_SIZE,
      false,
    );
    expect(piece.logicalAddress + piece.length - 1).toBeLessThan(4 * GiB);
    const data = pattern(4 * PAGE_SIZE, 2);
    expect(device.write(piece.logicalAddress, data).ok).toBe(true);
    rig.remap.flushAdapterBuffers(adapter, file, high.mdl, high.mdl.virtualAddress, 4 * PAGE_SIZE, false);
    rig.remap.freeMapRegisters(file);

    expect(sameBytes(rig.read(high.va, 4 * PAGE_SIZE), data)).toBe(true);
    expect(rig.machine.counters.get("hal.swiotlb.bounce")).toBe(0);
    expect(rig.remap.resources().bouncePages).toBe(0);
  });

  it("lets the device only read what it sends and only write what it fills", () => {
    const rig = new RemapRig("strict");
    const device = rig.plug();
    const adapter = rig.open(device);
    const { mdl } = rig.buffer(PAGE_SIZE, pattern(PAGE_SIZE, 3));
    const file = rig.remap.tryAllocateMapRegisters(adapter, 1)!;
    const toDevice = rig.remap.mapTransfer(adapter, file, mdl, mdl.virtualAddress, PAGE_SIZE, true);
    const write = device.write(toDevice.logicalAddress, new Uint8Array(16));
    expect(write.ok).toBe(false);
    expect(write.ok ? 0 : write.faultReason).toBe(FaultReason.WriteNotPermitted);
    rig.remap.flushAdapterBuffers(adapter, file, mdl, mdl.virtualAddress, PAGE_SIZE, true);

    const fromDevice = rig.remap.mapTransfer(adapter, file, mdl, mdl.virtualAddress, PAGE_SIZE, false);
    const read = device.read(fromDevice.logicalAddress, 16).result;
    expect(read.ok ? 0 : read.faultReason).toBe(FaultReason.ReadNotPermitted);
    rig.remap.flushAdapterBuffers(adapter, file, mdl, mdl.virtualAddress, PAGE_SIZE, false);
    rig.remap.freeMapRegisters(file);
  });

  it("splits a transfer larger than the window over several map/flush rounds", () => {
    const rig = new RemapRig("lazy");
    const device = rig.plug();
    const adapter = rig.open(device, { scatterGather: false });
    const data = pattern(12 * PAGE_SIZE, 4);
    const { mdl } = rig.buffer(12 * PAGE_SIZE);
    const file = rig.remap.tryAllocateMapRegisters(adapter, 5)!;
    const logicals = new Set<number>();
    for (let done = 0; done < data.length; ) {
      const length = Math.min(5 * PAGE_SIZE, data.length - done);
      const va = mdl.virtualAddress + done;
      const piece = rig.remap.mapTransfer(adapter, file, mdl, va, length, false);
      expect(piece.length).toBe(length);
      logicals.add(piece.logicalAddress);
      expect(device.write(piece.logicalAddress, data.subarray(done, done + length)).ok).toBe(true);
      rig.remap.flushAdapterBuffers(adapter, file, mdl, va, length, false);
      done += length;
    }
    // Lazy: each round took fresh IOVA, none reused before the flush queue's invalidation.
    expect(logicals.size).toBe(3);
    rig.remap.freeMapRegisters(file);
    expect(sameBytes(rig.read(mdl.virtualAddress, data.length), data)).toBe(true);
  });

  it("gives a scatter/gather adapter what fits and refuses a non-S/G piece that does not", () => {
    const rig = new RemapRig("strict");
    const device = rig.plug();
    const sg = rig.open(device, { scatterGather: true });
    const { mdl } = rig.buffer(4 * PAGE_SIZE);
    const file = rig.remap.tryAllocateMapRegisters(sg, 2)!;
    const piece = rig.remap.mapTransfer(sg, file, mdl, mdl.virtualAddress + 10, 4 * PAGE_SIZE - 10, true);
    expect(piece.length).toBe(2 * PAGE_SIZE - 10);
    expect(() => rig.remap.mapTransfer(sg, file, mdl, mdl.virtualAddress + piece.length, 10, true)).toThrow(
      PlatformError,
    );
    rig.remap.flushAdapterBuffers(sg, file, mdl, mdl.virtualAddress, 4 * PAGE_SIZE, true);
    rig.remap.freeMapRegisters(file);

    const plain = rig.open(rig.plug("plain"), { scatterGather: false });
    const small = rig.remap.tryAllocateMapRegisters(plain, 2)!;
    expect(() => rig.remap.mapTransfer(plain, small, mdl, mdl.virtualAddress, 3 * PAGE_SIZE, true)).toThrow(
      /needs 3 map registers/,
    );
    expect(small.bytesMapped).toBe(0);
    rig.remap.freeMapRegisters(small);
  });

  it("rejects bad pieces and handles without changing anything", () => {
    const rig = new RemapRig("strict");
    const adapter = rig.open(rig.plug());
    const { mdl } = rig.buffer(PAGE_SIZE);
    const file = rig.remap.tryAllocateMapRegisters(adapter, 1)!;
    const before = rig.remap.resources();
    expect(() => rig.remap.mapTransfer(adapter, file, mdl, mdl.virtualAddress - 1, 10, true)).toThrow(
      PlatformError,
    );
    expect(() => rig.remap.mapTransfer(adapter, file, mdl, mdl.virtualAddress, PAGE_SIZE + 1, true)).toThrow(
      PlatformError,
    );
    expect(() => rig.remap.mapTransfer(adapter, file, mdl, mdl.virtualAddress, 0, true)).toThrow(
      PlatformError,
    );
    expect(() => rig.remap.tryAllocateMapRegisters(adapter, 0)).toThrow(PlatformError);
    expect(rig.remap.resources()).toEqual(before);
    expect(file.bytesMapped).toBe(0);
    rig.remap.freeMapRegisters(file);
    expect(() => rig.remap.freeMapRegisters(file)).toThrow(PlatformError);
  });

  it("through DMA_OPERATIONS: a fragmented buffer above 4 GiB is one element a 32-bit device uses", () => {
    // 16 MiB of RAM below 4 GiB, the rest above: pool pages land above 4 GiB.
    const rig = new RemapRig("lazy", { memory: 16 * GiB, mmioHoleStart: 16 * 1024 * 1024 });
    const device = rig.plug();
    const { adapter, pdo } = rig.ioGetDmaAdapter(device, {
      Dma64BitAddresses: false,
      Dma32BitAddresses: true,
    });
    const ops = adapter.DmaOperations;
    const data = pattern(16 * PAGE_SIZE, 14);
    const high = rig.buffer(16 * PAGE_SIZE, data);
    const pfns = high.mdl.pfns;
    expect(Math.min(...pfns) * PAGE_SIZE).toBeGreaterThanOrEqual(4 * GiB);
    expect(pfns.every((pfn, i) => i === 0 || pfn === pfns[i - 1]! + 1)).toBe(false);
    let elements: readonly { Address: number; Length: number }[] = [];
    rig.atDispatch(() => {
      const status = ops.GetScatterGatherList(
        adapter,
        pdo,
        high.mdl,
        high.va + 10,
        16 * PAGE_SIZE - 20,
        (_device, _irp, sgl) => {
          elements = sgl.Elements;
          const { result, bytes } = device.read(sgl.Elements[0]!.Address, sgl.Elements[0]!.Length);
          expect(result.ok).toBe(true);
          expect(sameBytes(bytes, data.subarray(10, 16 * PAGE_SIZE - 10))).toBe(true);
          ops.PutScatterGatherList(adapter, sgl, true);
        },
        undefined,
        true,
      );
      expect(status).toBe(0);
    });
    expect(elements).toHaveLength(1);
    expect(elements[0]!.Address + elements[0]!.Length).toBeLessThanOrEqual(4 * GiB);
    expect(
      rig.machine.counters.get("hal.swiotlb.bounce") + rig.machine.counters.get("hal.bounce.bytes"),
    ).toBe(0);
  });
});
