/**
 * disk: the nvmesim driver writes a 257.5 KiB pattern at 1 MiB on the disk, from a buffer of
 * scattered pages above 4 GiB that starts 512 bytes into its first page, then reads it back into
 * a second such buffer. The request is longer than the adapter's map registers cover, so the
 * driver splits it; each piece becomes PRPs from one BuildScatterGatherList. The pattern differs
 * per mode, so a shared image file never answers for a mode that did not write.
 */

import { DiskDriver } from "../drivers/disk/disk-driver.js";
import diskModule from "../drivers/disk/disk-module.js";
import { DiskController } from "../src/devices/disk-controller.js";
import { type DiskImage, FileDiskImage } from "../src/devices/disk-image.js";
import { MemoryDiskImage } from "../src/devices/memory-disk-image.js";
import { NT_SUCCESS } from "../src/hal/wdm/ntstatus.js";
import { REMAPPING_MODES } from "../src/machine/machine-options.js";
import { GiB, MiB } from "../src/platform/page.js";
import { addressing, formatBytes, plural } from "./explain.js";
import { patternBytes, sameBytes } from "./host-memory.js";
import type { ScenarioDefinition } from "./scenario-run.js";

const LENGTH = 257 * 1024 + 512;
const BYTE_OFFSET = MiB;
const BUFFER_OFFSET = 512;
export const DISK_IMAGE_BYTES = 64 * MiB;

export const diskScenario: ScenarioDefinition = {
  driver: "disk",
  modules: [diskModule],
  run(run) {
    const path = run.environment.diskImagePath;
    const image: DiskImage =
      path === undefined
        ? new MemoryDiskImage(DISK_IMAGE_BYTES)
        : new FileDiskImage(path, { size: DISK_IMAGE_BYTES });
    try {
      const controller = run.plug(new DiskController(image));
      const fdo = run.start();
      const driver = run.machine.get(DiskDriver);
      const placement = { minAddress: 4 * GiB, offset: BUFFER_OFFSET };
      const data = patternBytes(LENGTH, run.seed * 7 + REMAPPING_MODES.indexOf(run.mode));
      const source = run.host.allocate(LENGTH, placement);
      const target = run.host.allocate(LENGTH, placement);
      run.host.write(source.va, data);

      run.observe();
      const write = run.send("write", fdo, source.mdl, BYTE_OFFSET);
      run.run();
      const read = run.send("read", fdo, target.mdl, BYTE_OFFSET);
      run.run();

      const ok = (irp: typeof write): boolean =>
        irp.completed && NT_SUCCESS(irp.IoStatus.Status) && irp.IoStatus.Information === LENGTH;
      const readBack = sameBytes(run.host.read(target.va, LENGTH), data);
      const stats = driver.statistics(fdo);
      const maxTransfer = driver.maximumTransfer(fdo);
      const onMedium = new Uint8Array(LENGTH);
      image.read(BYTE_OFFSET / 512, onMedium);
      const written = sameBytes(onMedium, data);
      return {
        dataIntact: ok(write) && ok(read) && readBack && written,
        explain: (r) => {
          const split = `${plural(stats.requests, "request")} split into ${plural(stats.transfers, "command")} of at most ${formatBytes(maxTransfer)} (map registers)`;
          if (r.outcome === "ok") {
            return `wrote and read back ${formatBytes(LENGTH)} above 4 GiB: ${split}, ${plural(run.mapping.elements, "list element")}; ${addressing(r.mode)}`;
          }
          return `${split}; medium ${written ? "has" : "lacks"} the data, read-back ${readBack ? "matches" : "differs"}, ${plural(controller.dmaErrors.length, "DMA error")}`;
        },
      };
    } finally {
      image.close();
    }
  },
};
