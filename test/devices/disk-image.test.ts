import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterEach, describe, expect, it } from "vitest";
import { FileDiskImage } from "../../src/devices/disk-image.js";
import { MemoryDiskImage } from "../../src/devices/memory-disk-image.js";
import { GiB, MiB } from "../../src/platform/page.js";
import { PlatformError } from "../../src/platform/platform-error.js";
import { testBytes } from "../../src/testing/index.js";

describe("DiskImage", () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });
  function tempPath(): string {
    const dir = mkdtempSync(join(tmpdir(), "disk-image-"));
    dirs.push(dir);
    return join(dir, "disk.img");
  }

  it("keeps a 1 GiB image sparse: a write near the end reads back and allocates almost nothing", () => {
    const path = tempPath();
    const image = new FileDiskImage(path, { size: GiB });
    expect(image.sectorCount).toBe(GiB / 512);
    const data = testBytes(64 * 1024, 11);
    const lba = image.sectorCount - 128;
    image.write(lba, data);
    const back = new Uint8Array(data.length);
    image.read(lba, back);
    expect(back).toEqualBytes(data);
    const zeros = new Uint8Array(4096);
    image.read(1000, zeros);
    expect(zeros.every((b) => b === 0)).toBe(true);
    image.close();
    const stat = statSync(path);
    expect(stat.size).toBe(GiB);
    expect(stat.blocks * 512).toBeLessThan(MiB);
  });

  it("reopens an existing image with its contents", () => {
    const path = tempPath();
    const first = new FileDiskImage(path, { size: 8 * MiB });
    first.write(3, testBytes(512, 4));
    first.close();
    const again = new FileDiskImage(path, { size: MiB });
    expect(again.sectorCount).toBe((8 * MiB) / 512);
    const sector = new Uint8Array(512);
    again.read(3, sector);
    expect(sector).toEqual(testBytes(512, 4));
    again.close();
    again.close();
    expect(() => again.read(0, sector)).toThrow(PlatformError);
  });

  it("rejects partial sectors, accesses past the end and bad sizes, changing nothing", () => {
    const image = new MemoryDiskImage(MiB);
    expect(() => image.write(0, new Uint8Array(100))).toThrow(PlatformError);
    expect(() => image.write(2047, new Uint8Array(1024))).toThrow(PlatformError);
    expect(() => image.read(-1, new Uint8Array(512))).toThrow(PlatformError);
    expect(() => image.read(0.5, new Uint8Array(512))).toThrow(PlatformError);
    expect(() => new MemoryDiskImage(1000)).toThrow(PlatformError);
    expect(() => new FileDiskImage(tempPath(), { size: 0 })).toThrow(PlatformError);
    expect(image.hostBytes).toBe(0);
  });

  it("behaves the same in memory and in a file for any sequence of writes", () => {
    const path = tempPath();
    const size = 4 * MiB;
    const file = new FileDiskImage(path, { size });
    const memory = new MemoryDiskImage(size);
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            lba: fc.integer({ min: 0, max: 8000 }),
            sectors: fc.integer({ min: 1, max: 300 }),
            seed: fc.nat(),
          }),
          {
            maxLength: 10,
          },
        ),
        fc.integer({ min: 0, max: 8000 }),
        (writes, probe) => {
          for (const w of writes) {
            const sectors = Math.min(w.sectors, size / 512 - w.lba);
            const data = testBytes(sectors * 512, w.seed);
            file.write(w.lba, data);
            memory.write(w.lba, data);
          }
          const sectors = Math.min(192, size / 512 - probe);
          const a = new Uint8Array(sectors * 512);
          const b = new Uint8Array(sectors * 512);
          file.read(probe, a);
          memory.read(probe, b);
          expect(a).toEqualBytes(b);
        },
      ),
      { numRuns: 50 },
    );
    file.close();
  });
});
