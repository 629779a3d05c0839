/**
 * The copy service with the DMA engine driver: what a caller of `copy` notices (data, method,
 * reason, completion), in every remapping mode, with fallbacks, failures and bad input. Each test
 * machine checks for leaks when the test ends, after the drivers are unloaded.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { DmaEngineDriver } from "../../drivers/dma-engine/dma-engine-driver.js";
import dmaEngineModule from "../../drivers/dma-engine/dma-engine-module.js";
import { DmaEngineDevice } from "../../src/devices/dma-engine-device.js";
import { NT_SUCCESS, STATUS_IO_DEVICE_ERROR } from "../../src/hal/wdm/ntstatus.js";
import type { RemappingMode } from "../../src/machine/machine-options.js";
import type { DmaCopyOptions } from "../../src/offload/dma-copy-options.js";
import type { DmaCopyResult } from "../../src/offload/dma-copy-result.js";
import { DmaCopyService } from "../../src/offload/dma-copy-service.js";
import { offloadModule } from "../../src/offload/offload-module.js";
import { Irql } from "../../src/platform/irql.js";
import { MiB } from "../../src/platform/page.js";
import { PlatformError } from "../../src/platform/platform-error.js";
import {
  forEachMode,
  type TestBuffer,
  type TestMachine,
  testBytes,
  testMachine,
} from "../../src/testing/index.js";

interface Rig {
  readonly t: TestMachine;
  readonly copies: DmaCopyService;
  readonly engine: DmaEngineDevice | undefined;
}

function rig(
  mode: RemappingMode,
  setup: { engine?: boolean; driver?: boolean; channels?: number; coherent?: boolean } = {},
  options: DmaCopyOptions = {},
): Rig {
  const driver = setup.driver ?? true;
  const t = testMachine({
    remapping: mode,
    memory: 256 * MiB,
    coherent: setup.coherent ?? true,
    modules: driver ? [dmaEngineModule, offloadModule(options)] : [offloadModule(options)],
  });
  const engine =
    (setup.engine ?? true) ? t.plug(new DmaEngineDevice({ channels: setup.channels ?? 2 })) : undefined;
  t.loadDrivers();
  return { t, copies: t.get(DmaCopyService), engine };
}

function pair(t: TestMachine, length: number, seed: number): { source: TestBuffer; destination: TestBuffer } {
  return { source: t.buffer(length, { fill: testBytes(length, seed) }), destination: t.buffer(length) };
}

async function settle(t: TestMachine, results: readonly Promise<DmaCopyResult>[]): Promise<DmaCopyResult[]> {
  t.runUntilIdle();
  return Promise.all(results);
}

describe("DmaCopyService with the DMA engine", () => {
  forEachMode((mode) => {
    it("copies on an idle engine channel; the callback runs, then the promise resolves", async () => {
      const { t, copies } = rig(mode);
      const { source, destination } = pair(t, 300_000, 1);
      const seen: DmaCopyResult[] = [];
      const promise = copies.copy(destination.va, source.va, 300_000, { onComplete: (r) => seen.push(r) });
      const [result] = await settle(t, [promise]);
      expect(result).toMatchObject({ method: "engine", reason: "engine", bytes: 300_000 });
      expect(NT_SUCCESS(result!.status)).toBe(true);
      expect(result!.channel).toMatch(/^\\Device\\DmaEngine0 ch[01]$/);
      expect(seen).toEqual([result]);
      expect(destination.read()).toEqualBytes(source.read());
      expect(t.iommuFaults).toEqual([]);
      // The lists went back when the copy completed: nothing stays mapped.
      expect(t.hal.resources().scatterGatherLists).toBe(0);
    });

    it("copies buffers larger than the ring and than one mapping segment", async () => {
      const { t, copies, engine } = rig(mode);
      const length = 9 * MiB + 123;
      const { source, destination } = pair(t, length, 2);
      const [result] = await settle(t, [copies.copy(destination.va, source.va, length)]);
      expect(result!.method).toBe("engine");
      expect(destination.read()).toEqualBytes(source.read());
      expect(engine!.stats.bytes).toBe(length);
    });
  });

  it("uses physical addresses without remapping and IOVAs with it: one descriptor per page vs per MiB", async () => {
    const descriptors = async (mode: RemappingMode): Promise<number> => {
      const { t, copies, engine } = rig(mode);
      const { source, destination } = pair(t, MiB, 3);
      await settle(t, [copies.copy(destination.va, source.va, MiB)]);
      expect(destination.read()).toEqualBytes(source.read());
      return engine!.stats.descriptors;
    };
    expect(await descriptors("off")).toBe(256);
    expect(await descriptors("strict")).toBe(1);
  });

  it("falls back to the CPU when every channel is busy, and says so", async () => {
    const { t, copies } = rig("strict", { channels: 2 });
    const buffers = Array.from({ length: 5 }, (_, i) => pair(t, 64 * 1024, 10 + i));
    const results = await settle(
      t,
      buffers.map(({ source, destination }) => copies.copy(destination.va, source.va, 64 * 1024)),
    );
    expect(results.map((r) => r.reason)).toEqual([
      "engine",
      "engine",
      "channels-busy",
      "channels-busy",
      "channels-busy",
    ]);
    for (const { source, destination } of buffers) expect(destination.read()).toEqualBytes(source.read());
    expect(copies.stats).toMatchObject({
      engineCopies: 2,
      cpuCopies: 3,
      engineBytes: 2 * 65536,
      cpuBytes: 3 * 65536,
    });
    expect(copies.stats.fallbacks["channels-busy"]).toBe(3);
    // CPU copies take turns on the one processor.
    const cpuEnds = results.filter((r) => r.method === "cpu").map((r) => r.completedNs);
    expect(cpuEnds[1]! - cpuEnds[0]!).toBe(cpuEnds[2]! - cpuEnds[1]!);
    expect(copies.stats.cpuBusyNs).toBe(cpuEnds[2]);
  });

  it("queues on busy channels instead when the queue depth allows", async () => {
    const { t, copies, engine } = rig("lazy", { channels: 1 }, { channelQueueDepth: 4 });
    const buffers = Array.from({ length: 4 }, (_, i) => pair(t, 64 * 1024, 20 + i));
    const results = await settle(
      t,
      buffers.map(({ source, destination }) => copies.copy(destination.va, source.va, 64 * 1024)),
    );
    expect(results.every((r) => r.method === "engine")).toBe(true);
    expect(engine!.channelStats(0).descriptors).toBe(4);
    for (const { source, destination } of buffers) expect(destination.read()).toEqualBytes(source.read());
  });

  it("copies on the CPU when there is no engine, or the copy is small", async () => {
    for (const setup of [
      { engine: false, driver: false },
      { engine: false, driver: true },
    ]) {
      const { t, copies } = rig("strict", setup);
      const { source, destination } = pair(t, 8192, 4);
      const [result] = await settle(t, [copies.copy(destination.va, source.va, 8192)]);
      expect(result).toMatchObject({ method: "cpu", reason: "no-engine", channel: undefined });
      expect(destination.read()).toEqualBytes(source.read());
      expect(copies.channels).toEqual([]);
    }
    const { t, copies } = rig("strict");
    const { source, destination } = pair(t, 100, 5);
    const [small] = await settle(t, [copies.copy(destination.va, source.va, 100)]);
    expect(small!.reason).toBe("below-threshold");
    expect(destination.read()).toEqualBytes(source.read());
    // 200 ns setup + 100 bytes at 3 GB/s.
    expect(small!.completedNs - small!.submittedNs).toBe(200 + 34);
  });

  it("retries on the CPU when the engine's DMA fails, and the channel recovers for later copies", async () => {
    const { t, copies, engine } = rig("off", { channels: 1 }, { channelQueueDepth: 3 });
    const first = pair(t, 16 * 1024, 6);
    const second = pair(t, 16 * 1024, 7);
    t.injectDmaError({
      requesterId: engine!.requesterId,
      address: first.destination.physicalAddress(8192),
      times: 1,
    });
    const results = await settle(t, [
      copies.copy(first.destination.va, first.source.va, 16 * 1024),
      copies.copy(second.destination.va, second.source.va, 16 * 1024),
    ]);
    expect(results[0]).toMatchObject({ method: "cpu", reason: "engine-failed" });
    expect(results[1]).toMatchObject({ method: "engine", reason: "engine" });
    expect(first.destination.read()).toEqualBytes(first.source.read());
    expect(second.destination.read()).toEqualBytes(second.source.read());
    const driver = t.get(DmaEngineDriver);
    expect(driver.channels()[0]!.stats).toMatchObject({ failures: 1, copies: 2 });
    const third = pair(t, 16 * 1024, 8);
    const [later] = await settle(t, [copies.copy(third.destination.va, third.source.va, 16 * 1024)]);
    expect(later!.method).toBe("engine");
    expect(third.destination.read()).toEqualBytes(third.source.read());
  });

  it("reports the engine's failure when CPU retries are off", async () => {
    const { t, copies, engine } = rig("off", { channels: 1 }, { cpuRetryOnEngineError: false });
    const { source, destination } = pair(t, 16 * 1024, 9);
    t.injectDmaError({ requesterId: engine!.requesterId, address: source.physicalAddress(), access: "read" });
    const [result] = await settle(t, [copies.copy(destination.va, source.va, 16 * 1024)]);
    expect(result).toMatchObject({ method: "engine", status: STATUS_IO_DEVICE_ERROR });
    expect(copies.stats.failures).toBe(1);
  });

  it("keeps the caches right on a non-coherent machine", async () => {
    const { t, copies, engine } = rig("strict", { coherent: false });
    const length = 64 * 1024;
    const source = t.buffer(length);
    const destination = t.buffer(length);
    const data = testBytes(length, 11);
    t.kernel.WriteMemory(source.va, data);
    t.kernel.ReadMemory(destination.va, length);
    await settle(t, [copies.copy(destination.va, source.va, length)]);
    expect(engine!.stats.bytes).toBe(length);
    expect(t.kernel.ReadMemory(destination.va, length)).toEqualBytes(data);
  });

  it("accepts a copy at DISPATCH_LEVEL", async () => {
    const { t, copies } = rig("strict");
    const { source, destination } = pair(t, 32 * 1024, 12);
    let promise: Promise<DmaCopyResult> | undefined;
    t.scheduler.runAtIrql(Irql.dispatch, () => {
      promise = copies.copy(destination.va, source.va, 32 * 1024);
    });
    const [result] = await settle(t, [promise!]);
    expect(result!.method).toBe("engine");
    expect(destination.read()).toEqualBytes(source.read());
  });

  it("completes copies in flight as failed when the engine stops, and the CPU finishes them", async () => {
    const { t, copies, engine } = rig("strict", { channels: 1 });
    const { source, destination } = pair(t, 512 * 1024, 13);
    const promise = copies.copy(destination.va, source.va, 512 * 1024);
    t.io.stopDevice(t.node(engine!));
    const [result] = await settle(t, [promise]);
    expect(result).toMatchObject({ method: "cpu", reason: "engine-failed" });
    expect(destination.read()).toEqualBytes(source.read());
    expect(copies.channels).toEqual([]);
  });

  it("rejects bad arguments with a PlatformError and starts nothing", () => {
    const { t, copies } = rig("strict");
    const { source, destination } = pair(t, 8192, 14);
    const pending = t.scheduler.pending;
    const calls: [string, () => unknown][] = [
      ["zero length", () => copies.copy(destination.va, source.va, 0)],
      ["fractional length", () => copies.copy(destination.va, source.va, 1.5)],
      ["unmapped source", () => copies.copy(destination.va, 0x7fff_0000_0000, 4096)],
      ["beyond the destination", () => copies.copy(destination.va, source.va, 64 * 1024 * 1024)],
      ["overlap", () => copies.copy(source.va + 100, source.va, 4096)],
      [
        "callback not a function",
        () => copies.copy(destination.va, source.va, 4096, { onComplete: 5 as never }),
      ],
    ];
    for (const [, call] of calls) expect(call).toThrow(PlatformError);
    t.scheduler.runAtIrql(Irql.device, () =>
      expect(() => copies.copy(destination.va, source.va, 4096)).toThrow(/DISPATCH_LEVEL/),
    );
    expect(t.scheduler.pending).toBe(pending);
    expect(copies.stats.copies).toBe(0);
  });

  it("every copy of a random mix arrives intact and is counted once (property)", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            length: fc.integer({ min: 1, max: 200_000 }),
            offset: fc.integer({ min: 0, max: 4095 }),
          }),
          {
            minLength: 1,
            maxLength: 8,
          },
        ),
        fc.integer({ min: 1, max: 3 }),
        fc.constantFrom<RemappingMode>("off", "strict", "lazy"),
        async (plans, depth, mode) => {
          const { t, copies } = rig(mode, { channels: 2 }, { channelQueueDepth: depth });
          try {
            const buffers = plans.map(({ length, offset }, i) => ({
              length,
              source: t.buffer(length, { fill: testBytes(length, i + 1), offset }),
              destination: t.buffer(length, { offset: 4095 - offset }),
            }));
            const results = await settle(
              t,
              buffers.map((b) => copies.copy(b.destination.va, b.source.va, b.length)),
            );
            for (const b of buffers) expect(b.destination.read()).toEqualBytes(b.source.read());
            const total = plans.reduce((sum, p) => sum + p.length, 0);
            expect(copies.stats.engineBytes + copies.stats.cpuBytes).toBe(total);
            expect(results.filter((r) => r.method === "engine")).toHaveLength(copies.stats.engineCopies);
            expect(copies.stats.failures).toBe(0);
          } finally {
            t.dispose();
          }
        },
      ),
      { numRuns: 25, seed: 7 },
    );
  });
});
