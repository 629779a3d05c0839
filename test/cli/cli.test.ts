/**
 * The command line as a user runs it, in a child process: --json prints exactly one JSON object on
 * stdout; the artifacts are real files (tshark reads nic.pcap when it is installed, trace.json
 * has the Chrome trace-event shape Perfetto loads); bad input is one line on stderr, a non-zero
 * exit status and no stack trace.
 */
import { execFile, execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { beforeAll, describe, expect, it } from "vitest";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const TSX = join(ROOT, "node_modules", ".bin", "tsx");
const MAIN = join(ROOT, "src", "cli", "main.ts");
const run = promisify(execFile);

interface Ran {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the CLI with tsx directly (npx would add its own warnings to stderr). */
async function cli(...args: string[]): Promise<Ran> {
  try {
    const { stdout, stderr } = await run(TSX, [MAIN, ...args], {
      cwd: ROOT,
      env: { ...process.env, FORCE_COLOR: "0" },
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

function tshark(): string | undefined {
  try {
    return execFileSync("sh", ["-c", "command -v tshark"], { encoding: "utf8" }).trim() || undefined;
  } catch {
    return undefined;
  }
}

describe("npx tsx src/cli/main.ts --json", () => {
  const out = mkdtempSync(join(tmpdir(), "dma-cli-"));
  let stdout = "";

  beforeAll(async () => {
    const { stdout: text } = await run(
      "npx",
      ["tsx", "src/cli/main.ts", "--json", "--driver", "nic", "--mode", "strict", "--out", out],
      {
        cwd: ROOT,
      },
    );
    stdout = text;
  }, 60_000);

  it("prints exactly one JSON object with the row", () => {
    const parsed = JSON.parse(stdout) as { scenarios: Record<string, unknown>[] };
    expect(Object.keys(parsed)).toEqual(["scenarios"]);
    expect(parsed.scenarios).toHaveLength(1);
    expect(parsed.scenarios[0]).toMatchObject({
      driver: "nic",
      mode: "strict",
      outcome: "ok",
      dataIntact: true,
      faults: 0,
      bounces: 0,
    });
    for (const key of ["bytes", "iotlbMisses"]) expect(typeof parsed.scenarios[0]![key]).toBe("number");
  });

  it("writes nic.pcap, which tshark reads frame by frame", (context) => {
    const path = join(out, "nic.pcap");
    expect(statSync(path).size).toBeGreaterThan(24);
    const binary = tshark();
    if (binary === undefined) {
      context.skip("tshark is not installed: the pcap check needs it (apt-get install tshark)");
      return;
    }
    const lines = execFileSync(binary, ["-r", path, "-T", "fields", "-e", "frame.len", "-e", "eth.type"], {
      encoding: "utf8",
    })
      .trim()
      .split("\n");
    expect(lines).toHaveLength(8);
    expect(lines.every((line) => line.endsWith("0x88b5"))).toBe(true);
    expect(lines.map((line) => Number(line.split("\t")[0]))).toEqual([
      60, 1514, 590, 4096, 9018, 1514, 128, 16000,
    ]);
  });

  it("writes trace.json in Chrome trace-event format: tracks, slices per transfer, instants", () => {
    const trace = JSON.parse(readFileSync(join(out, "trace.json"), "utf8")) as {
      traceEvents: {
        ph: string;
        name: string;
        ts: number;
        dur?: number;
        pid: number;
        tid: number;
        args?: { name?: string };
      }[];
      displayTimeUnit: string;
    };
    expect(trace.displayTimeUnit).toBe("ns");
    const events = trace.traceEvents;
    for (const e of events) {
      expect(["X", "i", "b", "e", "M"]).toContain(e.ph);
      expect(Number.isFinite(e.ts) && Number.isInteger(e.pid) && Number.isInteger(e.tid)).toBe(true);
    }
    const threads = events
      .filter((e) => e.ph === "M" && e.name === "thread_name")
      .map((e) => e.args?.name ?? "");
    expect(threads.some((name) => name.startsWith("device ") && name.includes("NIC"))).toBe(true);
    expect(threads.some((name) => name.startsWith("CPU: DISPATCH_LEVEL"))).toBe(true);
    const slices = events.filter((e) => e.ph === "X");
    expect(slices.length).toBeGreaterThan(10);
    expect(slices.every((e) => typeof e.dur === "number" && e.dur > 0)).toBe(true);
    expect(events.some((e) => e.ph === "i" && e.name.startsWith("invalidate"))).toBe(true);
  });

  it("writes no disk image when the disk did not run", () => {
    expect(existsSync(join(out, "disk.img"))).toBe(false);
  });
});

describe("the table and the disk image", () => {
  it("prints a table row per scenario with its explanation, and leaves a sparse disk.img", async () => {
    const out = mkdtempSync(join(tmpdir(), "dma-cli-"));
    const { code, stdout, stderr } = await cli(
      "--driver",
      "disk,bypass32",
      "--mode",
      "off",
      "--mode",
      "strict",
      "--out",
      out,
    );
    expect(code).toBe(0);
    expect(stderr).toBe("");
    const rows = stdout.split("\n").filter((line) => /^(disk|bypass32)\s/.test(line));
    expect(rows).toHaveLength(4);
    expect(rows[0]).toMatch(/^disk\s+off\s+ok\s/);
    expect(rows[2]).toMatch(/^bypass32\s+off\s+corrupted\s.*kernel-structures/);
    expect(rows[3]).toMatch(/^bypass32\s+strict\s+blocked\s/);
    const image = statSync(join(out, "disk.img"));
    expect(image.size).toBe(64 * 1024 * 1024);
    expect(image.blocks * 512).toBeLessThan(4 * 1024 * 1024);
  });
});

describe.concurrent("bad input: one line on stderr, non-zero status, no stack trace", () => {
  const cases: [string, string[], RegExp][] = [
    ["an unknown mode", ["--mode", "paranoid"], /unknown mode "paranoid"/],
    ["an unknown driver", ["--driver", "nic,floppy"], /unknown driver "floppy"/],
    ["an absurd memory size", ["--memory", "1000P"], /memory size/],
    ["a memory size that is not one", ["--memory", "lots"], /not a memory size/],
    ["a seed that is not an integer", ["--seed", "1.5"], /not an integer/],
    ["an unknown option", ["--colour"], /unknown option/],
  ];
  const file = join(mkdtempSync(join(tmpdir(), "dma-cli-")), "a-file");
  writeFileSync(file, "not a folder");
  cases.push([
    "an output folder that cannot be written",
    ["--driver", "rogue", "--out", join(file, "out")],
    /cannot write to output folder/,
  ]);

  for (const [what, args, message] of cases) {
    it(`rejects ${what}`, async () => {
      const { code, stdout, stderr } = await cli(...args);
      expect(code).not.toBe(0);
      expect(stdout).toBe("");
      const lines = stderr.trimEnd().split("\n");
      expect(lines, stderr).toHaveLength(1);
      expect(lines[0]).toMatch(/^error: /);
      expect(lines[0]).toMatch(message);
      expect(stderr).not.toMatch(/\n\s+at /);
    });
  }
});
