/**
 * Class 5, a device that withholds completion to keep its mapping (perf-security-anchors
 * §14.2.5, Thunderclap story 7): the NIC reads the 1 KiB transmit buffer it was given and never
 * reports DONE, so the driver never unmaps it. Ten seconds later the pool hands the rest of that
 * page to another kernel component, which stores a secret there; the NIC, still mapped, reads the
 * page. The mitigation is what real systems do with a request that never completes: the port's
 * completion watchdog (NDIS check-for-hang and reset, Linux's transmit timeout) has the driver
 * abandon the request and unmap it (strict: invalidated before the unmap returns), so the page is
 * out of the device's reach long before it is reused.
 */
import { STATUS_IO_TIMEOUT } from "../../drivers/attack-nic/attack-nic-hw.js";
import { PAGE_SIZE } from "../../src/platform/page.js";
import type { AttackDefinition, Observation } from "./attack.js";
import { AttackLab, contains, secretBytes } from "./lab.js";
import type { LabAccess } from "./lab-nic.js";
import { PortWatchdog } from "./port-watchdog.js";

const BUFFER = 1024;
/** When the rest of the page is reused: long after any completion timeout. */
const REUSE_AT_NS = 10_000_000_000;

function run(watchdogOn: boolean, seed: number): Observation {
  const lab = new AttackLab({ mode: "strict", seed });
  const nic = lab.nics[0]!;
  nic.withholdCompletion = true;
  const tx = lab.poolBuffer(BUFFER);
  lab.kernel.WriteMemory(tx.va, new Uint8Array(BUFFER).fill(0x33));
  const watchdog = watchdogOn ? new PortWatchdog(lab) : undefined;
  watchdog?.start();
  const send = lab.transmit(0, tx);
  lab.runUntilProgrammed(0, 1);
  const address = nic.programmed[0]!.address;
  const secret = secretBytes("ssh-agent key", BUFFER, seed);
  let secretAt = 0;
  let seen: LabAccess | undefined;
  const scheduler = lab.machine.scheduler;
  scheduler.schedule(REUSE_AT_NS - scheduler.now, () => {
    secretAt = lab.kernelObject(secret).physicalAddress;
  });
  scheduler.schedule(REUSE_AT_NS + 1_000 - scheduler.now, () => {
    seen = nic.read(address - (address % PAGE_SIZE), PAGE_SIZE);
  });
  lab.runUntil(() => seen !== undefined, 2 * REUSE_AT_NS);
  watchdog?.stop();
  if (Math.floor(secretAt / PAGE_SIZE) !== Math.floor(tx.physicalAddress / PAGE_SIZE)) {
    return {
      leaked: false,
      corrupted: false,
      faults: 0,
      detail: "",
      precondition: "the secret did not land in the buffer's page",
    };
  }
  const leaked = seen !== undefined && contains(seen.bytes.subarray(0, seen.bytesDone), secret);
  const faults = lab.faults(0);
  const revokedAt = watchdog?.lastResetNs;
  const detail =
    revokedAt === undefined
      ? `no completion for ${(REUSE_AT_NS / 1e9).toFixed(0)} s, so the page stayed mapped; the secret stored there at 10 s came back to the device`
      : `the watchdog reset the NIC at ${(revokedAt / 1e9).toFixed(1)} s; the request completed with ${send.IoStatus.Status === STATUS_IO_TIMEOUT ? "STATUS_IO_TIMEOUT" : send.IoStatus.Status.toString(16)}, and the read at 10 s faulted`;
  return { leaked, corrupted: false, faults, detail };
}

export const withheldCompletionAttack: AttackDefinition = {
  id: 5,
  key: "withheld-completion",
  title: "device withholds completion to keep its mapping",
  mitigation: "completion watchdog that revokes the mapping",
  practice:
    "NDIS calls MiniportCheckForHangEx about every 2 s and MiniportResetEx on a hang; Linux's dev_watchdog calls ndo_tx_timeout after watchdog_timeo; Thunderclap lists timeouts, copying out and page isolation (perf-security-anchors §8, §14.2.5)",
  configurations: [
    { label: "no timeout", mitigated: false, expected: "leaked" },
    { label: "watchdog reset", mitigated: true, expected: "blocked" },
  ],
  run: (configuration, seed) => run(configuration.mitigated, seed),
  costConfig: (mitigated, seed) => ({ mode: "strict", seed, watchdog: mitigated }),
};
