/**
 * The sample drivers one by one, beyond the matrix: the README's driver is the file it shows and
 * runs in every mode; the disk splits by its map registers and turns lists into PRPs; the legacy
 * driver splits by its chip's buffer; every driver gives everything back to the HAL on REMOVE;
 * the NIC cancels reads it still holds when stopped.
 */
import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import fc from "fast-check";
import type { ContainerModule } from "inversify";
import { describe, expect, it } from "vitest";
import bypassModule from "../../drivers/bypass/bypass-module.js";
import { DiskDriver, prpEntries } from "../../drivers/disk/disk-driver.js";
import diskModule from "../../drivers/disk/disk-module.js";
import { LegacyDriver } from "../../drivers/legacy/legacy-driver.js";
import legacyModule from "../../drivers/legacy/legacy-module.js";
import nicModule from "../../drivers/nic/nic-module.js";
import { HostMemory, patternBytes, sameBytes } from "../../samples/host-memory.js";
import { IoManager } from "../../src/ddi/io-manager.js";
import { DiskController } from "../../src/devices/disk-controller.js";
import { LegacyDmaDevice } from "../../src/devices/legacy-dma-device.js";
import { MemoryDiskImage } from "../../src/devices/memory-disk-image.js";
import { NicDevice } from "../../src/devices/nic-device.js";
import { Hal } from "../../src/hal/hal.js";
import { STATUS_CANCELLED, STATUS_INVALID_PARAMETER, STATUS_SUCCESS } from "../../src/hal/wdm/ntstatus.js";
import type { SCATTER_GATHER_LIST } from "../../src/hal/wdm/scatter-gather-list.js";
import { Machine } from "../../src/machine/machine.js";
import { REMAPPING_MODES, type RemappingMode } from "../../src/machine/machine-options.js";
import { GiB, MiB, PAGE_SIZE } from "../../src/platform/page.js";
import type { PciDevice } from "../../src/platform/pci-device.js";
import readmeModule from "../drivers/readme/readme-module.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

function boot<T extends PciDevice>(mode: RemappingMode, module: ContainerModule, device: T) {
  const machine = new Machine({ remapping: mode }, [module]);
  machine.pci.attach(device);
  const io = machine.get(IoManager);
  io.enumerate();
  io.loadDrivers();
  const node = io.node(device.requesterId);
  expect(node.state).toBe("started");
  return { machine, io, node, fdo: node.fdo!, host: new HostMemory(machine), hal: machine.get(Hal) };
}

describe("the README driver", () => {
  it("is the file the README shows", () => {
    const readme = readFileSync(join(ROOT, "README.md"), "utf8");
    const block = /```ts\n(\/\/ test\/drivers\/readme\/readme-driver\.ts[^\n]*\n[\s\S]*?)```/.exec(readme);
    expect(block, "README.md has the driver's code block").not.toBeNull();
    const shown = block![1]!
      .split("\n")
      .slice(1)
      .join("\n")
      .replace('"dma-ddi-sim/ddi"', '"../../../src/ddi/index.js"');
    const file = readFileSync(join(ROOT, "test/drivers/readme/readme-driver.ts"), "utf8")
      .split("\n")
      .filter((line) => !line.startsWith("// biome-ignore"))
      .join("\n");
    expect(shown.trim()).toBe(file.trim());
  });

  for (const mode of REMAPPING_MODES) {
    it(`reads the chip's buffer into pages above 4 GiB (${mode})`, () => {
      const chip = new LegacyDmaDevice();
      const { machine, io, fdo, host, hal } = boot(mode, readmeModule, chip);
      const data = patternBytes(10_000, 3);
      chip.load(data);
      const buffer = host.allocate(data.length, { minAddress: 4 * GiB, offset: 300 });
      const irp = io.sendRead(fdo, buffer.mdl);
      machine.runUntilIdle();
      expect(irp.IoStatus).toEqual({ Status: STATUS_SUCCESS, Information: data.length });
      expect(sameBytes(host.read(buffer.va, data.length), data)).toBe(true);
      expect(hal.resources().scatterGatherLists).toBe(0);
    });
  }
});

describe("the disk driver", () => {
  it("splits a request into commands no longer than its map registers cover", () => {
    const controller = new DiskController(new MemoryDiskImage(16 * MiB));
    const { machine, io, fdo, host } = boot("strict", diskModule, controller);
    const driver = machine.get(DiskDriver);
    const length = 300 * 1024;
    const buffer = host.allocate(length, { offset: 8 });
    host.write(buffer.va, patternBytes(length, 5));
    const irp = io.sendWrite(fdo, buffer.mdl, 4096);
    machine.runUntilIdle();
    expect(irp.IoStatus).toEqual({ Status: STATUS_SUCCESS, Information: length });
    expect(driver.statistics(fdo).transfers).toBe(Math.ceil(length / driver.maximumTransfer(fdo)));
    expect(controller.stats.commands).toBe(driver.statistics(fdo).transfers);
  });

  it("refuses a request that is not whole sectors, without touching the controller", () => {
    const controller = new DiskController(new MemoryDiskImage(16 * MiB));
    const { machine, io, fdo, host } = boot("off", diskModule, controller);
    const irp = io.sendRead(fdo, host.allocate(1000).mdl);
    machine.runUntilIdle();
    expect(irp.IoStatus.Status).toBe(STATUS_INVALID_PARAMETER);
    expect(controller.stats.commands).toBe(0);
  });

  it("turns any list of whole pages (first one offset) into one PRP entry per page", () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 1, max: 1 << 20 }), fc.integer({ min: 1, max: 4 })), {
          minLength: 1,
          maxLength: 8,
        }),
        fc.integer({ min: 0, max: PAGE_SIZE / 4 - 1 }),
        (runs, dwords) => {
          const offset = dwords * 4;
          const elements = runs.map(([page, pages], i) => ({
            Address: page * PAGE_SIZE + (i === 0 ? offset : 0),
            Length: pages * PAGE_SIZE - (i === 0 ? offset : 0),
            Reserved: 0,
          }));
          const list: SCATTER_GATHER_LIST = {
            NumberOfElements: elements.length,
            Reserved: 0,
            Elements: elements,
          };
          const entries = prpEntries(list)!;
          expect(entries).toHaveLength(runs.reduce((n, [, pages]) => n + pages, 0));
          expect(entries[0]).toBe(elements[0]!.Address);
          expect(entries.slice(1).every((address) => address % PAGE_SIZE === 0)).toBe(true);
        },
      ),
    );
  });

  it("cannot express a list with a hole inside a page", () => {
    const list: SCATTER_GATHER_LIST = {
      NumberOfElements: 2,
      Reserved: 0,
      Elements: [
        { Address: 0x10000, Length: 100, Reserved: 0 },
        { Address: 0x20000, Length: 4096, Reserved: 0 },
      ],
    };
    expect(prpEntries(list)).toBeUndefined();
  });
});

describe("the legacy driver", () => {
  it("splits a request at the chip's 64 KiB buffer and flushes each piece (off: bounce pages)", () => {
    const chip = new LegacyDmaDevice();
    const { machine, io, fdo, host } = boot("off", legacyModule, chip);
    const length = 150 * 1024;
    const buffer = host.allocate(length, { minAddress: 4 * GiB });
    const irp = io.sendRead(fdo, buffer.mdl);
    machine.runUntilIdle();
    expect(irp.IoStatus).toEqual({ Status: STATUS_SUCCESS, Information: length });
    expect(machine.get(LegacyDriver).statistics(fdo).transfers).toBe(3);
    expect(chip.stats.transfers).toBe(3);
  });
});

describe("every driver gives back what it took", () => {
  const devices: [string, ContainerModule, () => PciDevice][] = [
    ["nic", nicModule, () => new NicDevice()],
    ["disk", diskModule, () => new DiskController(new MemoryDiskImage(16 * MiB))],
    ["legacy", legacyModule, () => new LegacyDmaDevice()],
    ["bypass", bypassModule, () => new LegacyDmaDevice()],
  ];
  for (const [name, module, make] of devices) {
    for (const mode of ["off", "strict"] as const) {
      it(`${name} (${mode}): REMOVE leaves the HAL holding nothing`, () => {
        const { machine, io, node, hal } = boot(mode, module, make());
        expect(hal.resources().adaptersOpen).toBe(1);
        io.removeDevice(node);
        machine.runUntilIdle();
        expect(hal.resources()).toMatchObject({
          adaptersOpen: 0,
          commonBuffers: 0,
          scatterGatherLists: 0,
          mapRegistersGranted: 0,
          bouncePages: 0,
          queuedRequests: 0,
        });
        expect(node.state).toBe("enumerated");
      });
    }
  }
});

describe("the NIC driver", () => {
  it("completes the reads it holds with STATUS_CANCELLED when stopped", () => {
    const { machine, io, fdo, node, host, hal } = boot("strict", nicModule, new NicDevice());
    const read = io.sendRead(fdo, host.allocate(2048).mdl);
    machine.runUntilIdle();
    expect(read.completed).toBe(false);
    io.stopDevice(node);
    expect(read.IoStatus.Status).toBe(STATUS_CANCELLED);
    expect(hal.resources().commonBuffers).toBe(0);
  });
});

describe("host data", () => {
  it("patterns are deterministic and differ by seed", () => {
    expect(sameBytes(patternBytes(100, 1), patternBytes(100, 1))).toBe(true);
    expect(sameBytes(patternBytes(100, 1), patternBytes(100, 2))).toBe(false);
  });
});
