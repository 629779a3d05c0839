/**
 * dma-copy (seed 000): "a function which arranges for a copy operation to happen using the best
 * method available at the moment", asynchronous, with a completion callback or a promise.
 * Callers hand the service two buffers; the service picks an idle DMA engine channel or the CPU.
 *
 * What runs, each on a fresh machine with a 2-channel engine unless said otherwise:
 * 1. one 1 MiB copy (the engine), and the same copy on a machine without an engine (the CPU);
 * 2. a burst of six 256 KiB copies: two channels take two, the CPU the other four;
 * 3. a 256-byte copy (the CPU: below the engine threshold);
 * 4. a machine with the engine's driver but no engine, and one without either (the CPU);
 * 5. the 1 MiB engine copy in every remapping mode: the engine's descriptors carry what its DMA
 *    adapter gave the driver, IOVAs with remapping on, and its DMA is translated by the IOMMU;
 * 6. strict mode, after the copy: the engine re-executes its last descriptor and faults, since
 *    the driver's PutScatterGatherList removed the mappings.
 */
import type { ContainerModule } from "inversify";
import dmaEngineModule from "../drivers/dma-engine/dma-engine-module.js";
import { IoManager } from "../src/ddi/io-manager.js";
import { Kernel } from "../src/ddi/kernel.js";
import { NonPagedPool } from "../src/ddi/pool-type.js";
import { DmaEngineDevice } from "../src/devices/dma-engine-device.js";
import { CHANNEL_BASE, ChannelControl, ChannelRegister } from "../src/devices/dma-engine-registers.js";
import { Machine } from "../src/machine/machine.js";
import { REMAPPING_MODES, type RemappingMode } from "../src/machine/machine-options.js";
import type { DmaCopyOptions } from "../src/offload/dma-copy-options.js";
import type { DmaCopyResult } from "../src/offload/dma-copy-result.js";
import { DmaCopyService } from "../src/offload/dma-copy-service.js";
import { offloadModule } from "../src/offload/offload-module.js";
import { MiB, PAGE_SIZE, pageNumber } from "../src/platform/page.js";
import { formatBytes } from "./explain.js";
import { patternBytes, sameBytes } from "./host-memory.js";
import type { SampleCheck, SampleDefinition, SampleReport } from "./sample-definition.js";

const CHANNELS = 2;
const TAG = "Copy";

/** What a machine for the sample has: an engine with its driver, the driver alone, or neither. */
export type EngineSetup = "engine" | "driver-only" | "none";

export interface CopyMachine {
  readonly machine: Machine;
  readonly kernel: Kernel;
  readonly copies: DmaCopyService;
  readonly engine: DmaEngineDevice | undefined;
}

export function copyMachine(
  mode: RemappingMode,
  setup: EngineSetup,
  seed: number,
  options: DmaCopyOptions = {},
): CopyMachine {
  const offload = offloadModule(options);
  const modules: ContainerModule[] = setup === "none" ? [offload] : [dmaEngineModule, offload];
  const machine = new Machine({ remapping: mode, seed }, modules);
  const engine = setup === "engine" ? new DmaEngineDevice({ channels: CHANNELS }) : undefined;
  if (engine !== undefined) machine.pci.attach(engine);
  const io = machine.get(IoManager);
  io.enumerate();
  io.loadDrivers();
  return { machine, kernel: machine.get(Kernel), copies: machine.get(DmaCopyService), engine };
}

/** A copy and its buffers, to check afterwards. */
interface Planned {
  readonly source: number;
  readonly destination: number;
  readonly data: Uint8Array;
  readonly result: Promise<DmaCopyResult>;
}

/** Source and destination in nonpaged pool (scattered pages), the source filled with a pattern. */
function plan(
  m: CopyMachine,
  length: number,
  seed: number,
  callback?: (result: DmaCopyResult) => void,
): Planned {
  const k = m.kernel;
  const source = k.ExAllocatePoolWithTag(NonPagedPool, length, TAG);
  const destination = k.ExAllocatePoolWithTag(NonPagedPool, length, TAG);
  const data = patternBytes(length, seed);
  k.WriteMemory(source, data);
  const result = m.copies.copy(
    destination,
    source,
    length,
    callback === undefined ? {} : { onComplete: callback },
  );
  return { source, destination, data, result };
}

interface Done {
  readonly result: DmaCopyResult;
  readonly intact: boolean;
}

async function finish(m: CopyMachine, planned: readonly Planned[]): Promise<Done[]> {
  m.machine.runUntilIdle();
  const done: Done[] = [];
  for (const p of planned) {
    const result = await p.result;
    done.push({ result, intact: sameBytes(m.kernel.ReadMemory(p.destination, p.data.length), p.data) });
  }
  return done;
}

function describe(done: Done): string {
  const { result } = done;
  const how = result.method === "engine" ? `engine ${result.channel}` : `CPU (${result.reason})`;
  return `${formatBytes(result.bytes)} by ${how} in ${result.completedNs - result.submittedNs} ns${done.intact ? "" : ", DAMAGED"}`;
}

/** Per mode: the engine copy, the device addresses its DMA used, faults and IOTLB misses. */
interface ModeRun {
  readonly mode: RemappingMode;
  readonly done: Done;
  readonly descriptors: number;
  readonly faults: number;
  /** Engine data accesses whose bus address is not a physical page of the two buffers. */
  readonly remappedAccesses: number;
  readonly accesses: number;
  readonly iotlbMisses: number;
}

async function runMode(mode: RemappingMode, seed: number): Promise<ModeRun> {
  const m = copyMachine(mode, "engine", seed);
  const rid = m.engine!.requesterId;
  let faults = 0;
  let accesses = 0;
  let remapped = 0;
  const planned = plan(m, MiB, seed + 5);
  const physicalPages = new Set<number>();
  for (const va of [planned.source, planned.destination]) {
    for (let offset = 0; offset < MiB; offset += PAGE_SIZE) {
      physicalPages.add(pageNumber(m.kernel.MmGetPhysicalAddress(va + offset)));
    }
  }
  m.machine.events.on("iommu.fault", (e) => {
    if (e.requesterId === rid) faults++;
  });
  m.machine.events.on("device.transfer", (e) => {
    if (e.requesterId !== rid || e.length < 4096) return;
    accesses++;
    if (!physicalPages.has(pageNumber(e.busAddress))) remapped++;
  });
  const misses = m.machine.counters.get("iommu.iotlb.miss");
  const [done] = await finish(m, [planned]);
  return {
    mode,
    done: done!,
    descriptors: m.engine!.stats.descriptors,
    faults,
    remappedAccesses: remapped,
    accesses,
    iotlbMisses: m.machine.counters.get("iommu.iotlb.miss") - misses,
  };
}

/** Strict mode: after the copy completed, the engine runs its last descriptor again. */
async function replayAfterCompletion(
  seed: number,
): Promise<{ intact: boolean; faults: number; reason: number }> {
  const m = copyMachine("strict", "engine", seed);
  const [done] = await finish(m, [plan(m, 64 * 1024, seed + 9)]);
  const faults: number[] = [];
  m.machine.events.on("iommu.fault", (e) => {
    if (e.requesterId === m.engine!.requesterId) faults.push(e.reason);
  });
  const channel = done!.result.channel!.endsWith("ch1") ? 1 : 0;
  const base = m.engine!.barAddress + CHANNEL_BASE + channel * 0x100;
  // Host-side: the channel restarts from descriptor 0 of its ring, which still holds the copy.
  m.machine.pci.mmioWrite32(base + ChannelRegister.control, ChannelControl.reset);
  m.machine.pci.mmioWrite32(base + ChannelRegister.control, ChannelControl.enable);
  m.machine.pci.mmioWrite32(base + ChannelRegister.tail, 1);
  m.machine.runUntilIdle();
  return { intact: done!.intact, faults: faults.length, reason: faults[0] ?? 0 };
}

const dmaCopy: SampleDefinition = {
  name: "dma-copy",
  description: "one asynchronous copy call: a DMA engine channel when one is free, the CPU otherwise",
  async run({ seed }): Promise<SampleReport> {
    // 1. One copy, with and without an engine.
    const single = copyMachine("strict", "engine", seed);
    let callbackRan = false;
    const [one] = await finish(single, [plan(single, MiB, seed, () => (callbackRan = true))]);
    const cpuOnly = copyMachine("strict", "none", seed);
    const [oneOnCpu] = await finish(cpuOnly, [plan(cpuOnly, MiB, seed)]);

    // 2. A burst: more copies than channels.
    const burstMachine = copyMachine("strict", "engine", seed);
    const burstStart = burstMachine.machine.scheduler.now;
    const burst = await finish(
      burstMachine,
      Array.from({ length: 6 }, (_, i) => plan(burstMachine, 256 * 1024, seed + 100 + i)),
    );
    const burstNs = Math.max(...burst.map((d) => d.result.completedNs)) - burstStart;

    // 2b. The same burst when a busy channel may queue three copies: nothing falls back.
    const queueMachine = copyMachine("strict", "engine", seed, { channelQueueDepth: 3 });
    const queueStart = queueMachine.machine.scheduler.now;
    const queued = await finish(
      queueMachine,
      Array.from({ length: 6 }, (_, i) => plan(queueMachine, 256 * 1024, seed + 100 + i)),
    );
    const queuedNs = Math.max(...queued.map((d) => d.result.completedNs)) - queueStart;

    // 3. A small copy.
    const smallMachine = copyMachine("strict", "engine", seed);
    const [small] = await finish(smallMachine, [plan(smallMachine, 256, seed + 3)]);

    // 4. No engine: the driver loaded with no device, and neither.
    const driverOnly = copyMachine("strict", "driver-only", seed);
    const [noDevice] = await finish(driverOnly, [plan(driverOnly, MiB, seed + 4)]);

    // 5. Every remapping mode. 6. Replay after completion.
    const modes: ModeRun[] = [];
    for (const mode of REMAPPING_MODES) modes.push(await runMode(mode, seed));
    const replay = await replayAfterCompletion(seed);

    const all = [one!, oneOnCpu!, ...burst, ...queued, small!, noDevice!, ...modes.map((r) => r.done)];
    const engineCount = all.filter((d) => d.result.method === "engine").length;
    const cpuCount = all.length - engineCount;
    const bytesBy = (method: string): number =>
      all.filter((d) => d.result.method === method).reduce((sum, d) => sum + d.result.bytes, 0);
    const burstEngine = burst.filter((d) => d.result.method === "engine");
    const burstCpu = burst.filter((d) => d.result.method === "cpu");
    const checks: SampleCheck[] = [
      {
        name: "a copy goes to a free engine channel, callback and promise both report it",
        ok: one!.intact && one!.result.method === "engine" && callbackRan,
        detail: describe(one!),
      },
      {
        name: "without an engine the same call copies on the CPU",
        ok: oneOnCpu!.intact && oneOnCpu!.result.method === "cpu" && oneOnCpu!.result.reason === "no-engine",
        detail: describe(oneOnCpu!),
      },
      {
        name: "all channels busy: the rest of a burst falls back to the CPU",
        ok:
          burst.every((d) => d.intact) &&
          burstEngine.length === CHANNELS &&
          burstCpu.length === burst.length - CHANNELS &&
          burstCpu.every((d) => d.result.reason === "channels-busy"),
        detail: `${burstEngine.length} on the engine, ${burstCpu.length} on the CPU (channels busy), all done in ${burstNs} ns`,
      },
      {
        name: "channel queue depth 3: the same burst queues on the engine, the CPU stays free",
        ok:
          queued.every((d) => d.intact && d.result.method === "engine") &&
          queueMachine.copies.stats.cpuBusyNs === 0,
        detail: `${queued.length} on the engine, done in ${queuedNs} ns, CPU busy ${queueMachine.copies.stats.cpuBusyNs} ns`,
      },
      {
        name: "a copy below the threshold stays on the CPU",
        ok: small!.intact && small!.result.reason === "below-threshold",
        detail: describe(small!),
      },
      {
        name: "the driver without a device: no engine, CPU copy",
        ok: noDevice!.intact && noDevice!.result.reason === "no-engine",
        detail: describe(noDevice!),
      },
      ...modes.map((run) => {
        const remapping = run.mode === "strict" || run.mode === "lazy";
        return {
          name: `engine copy with remapping ${run.mode}: intact, no fault, ${remapping ? "IOVAs through the IOMMU" : "physical addresses"}`,
          ok:
            run.done.intact &&
            run.done.result.method === "engine" &&
            run.faults === 0 &&
            (remapping
              ? run.remappedAccesses === run.accesses && run.iotlbMisses > 0
              : run.remappedAccesses === 0 && run.iotlbMisses === 0),
          detail: `${describe(run.done)}; ${run.descriptors} descriptor(s); ${run.remappedAccesses}/${run.accesses} data accesses at IOVAs (not the buffers' physical pages); ${run.iotlbMisses} IOTLB misses`,
        };
      }),
      {
        name: "strict: the engine replaying a finished descriptor faults (its mappings are gone)",
        ok: replay.intact && replay.faults > 0,
        detail: `${replay.faults} fault(s), first reason ${replay.reason}`,
      },
    ];
    const burstService = burstMachine.copies.stats;
    const lines = [
      `Engine: ${CHANNELS} channels, 4 GB/s each, 500 ns per descriptor; CPU copy: 3 GB/s plus 200 ns, one at a time.`,
      "",
      `1 MiB:        ${describe(one!)}`,
      `1 MiB:        ${describe(oneOnCpu!)} (machine without an engine)`,
      "burst of 6 x 256 KiB, submitted together:",
      ...burst.map((d) => `              ${describe(d)}`),
      `              all done after ${burstNs} ns; the CPU was busy ${burstService.cpuBusyNs} ns`,
      `same burst, channelQueueDepth 3: all ${queued.length} on the engine, done after ${queuedNs} ns, CPU busy 0 ns`,
      `256 B:        ${describe(small!)}`,
      `1 MiB:        ${describe(noDevice!)} (driver loaded, no engine plugged in)`,
      "",
      "The same 1 MiB engine copy per remapping mode (pool buffers are scattered 4 KiB pages):",
      ...modes.map(
        (r) =>
          `  ${r.mode.padEnd(11)} ${String(r.descriptors).padStart(3)} descriptor(s), ${r.done.result.completedNs - r.done.result.submittedNs} ns, ${r.iotlbMisses} IOTLB misses, ${r.faults} faults`,
      ),
      "  (with remapping the HAL maps each buffer as one IOVA range, so one descriptor covers it)",
      `Strict, after completion, replaying the descriptor: ${replay.faults} IOMMU fault(s).`,
      "",
      `Totals: ${engineCount} copies by engine (${formatBytes(bytesBy("engine"))}), ${cpuCount} by CPU (${formatBytes(bytesBy("cpu"))}).`,
    ];
    const figures: Record<string, number | string | boolean> = {
      engineCopies: engineCount,
      cpuCopies: cpuCount,
      engineBytes: bytesBy("engine"),
      cpuBytes: bytesBy("cpu"),
      "fallback.no-engine": all.filter((d) => d.result.reason === "no-engine").length,
      "fallback.channels-busy": all.filter((d) => d.result.reason === "channels-busy").length,
      "fallback.below-threshold": all.filter((d) => d.result.reason === "below-threshold").length,
      "single.engineNs": one!.result.completedNs - one!.result.submittedNs,
      "single.cpuNs": oneOnCpu!.result.completedNs - oneOnCpu!.result.submittedNs,
      "burst.copies": burst.length,
      "burst.engineCopies": burstEngine.length,
      "burst.cpuCopies": burstCpu.length,
      "burst.virtualTimeNs": burstNs,
      "burst.cpuBusyNs": burstService.cpuBusyNs,
      "queuedBurst.virtualTimeNs": queuedNs,
      "queuedBurst.cpuBusyNs": queueMachine.copies.stats.cpuBusyNs,
      "replay.faults": replay.faults,
    };
    for (const run of modes) {
      figures[`${run.mode}.descriptors`] = run.descriptors;
      figures[`${run.mode}.virtualTimeNs`] = run.done.result.completedNs - run.done.result.submittedNs;
      figures[`${run.mode}.iotlbMisses`] = run.iotlbMisses;
      figures[`${run.mode}.faults`] = run.faults;
    }
    return { name: "dma-copy", checks, figures, lines };
  },
};

export default dmaCopy;
