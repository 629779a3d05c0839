/**
 * Class 4, the deferred-invalidation window (perf-security-anchors §14.2.4, Markuze ASPLOS'16):
 * the NIC transmits a one-page buffer, which fills its IOTLB with the page's translation. The
 * driver unmaps it, the buffer is freed and its frame goes straight to another kernel component,
 * which stores a secret there. Lazy policy: the unmap only queued its IOVA (256 entries or 10 ms),
 * so the stale IOTLB entry still translates and the NIC reads the secret through its old logical
 * address. Strict policy: the unmap invalidated the entry before returning, and the read faults.
 */
import { formatAddress } from "../explain.js";
import type { AttackDefinition, Observation } from "./attack.js";
import { AttackLab, contains, secretBytes } from "./lab.js";

function run(strict: boolean, seed: number): Observation {
  const lab = new AttackLab({ mode: strict ? "strict" : "lazy", seed });
  const nic = lab.nics[0]!;
  const buffer = lab.pageBuffer();
  lab.kernel.WriteMemory(buffer.va, new Uint8Array(buffer.length).fill(0x22));
  const send = lab.transmit(0, buffer);
  lab.runUntil(() => send.completed);
  const address = nic.programmed[0]!.address;
  const unmappedAt = lab.machine.scheduler.now;
  const secret = secretBytes("session key", 64, seed);
  lab.reusePage(buffer, "attack-lab.reused-page", secret);
  const seen = nic.read(address, secret.length);
  const windowNs = lab.machine.scheduler.now - unmappedAt;
  const leaked = contains(seen.bytes.subarray(0, seen.bytesDone), secret);
  const faults = lab.faults(0);
  const detail = leaked
    ? `${windowNs} ns after the unmap, IOVA ${formatAddress(address)} still translated (stale IOTLB entry) to the reused frame`
    : `the unmap invalidated ${formatAddress(address)} at once: ${faults} IOMMU fault`;
  return { leaked, corrupted: false, faults, detail };
}

export const staleIotlbAttack: AttackDefinition = {
  id: 4,
  key: "stale-iotlb",
  title: "stale IOTLB entry in the lazy flush window",
  mitigation: "strict invalidation",
  practice:
    "intel_iommu=strict / iommu.strict=1 invalidate at every unmap; Linux forces strict domains for untrusted devices; the default lazy queue waits for 256 entries or 10 ms (perf-security-anchors §10)",
  configurations: [
    { label: "lazy", mitigated: false, expected: "leaked" },
    { label: "strict", mitigated: true, expected: "blocked" },
  ],
  run: (configuration, seed) => run(configuration.mitigated, seed),
  costConfig: (mitigated, seed) => ({ mode: mitigated ? "strict" : "lazy", seed }),
};
