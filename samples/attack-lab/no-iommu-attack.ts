/**
 * Class 2, a malicious device with no IOMMU or in a pass-through domain (perf-security-anchors
 * §14.2.2, Thunderclap story 1): the lab NIC gets its driver like any NIC, then reads a kernel
 * secret and overwrites a kernel structure by physical address. Without translation, or with an
 * identity (pass-through) context, both reach RAM. With per-device remapping domains the device
 * reaches only what its driver mapped for it, and both accesses fault.
 */
import type { RemappingMode } from "../../src/machine/machine-options.js";
import { PAGE_SIZE } from "../../src/platform/page.js";
import { formatAddress } from "../explain.js";
import type { AttackConfiguration, AttackDefinition, Observation } from "./attack.js";
import { AttackLab, contains, secretBytes } from "./lab.js";

const MODES: Record<string, RemappingMode> = { "IOMMU off": "off", passthrough: "passthrough" };

function run(configuration: AttackConfiguration, seed: number): Observation {
  const lab = new AttackLab({ mode: configuration.mitigated ? "strict" : MODES[configuration.label]!, seed });
  const nic = lab.nics[0]!;
  const secret = secretBytes("kernel secret", PAGE_SIZE / 2, seed);
  const key = lab.kernelObject(secret);
  const table = secretBytes("dispatch table", 256, seed + 1);
  const structure = lab.kernelObject(table);
  const stolen = nic.read(key.physicalAddress, secret.length);
  nic.write(structure.physicalAddress, new Uint8Array(table.length).fill(0x41));
  const leaked = contains(stolen.bytes.subarray(0, stolen.bytesDone), secret);
  const corrupted = Buffer.compare(lab.read(structure.va, table.length), table) !== 0;
  const faults = lab.faults(0);
  const detail = leaked
    ? `read the secret at physical ${formatAddress(key.physicalAddress)} and rewrote a table at ${formatAddress(structure.physicalAddress)}`
    : `${faults} IOMMU faults: its domain maps only what its driver gave it`;
  return { leaked, corrupted, faults, detail };
}

export const noIommuAttack: AttackDefinition = {
  id: 2,
  key: "no-iommu",
  title: "malicious device, no IOMMU or pass-through",
  mitigation: "per-device remapping domains",
  practice:
    "Kernel DMA Protection (Windows 10 1803) turns the IOMMU on for external PCIe ports and keeps devices in remapping domains; Thunderclap found Windows 7/8.1/10 Home and Pro not using the IOMMU at all (perf-security-anchors §8-9)",
  configurations: [
    { label: "IOMMU off", mitigated: false, expected: "leaked" },
    { label: "passthrough", mitigated: false, expected: "leaked" },
    { label: "remapping (strict)", mitigated: true, expected: "blocked" },
  ],
  run,
  costConfig: (mitigated, seed) => ({ mode: mitigated ? "strict" : "off", seed }),
};
