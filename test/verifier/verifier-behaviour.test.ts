/**
 * The verifier around the buggy drivers: silent on correct drivers in every remapping mode,
 * switched per driver or per adapter, its `!dma` report, its leak reports with call sites, its
 * events and its bounded log.
 */
import { describe, expect, it } from "vitest";
import { BugCheck } from "../../src/hal/wdm/bug-check.js";
import { REMAPPING_MODES } from "../../src/machine/machine-options.js";
import { PAGE_SIZE } from "../../src/platform/page.js";
import { PlatformError } from "../../src/platform/platform-error.js";
import { formatDmaReport } from "../../src/verifier/dma-report.js";
import type { DmaViolationEvent } from "../../src/verifier/verifier-events.js";
import { resolveVerifierOptions } from "../../src/verifier/verifier-options.js";
import { VerifierCode } from "../../src/verifier/violation-codes.js";
import { testPattern } from "./dma-test-device.js";
import { CorrectDriver } from "./drivers/correct-driver.js";
import { CorrectNarrowDriver } from "./drivers/correct-narrow-driver.js";
import { CorrectPacketDriver } from "./drivers/correct-packet-driver.js";
import type { DmaTestDriver } from "./drivers/dma-test-driver.js";
import { DoublePutListDriver } from "./drivers/double-put-list-driver.js";
import { LeakAtUnloadDriver } from "./drivers/leak-at-unload-driver.js";
import { LeakedCommonBufferDriver } from "./drivers/leaked-common-buffer-driver.js";
import { StaleReadDriver } from "./drivers/stale-read-driver.js";
import { VerifierRig } from "./verifier-rig.js";

describe("the verifier on correct drivers", () => {
  const drivers = [CorrectDriver, CorrectNarrowDriver, CorrectPacketDriver].map(
    (driver) => [driver.name, driver] as const,
  );
  describe.each(REMAPPING_MODES)("remapping %s", (remapping) => {
    it.each(drivers)("%s moves data both ways without a violation", (_name, driver) => {
      const rig = new VerifierRig<DmaTestDriver>(driver, { machine: { remapping } });
      for (const options of [{}, { above4G: true }, { offset: 100 }]) {
        const buffer = rig.buffer(3 * PAGE_SIZE - 200, options);
        expect(rig.read(buffer).IoStatus.Status).toBe(0);
        expect(rig.bytes(buffer)).toEqual(testPattern(0x40, buffer.length));
        expect(rig.write(buffer).IoStatus.Status).toBe(0);
        expect(rig.device.received.at(-1)).toEqual(testPattern(0x40, buffer.length));
      }
      const [report] = rig.verifier!.report();
      expect(report!.scatterGatherLists.allocated).toBe(report!.scatterGatherLists.freed);
      expect(report!.mapRegisters.allocated).toBe(report!.mapRegisters.freed);
      expect(report!.adapterChannels.allocated).toBe(report!.adapterChannels.freed);
      expect(report!.bytesMappedSinceFlush).toBe(0);
      expect(report!.outstanding).toEqual([]);
      rig.remove();
      expect(rig.verifier!.violationCount).toBe(0);
      expect(rig.hal.resources()).toMatchObject({
        adaptersOpen: 0,
        mapRegistersGranted: 0,
        scatterGatherLists: 0,
      });
    });
  });
});

describe("switching the verifier on per driver or adapter", () => {
  it("leaves drivers set to off alone: the bug leaks as it would without the verifier", () => {
    const rig = new VerifierRig(LeakedCommonBufferDriver, { verifier: { drivers: { LEAKCB: "off" } } });
    rig.stop();
    expect(rig.verifier!.report()).toEqual([]);
    expect(rig.hal.resources().commonBuffers).toBe(1);
  });

  it("verifies only the listed drivers with onlyListed", () => {
    const rig = new VerifierRig(LeakedCommonBufferDriver, {
      verifier: { onlyListed: true, drivers: { someotherdriver: "bugcheck" } },
    });
    expect(() => rig.stop()).not.toThrow();
    expect(rig.verifier!.report()).toEqual([]);
  });

  it("gives a driver its own mode: log for one driver on a bug check machine", () => {
    const rig = new VerifierRig(LeakedCommonBufferDriver, {
      verifier: { mode: "bugcheck", drivers: { leakcb: "log" } },
    });
    rig.stop();
    expect(rig.verifier!.violations.map((v) => v.parameters)).toEqual([
      [VerifierCode.leftoverCommonBuffers, 1, 1, 0],
    ]);
  });

  it("decides per adapter with select, which sees the requester id", () => {
    let seen = -1;
    const rig = new VerifierRig(LeakedCommonBufferDriver, {
      verifier: {
        select: (target) => {
          seen = target.requesterId ?? -1;
          return target.driver === "leakcb" ? "log" : "off";
        },
      },
    });
    expect(seen).toBe(rig.device.requesterId);
    rig.stop();
    expect(rig.verifier!.violations).toHaveLength(1);
  });

  it("refuses bad options before anything is built", () => {
    expect(() => resolveVerifierOptions({ mode: "loud" as never })).toThrow(PlatformError);
    expect(() => resolveVerifierOptions({ drivers: { x: "maybe" as never } })).toThrow(PlatformError);
    expect(() => resolveVerifierOptions({ maxViolations: 0 })).toThrow(PlatformError);
  });
});

describe("what the verifier reports", () => {
  it("!dma: per adapter counters, bytes mapped since the last flush, and what is outstanding", () => {
    const rig = new VerifierRig(LeakedCommonBufferDriver, { verifier: { mode: "log" } });
    const buffer = rig.buffer(5000);
    rig.read(buffer);
    const [report] = rig.verifier!.report();
    expect(report).toMatchObject({
      adapter: 1,
      requesterId: rig.device.requesterId,
      driver: "leakcb",
      mode: "log",
      released: false,
      scatterGatherLists: { allocated: 1, freed: 1 },
      commonBuffers: { allocated: 1, freed: 0 },
      bytesMappedSinceFlush: 0,
    });
    expect(report!.outstanding).toHaveLength(1);
    expect(report!.outstanding[0]!.kind).toBe("common buffer");
    expect(report!.outstanding[0]!.stack).toMatch(/leaked-common-buffer-driver\.ts/);
    const text = formatDmaReport(rig.verifier!.report());
    expect(text).toMatch(/^Adapter 1 {2}driver leakcb/);
    expect(text).toMatch(/Scatter\/gather lists: allocated +1 {2}freed +1/);
    expect(text).toMatch(/outstanding common buffer: 8192 bytes/);
  });

  it("names the call site of every allocation a driver leaves behind at REMOVE", () => {
    const rig = new VerifierRig(LeakAtUnloadDriver, { verifier: { mode: "log" } });
    rig.remove();
    const [leak] = rig.verifier!.violations;
    expect(leak!.code).toBe(VerifierCode.leakAtUnload);
    expect(leak!.allocations.map((site) => site.kind)).toEqual(["adapter", "common buffer"]);
    expect(leak!.allocations[0]!.stack).toMatch(/dma-test-driver\.ts/);
    expect(leak!.allocations[1]!.stack).toMatch(/leak-at-unload-driver\.ts/);
  });

  it("puts the call site in the bug check's explanation", () => {
    const rig = new VerifierRig(LeakAtUnloadDriver);
    let check: BugCheck | undefined;
    try {
      rig.remove();
    } catch (error) {
      check = error as BugCheck;
    }
    expect(check).toBeInstanceOf(BugCheck);
    expect(check!.message).toMatch(/DMA resources leaked when the driver left the device/);
    expect(check!.message).toMatch(/common buffer: 4096 bytes at 0x[0-9a-f]+/);
    expect(check!.message).toMatch(/leak-at-unload-driver\.ts/);
  });

  it("emits verifier.violation in log mode, with the stack of the offending call", () => {
    const rig = new VerifierRig(DoublePutListDriver, { verifier: { mode: "log" } });
    const seen: DmaViolationEvent[] = [];
    rig.machine.events.on("verifier.violation", (event) => seen.push(event));
    rig.read(rig.buffer(100));
    expect(seen.map((event) => event.code)).toEqual([VerifierCode.scatterGatherDoubleFree]);
    expect(seen[0]).toMatchObject({ member: "PutScatterGatherList", adapter: 1, driver: "dblsg" });
    expect(seen[0]!.stack).toMatch(/double-put-list-driver\.ts/);
    expect(rig.machine.counters.get("verifier.violation.0x06")).toBe(1);
  });

  it("keeps at most maxViolations and counts the rest", () => {
    const rig = new VerifierRig(StaleReadDriver, {
      machine: { remapping: "off" },
      verifier: { mode: "log", maxViolations: 2 },
    });
    for (let i = 0; i < 5; i++) rig.read(rig.buffer(PAGE_SIZE, { above4G: true }));
    expect(rig.verifier!.violationCount).toBe(5);
    expect(rig.verifier!.violations).toHaveLength(2);
  });

  it("checks every fence on demand", () => {
    const rig = new VerifierRig(LeakedCommonBufferDriver, { verifier: { mode: "log" } });
    const [site] = rig.verifier!.report()[0]!.outstanding;
    const va = Number.parseInt(/at (0x[0-9a-f]+)/.exec(site!.detail)![1]!, 16);
    rig.kernel.WriteMemory(va - 1, new Uint8Array([1]));
    rig.verifier!.checkFences();
    expect(rig.verifier!.violations.map((v) => v.parameters)).toEqual([
      [VerifierCode.boundaryOverrun, 1, 8192, va],
    ]);
  });
});
