/**
 * bypass64 and bypass32: the bypasssim driver reads from its chip into a physically contiguous
 * buffer above 4 GiB, programming the buffer's physical address (MmGetPhysicalAddress).
 *
 * - bypass64, on the NVMe-like controller: 16 KiB read from sector 2048, data planted in the
 *   disk image by the host. Fine without remapping; with it, nothing was mapped at those
 *   addresses for the device.
 * - bypass32, on the legacy 32-bit chip: 16 KiB from its on-board buffer. The chip keeps the low
 *   32 bits of the address, so the data lands 4 GiB lower. To make that visible (and to show what
 *   it costs) the scenario plants a kernel structure exactly there first.
 */

import { BypassDriver } from "../drivers/bypass/bypass-driver.js";
import bypassModule from "../drivers/bypass/bypass-module.js";
import { DiskController } from "../src/devices/disk-controller.js";
import { LegacyDmaDevice } from "../src/devices/legacy-dma-device.js";
import { MemoryDiskImage } from "../src/devices/memory-disk-image.js";
import { NT_SUCCESS } from "../src/hal/wdm/ntstatus.js";
import { GiB, MiB, PAGE_SIZE } from "../src/platform/page.js";
import { addressing, formatAddress, formatBytes, plural } from "./explain.js";
import {
  type HostBuffer,
  KERNEL_STRUCTURE_OWNER,
  type PlantedData,
  patternBytes,
  sameBytes,
} from "./host-memory.js";
import type { ScenarioDefinition, ScenarioRun } from "./scenario-run.js";

const LENGTH = 16 * 1024;
const DISK_SECTOR = 2048;
const FOUR_GIB = 4 * GiB;
const PLACEMENT_ATTEMPTS = 32;

export const bypass64Scenario: ScenarioDefinition = {
  driver: "bypass64",
  modules: [bypassModule],
  run(run) {
    const image = new MemoryDiskImage(16 * MiB);
    const data = patternBytes(LENGTH, run.seed * 19);
    image.write(DISK_SECTOR, data);
    run.plug(new DiskController(image));
    const fdo = run.start();
    const buffer = run.host.allocate(LENGTH, { minAddress: FOUR_GIB, contiguous: true });
    run.observe();
    const read = run.send("read", fdo, buffer.mdl, DISK_SECTOR * 512);
    run.run();
    const intact =
      read.completed && NT_SUCCESS(read.IoStatus.Status) && sameBytes(run.host.read(buffer.va, LENGTH), data);
    const programmed = run.machine.get(BypassDriver).statistics(fdo).programmed;
    return {
      dataIntact: intact,
      explain: (r) => {
        const address = formatAddress(programmed[0] ?? buffer.physicalAddress);
        if (r.outcome === "ok")
          return `programmed physical ${address} from MmGetPhysicalAddress; works only because ${addressing(r.mode)}`;
        if (r.outcome === "blocked") {
          return `programmed physical ${address}; the device's domain maps nothing there: ${plural(r.faults, "IOMMU fault")}, the data never moved`;
        }
        return `programmed physical ${address}; read ${intact ? "intact" : "failed"}`;
      },
    };
  },
};

export const bypass32Scenario: ScenarioDefinition = {
  driver: "bypass32",
  modules: [bypassModule],
  run(run) {
    const chip = run.plug(new LegacyDmaDevice());
    const fdo = run.start();
    const data = patternBytes(LENGTH, run.seed * 23);
    chip.load(data);
    const { buffer, victim } = placeAboveVictim(run);
    run.observe();
    const read = run.send("read", fdo, buffer.mdl);
    run.run();
    const intact =
      read.completed && NT_SUCCESS(read.IoStatus.Status) && sameBytes(run.host.read(buffer.va, LENGTH), data);
    const victimIntact =
      victim === undefined || sameBytes(run.host.read(victim.va, victim.length), victim.bytes);
    const programmed = run.machine.get(BypassDriver).statistics(fdo).programmed[0] ?? buffer.physicalAddress;
    return {
      dataIntact: intact && victimIntact,
      explain: (r) => {
        const reached = formatAddress(programmed % FOUR_GIB);
        if (r.outcome === "corrupted") {
          const owners = [...new Set(r.changedFrames.map((f) => f.owner))].join(", ");
          return `programmed ${formatAddress(programmed)}; the chip kept 32 bits and wrote ${formatBytes(LENGTH)} at ${reached}, over ${owners}`;
        }
        if (r.outcome === "blocked") {
          return `programmed ${formatAddress(programmed)}, truncated to ${reached}: not mapped for the device, ${plural(r.faults, "IOMMU fault")}, nothing written`;
        }
        if (r.outcome === "ok")
          return `buffer at ${formatAddress(programmed)} is below 4 GiB, so the truncation did no harm; ${addressing(r.mode)}`;
        return `programmed ${formatAddress(programmed)}; read ${intact ? "intact" : "failed"}`;
      },
    };
  },
};

/**
 * A kernel structure at V below 4 GiB and the I/O buffer at exactly V + 4 GiB, where a 32-bit
 * chip's truncated address lands. Without RAM above 4 GiB, just a buffer.
 */
function placeAboveVictim(run: ScenarioRun): { buffer: HostBuffer; victim: PlantedData | undefined } {
  const host = run.host;
  if (host.hasHighMemory) {
    const highest = Math.min(3 * GiB, host.ramTop - FOUR_GIB) - LENGTH;
    for (let attempt = 0; attempt < PLACEMENT_ATTEMPTS; attempt++) {
      const victim = host.plant(KERNEL_STRUCTURE_OWNER, kernelStructure(LENGTH), {
        maxAddress: highest + LENGTH - 1,
      });
      const buffer = host.allocateAt(victim.physicalAddress + FOUR_GIB, LENGTH);
      if (buffer !== undefined) return { buffer, victim };
      host.unplant(KERNEL_STRUCTURE_OWNER, victim);
    }
  }
  return { buffer: host.allocate(LENGTH, { contiguous: true }), victim: undefined };
}

/** A page-aligned table of pointer-like values: what a dispatch table looks like in memory. */
export function kernelStructure(length: number): Uint8Array {
  const bytes = new Uint8Array(length);
  const view = new DataView(bytes.buffer);
  for (let offset = 0; offset < length; offset += 8) {
    view.setUint32(offset, 0x8000_1000 + (offset % PAGE_SIZE) * 16, true);
    view.setUint32(offset + 4, 0xffff_f802, true);
  }
  return bytes;
}
