/**
 * Class 1, a driver that bypasses the DMA API (perf-security-anchors §14.2.1): bypasssim programs
 * its 32-bit legacy chip with MmGetPhysicalAddress of a buffer above 4 GiB. The chip keeps 32
 * address bits, so the data lands 4 GiB lower, where the lab planted a kernel structure. Without
 * remapping that structure is overwritten; with DMA remapping the chip's domain maps nothing
 * there and the IOMMU faults the transfer.
 */
import bypassModule from "../../drivers/bypass/bypass-module.js";
import { IoManager } from "../../src/ddi/io-manager.js";
import { LegacyDmaDevice } from "../../src/devices/legacy-dma-device.js";
import { Machine } from "../../src/machine/machine.js";
import { GiB } from "../../src/platform/page.js";
import { formatAddress, plural } from "../explain.js";
import { HostMemory, KERNEL_STRUCTURE_OWNER, type PlantedData, patternBytes } from "../host-memory.js";
import type { AttackDefinition, Observation } from "./attack.js";

const LENGTH = 16 * 1024;
const FOUR_GIB = 4 * GiB;
const ATTEMPTS = 32;

function run(mode: "off" | "strict", seed: number): Observation {
  const machine = new Machine({ remapping: mode, seed }, [bypassModule]);
  const chip = new LegacyDmaDevice();
  machine.pci.attach(chip);
  const io = machine.get(IoManager);
  io.enumerate();
  io.loadDrivers();
  const fdo = io.node(chip.requesterId).fdo;
  if (fdo === undefined)
    return {
      leaked: false,
      corrupted: false,
      faults: 0,
      detail: "",
      precondition: "bypasssim did not start",
    };
  let faults = 0;
  machine.events.on("iommu.fault", (event) => {
    if (event.requesterId === chip.requesterId) faults++;
  });
  chip.load(patternBytes(LENGTH, seed * 29));
  const host = new HostMemory(machine);
  let victim: PlantedData | undefined;
  let buffer: ReturnType<HostMemory["allocateAt"]>;
  for (let attempt = 0; attempt < ATTEMPTS && buffer === undefined; attempt++) {
    const structure = patternBytes(LENGTH, seed * 31 + attempt);
    victim = host.plant(KERNEL_STRUCTURE_OWNER, structure, { maxAddress: 3 * GiB - 1 });
    buffer = host.allocateAt(victim.physicalAddress + FOUR_GIB, LENGTH);
    if (buffer === undefined) host.unplant(KERNEL_STRUCTURE_OWNER, victim);
  }
  if (victim === undefined || buffer === undefined) {
    return {
      leaked: false,
      corrupted: false,
      faults,
      detail: "",
      precondition: "no buffer 4 GiB above a kernel structure",
    };
  }
  const read = io.sendRead(fdo, buffer.mdl);
  machine.runUntilIdle();
  const corrupted = Buffer.compare(host.read(victim.va, LENGTH), victim.bytes) !== 0;
  const programmed = buffer.physicalAddress;
  const detail = corrupted
    ? `programmed ${formatAddress(programmed)}; the chip wrote at ${formatAddress(programmed % FOUR_GIB)}, over a kernel structure`
    : `programmed ${formatAddress(programmed)}; nothing mapped there for the chip: ${plural(faults, "IOMMU fault")}, request ${read.completed ? "failed" : "pending"}`;
  return { leaked: false, corrupted, faults, detail };
}

export const bypassAttack: AttackDefinition = {
  id: 1,
  key: "bypass",
  title: "driver bypasses the DMA API",
  mitigation: "DMA remapping (the driver must use the DMA adapter)",
  practice:
    "Windows requires DmaRemappingCompatible drivers that do all DMA through the WDM/WDF/NDIS DMA APIs, and Driver Verifier's DMA verification catches bypasses (windows-dma-ddi §6-7)",
  configurations: [
    { label: "IOMMU off", mitigated: false, expected: "corrupted" },
    { label: "remapping (strict)", mitigated: true, expected: "blocked" },
  ],
  run: (configuration, seed) => run(configuration.mitigated ? "strict" : "off", seed),
  costConfig: (mitigated, seed) => ({ mode: mitigated ? "strict" : "off", seed }),
};
