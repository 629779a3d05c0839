/** The command line's value parsers: sizes people write, lists of modes and drivers, and refusals. */
import { InvalidArgumentError } from "commander";
import { describe, expect, it } from "vitest";
import type { ScenarioResult } from "../../samples/scenario.js";
import { collectDrivers, collectModes, parseMemorySize, parseSeed } from "../../src/cli/cli-options.js";
import { formatResultsTable } from "../../src/cli/results-table.js";

const GiB = 2 ** 30;

describe("--memory", () => {
  it.each([
    ["8G", 8 * GiB],
    ["16GiB", 16 * GiB],
    ["16gb", 16 * GiB],
    ["4096M", 4 * GiB],
    ["1.5G", 1.5 * GiB],
    ["1T", 1024 * GiB],
    ["8589934592", 8 * GiB],
    [" 64 MiB ", 64 * 2 ** 20],
  ])("reads %s", (text, bytes) => {
    expect(parseMemorySize(text)).toBe(bytes);
  });

  it.each(["", "lots", "8X", "8iB", "-8G", "1e9", "8G8"])("refuses %j as not a size", (text) => {
    expect(() => parseMemorySize(text)).toThrow(/not a memory size/);
  });

  it.each(["1M", "1000P", "100000", "1.0001G"])("refuses %j as a size no machine can have", (text) => {
    expect(() => parseMemorySize(text)).toThrow(InvalidArgumentError);
    expect(() => parseMemorySize(text)).toThrow(/must be a whole number of pages between 16 MiB and 4 PiB/);
  });
});

describe("--mode and --driver", () => {
  it("collect repeated options and comma lists, case-insensitively", () => {
    expect(collectModes("strict", collectModes("OFF,passthrough", undefined))).toEqual([
      "off",
      "passthrough",
      "strict",
    ]);
    expect(collectDrivers("nic, disk", undefined)).toEqual(["nic", "disk"]);
  });

  it("name the allowed values when one is unknown", () => {
    expect(() => collectModes("paranoid", undefined)).toThrow(
      'unknown mode "paranoid" (one of off, passthrough, strict, lazy)',
    );
    expect(() => collectDrivers("nic,,disk", undefined)).toThrow(/empty item/);
  });
});

describe("--seed", () => {
  it("takes integers only", () => {
    expect(parseSeed("42")).toBe(42);
    expect(parseSeed("-3")).toBe(-3);
    expect(() => parseSeed("x")).toThrow(/not an integer/);
    expect(() => parseSeed("")).toThrow(/not an integer/);
  });
});

describe("the table", () => {
  it("aligns the columns and puts the explanation last, a blank line between drivers", () => {
    const row = (
      driver: ScenarioResult["driver"],
      mode: ScenarioResult["mode"],
      bytes: number,
    ): ScenarioResult => ({
      driver,
      mode,
      outcome: "ok",
      dataIntact: true,
      faults: 0,
      bounces: 0,
      bytes,
      iotlbMisses: 12,
      transfers: 1,
      interrupts: 1,
      leaked: false,
      changedFrames: [],
      virtualTimeNs: 1,
      explanation: `why ${driver}`,
    });
    const lines = formatResultsTable([
      row("nic", "off", 100),
      row("nic", "lazy", 2048),
      row("disk", "off", 5),
    ]).split("\n");
    expect(lines[0]).toMatch(
      /^driver\s+mode\s+outcome\s+bytes\s+bounces\s+faults\s+IOTLB misses\s+what happened$/,
    );
    expect(lines[2]).toMatch(/^nic\s+off\s+ok\s+100 B\s+0\s+0\s+12\s+why nic$/);
    expect(lines[3]).toMatch(/^nic\s+lazy\s+ok\s+2 KiB/);
    expect(lines[4]).toBe("");
    expect(lines[2]!.indexOf("why")).toBe(lines[3]!.indexOf("why"));
  });
});
