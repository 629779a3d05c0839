/**
 * Class 6, one domain shared by several devices (perf-security-anchors §14.2.6, Thunderclap
 * stories 2-3: macOS and Windows 10 VBS used one I/O page table for every device). Two lab NICs
 * each get a 16 KiB receive ring in a common buffer; the first one's device receives keystrokes
 * into its ring. The second one knows only its own ring's logical address, and scans the logical
 * pages around it. In one shared domain the rings are neighbours and the scan finds the
 * keystrokes; with a domain per device the neighbouring pages map nothing for it and fault.
 */
import { PAGE_SIZE } from "../../src/platform/page.js";
import { formatAddress } from "../explain.js";
import type { AttackDefinition, Observation } from "./attack.js";
import { AttackLab, contains, secretBytes } from "./lab.js";

const RING = 16 * 1024;
/** Logical pages scanned on each side of the attacker's own ring. */
const SCAN_PAGES = 32;

function run(shared: boolean, seed: number): Observation {
  const lab = new AttackLab({ mode: "strict", seed, nics: 2, ringBytes: RING, shareDomains: shared });
  const [victim, attacker] = lab.nics;
  const keystrokes = secretBytes("keystrokes: pw=", 256, seed);
  if (!victim!.deliver(keystrokes) || attacker!.ringAddress === undefined) {
    return {
      leaked: false,
      corrupted: false,
      faults: 0,
      detail: "",
      precondition: "the rings were not set up",
    };
  }
  const own = attacker!.ringAddress;
  let found: number | undefined;
  for (let page = -SCAN_PAGES; page < SCAN_PAGES + RING / PAGE_SIZE && found === undefined; page++) {
    const address = own + page * PAGE_SIZE;
    if (address < 0) continue;
    const seen = attacker!.read(address, PAGE_SIZE);
    if (contains(seen.bytes.subarray(0, seen.bytesDone), keystrokes)) found = address;
  }
  const faults = lab.faults(1);
  const detail =
    found !== undefined
      ? `scanning around its ring at ${formatAddress(own)}, the attacker found the other NIC's keystrokes at ${formatAddress(found)}`
      : `only its own ring is mapped in its domain: ${faults} IOMMU faults over ${2 * SCAN_PAGES} neighbouring pages`;
  return { leaked: found !== undefined, corrupted: false, faults, detail };
}

export const sharedDomainAttack: AttackDefinition = {
  id: 6,
  key: "shared-domain",
  title: "one domain shared by several devices",
  mitigation: "a domain per device",
  practice:
    "Linux and FreeBSD give each device its own IOVA space and Kernel DMA Protection assigns per-device regions; Thunderclap found one shared map on macOS and Windows 10 VBS (perf-security-anchors §8-9)",
  configurations: [
    { label: "shared domain", mitigated: false, expected: "leaked" },
    { label: "per-device domains", mitigated: true, expected: "blocked" },
  ],
  run: (configuration, seed) => run(!configuration.mitigated, seed),
  costConfig: (mitigated, seed) => ({
    mode: "strict",
    seed,
    nics: 2,
    ringBytes: RING,
    shareDomains: !mitigated,
  }),
};
