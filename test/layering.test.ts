/**
 * Imports point downwards only (shared/DESIGN.md "Layers"). This test reads every source file and
 * checks what it imports against the rule of the layer it belongs to; a failure lists each
 * offending import with the file, the specifier and the rule it breaks.
 */
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const BARREL = "src/ddi/index.ts";
const DRIVER_RULE = "a driver imports only the DDI barrel src/ddi/index.ts (and files of its own package)";

interface Rule {
  readonly name: string;
  /** Project folders ("src/platform", "src/trace") whose files may be imported. */
  readonly allowed: readonly string[];
  /** npm packages and node builtins may be imported. */
  readonly packages: boolean;
}

/** The rule for a file, by where it lives; undefined when no rule applies. */
function ruleFor(file: string): Rule | undefined {
  const parts = file.split("/");
  const drivers = parts.indexOf("drivers");
  if (drivers === 0 || (parts[0] === "test" && drivers > 0)) {
    // A driver package is the folder below "drivers" (or "drivers" itself for a flat file).
    const packageRoot = parts.slice(0, drivers + (parts.length - drivers > 2 ? 2 : 1)).join("/");
    return { name: DRIVER_RULE, allowed: [BARREL, packageRoot], packages: false };
  }
  const layer = /^src\/([^/]+)\//.exec(file)?.[1];
  const below = (...layers: string[]): Rule => ({
    name: `src/${layer} imports only ${layers.map((l) => `src/${l}`).join(", ")}`,
    allowed: layers.map((l) => `src/${l}`),
    packages: true,
  });
  switch (layer) {
    case "trace":
      return below("trace");
    case "platform":
      return below("platform", "trace");
    case "devices":
      return below("devices", "platform", "trace");
    case "iommu":
      return below("iommu", "platform", "trace");
    case "hal":
      return {
        name: "src/hal imports nothing from src/ddi, src/verifier, src/devices, src/cli or samples",
        allowed: ["src/hal", "src/iommu", "src/platform", "src/trace", "src/machine"],
        packages: true,
      };
    case "ddi":
      return below("ddi", "verifier", "hal", "iommu", "platform", "trace");
    case "verifier":
      return below("verifier", "hal", "iommu", "platform", "trace");
    case "machine":
      return below("machine", "ddi", "hal", "iommu", "platform", "trace");
    case "virt":
      // Guests are whole machines: virt sits above the machine, and never reaches into the DDI.
      return below("virt", "machine", "hal", "iommu", "devices", "platform", "trace");
    case "offload":
      return {
        name: "src/offload imports only src/ddi, its engine driver, src/platform and src/trace",
        allowed: ["src/offload", "src/ddi", "drivers/dma-engine", "src/platform", "src/trace"],
        packages: true,
      };
    default:
      return undefined;
  }
}

interface Violation {
  readonly file: string;
  readonly specifier: string;
  readonly rule: string;
}

const IMPORT_PATTERNS = [
  /^(?:import|export)\b[^;]*?\bfrom\s*["']([^"']+)["']/gm,
  /^import\s*["']([^"']+)["']/gm,
  /\bimport\(\s*["']([^"']+)["']\s*\)/g,
];

/** The module specifiers a source text imports or re-exports (static, side-effect and dynamic). */
function importsOf(source: string): string[] {
  const specifiers: string[] = [];
  for (const pattern of IMPORT_PATTERNS) {
    for (const match of source.matchAll(pattern)) specifiers.push(match[1]!);
  }
  return specifiers;
}

/** Checks one file (path relative to the repository root) against its layer's rule. */
function violationsOf(file: string, source: string): Violation[] {
  const rule = ruleFor(file);
  if (rule === undefined) return [];
  const found: Violation[] = [];
  for (const specifier of importsOf(source)) {
    if (!specifier.startsWith(".")) {
      const isPackage = !specifier.startsWith("/");
      if (!(rule.packages && isPackage)) found.push({ file, specifier, rule: rule.name });
      continue;
    }
    const target = relative(ROOT, resolve(ROOT, dirname(file), specifier))
      .split(sep)
      .join("/")
      .replace(/\.js$/, ".ts");
    const ok = rule.allowed.some((allowed) => target === allowed || target.startsWith(`${allowed}/`));
    if (!ok) found.push({ file, specifier: `${specifier} (${target})`, rule: rule.name });
  }
  return found;
}

function sourceFiles(folder: string): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
      const path = `${dir}/${entry.name}`;
      if (entry.isDirectory()) {
        if (entry.name !== "node_modules") walk(path);
      } else if (/\.(ts|mts|js|mjs)$/.test(entry.name)) {
        out.push(path);
      }
    }
  };
  try {
    walk(folder);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
  return out;
}

function format(violations: readonly Violation[]): string {
  return violations.map((v) => `${v.file}: import "${v.specifier}" breaks "${v.rule}"`).join("\n");
}

describe("layering", () => {
  const files = ["src", "drivers", "test"].flatMap(sourceFiles);

  it("every import points down the layers", () => {
    const violations = files.flatMap((file) => violationsOf(file, readFileSync(join(ROOT, file), "utf8")));
    expect(violations, `\n${format(violations)}\n`).toEqual([]);
  });

  it("sees the imports it checks (the scan is not vacuous)", () => {
    expect(files).toContain("src/ddi/kernel.ts");
    expect(files.some((f) => f.startsWith("test/") && f.split("/").includes("drivers"))).toBe(true);
    const kernel = importsOf(readFileSync(join(ROOT, "src/ddi/kernel.ts"), "utf8"));
    expect(kernel).toContain("../platform/memory-manager.js");
    expect(kernel).toContain("inversify");
  });

  it("flags a driver that reaches below the DDI, and names the import", () => {
    const source =
      'import { Kernel } from "../src/ddi/index.js";\nimport { PciBus } from "../src/platform/pci-bus.js";\n';
    const violations = violationsOf("drivers/bad-driver.ts", source);
    expect(violations).toEqual([
      {
        file: "drivers/bad-driver.ts",
        specifier: "../src/platform/pci-bus.js (src/platform/pci-bus.ts)",
        rule: DRIVER_RULE,
      },
    ]);
    expect(format(violations)).toContain("../src/platform/pci-bus.js");
  });

  it("lets a driver package import its own files, and no other package's", () => {
    expect(violationsOf("drivers/nic/nic-module.ts", 'import { NicDriver } from "./nic-driver.js";')).toEqual(
      [],
    );
    expect(
      violationsOf("drivers/nic/nic-module.ts", 'import { DiskDriver } from "../disk/disk-driver.js";'),
    ).toHaveLength(1);
    expect(violationsOf("test/ddi/drivers/m.ts", 'import { TinyDriver } from "./tiny-driver.js";')).toEqual(
      [],
    );
    expect(
      violationsOf("test/ddi/drivers/m.ts", 'import { TinyDevice } from "../tiny-device.js";'),
    ).toHaveLength(1);
  });

  it("flags packages and node builtins in drivers, but not in the layers below", () => {
    const source = 'import { readFileSync } from "node:fs";\nimport { injectable } from "inversify";\n';
    expect(violationsOf("test/ddi/drivers/x.ts", source).map((v) => v.specifier)).toEqual([
      "node:fs",
      "inversify",
    ]);
    expect(violationsOf("src/platform/x.ts", source)).toEqual([]);
  });

  it("flags upward imports of the platform, devices, IOMMU and HAL", () => {
    expect(violationsOf("src/platform/x.ts", 'import type { Hal } from "../hal/hal.js";')).toHaveLength(1);
    expect(violationsOf("src/devices/nic.ts", 'import { Kernel } from "../ddi/kernel.js";')).toHaveLength(1);
    expect(
      violationsOf("src/devices/nic.ts", 'import { PciDevice } from "../platform/pci-device.js";'),
    ).toEqual([]);
    expect(violationsOf("src/iommu/x.ts", 'export { Hal } from "../hal/hal.js";')).toHaveLength(1);
    expect(violationsOf("src/hal/x.ts", 'import "../verifier/dma-verifier.js";')).toHaveLength(1);
    expect(violationsOf("src/hal/x.ts", 'const m = await import("../ddi/kernel.js");')).toHaveLength(1);
  });
});
