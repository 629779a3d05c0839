/**
 * The benign workload that prices a mitigation: every lab NIC, behaving, transmits and receives
 * PACKETS packets of 1500 bytes from pool buffers (sub-page, as network buffers are), one request
 * at a time. Run once without and once with the mitigation; the differences of what the machine
 * counted are the mitigation's cost. Deferred work (a lazy flush queue's invalidation) is drained
 * and counted; the virtual time is the time the transfers took, up to the last completion.
 */
import type { CostConfig } from "./attack.js";
import { estimatedCycles } from "./cost-profile.js";
import { AttackLab, type Measured } from "./lab.js";
import { PortWatchdog } from "./port-watchdog.js";

export const PACKETS = 64;
const PACKET_BYTES = 1500;

export interface WorkloadCost extends Measured {
  readonly transfers: number;
  readonly failed: number;
  readonly estimatedCycles: number;
  readonly watchdogChecks: number;
}

export function runWorkload(config: CostConfig): WorkloadCost {
  const lab = new AttackLab(config);
  const watchdog = config.watchdog === true ? new PortWatchdog(lab) : undefined;
  watchdog?.start();
  const meter = lab.measure();
  const start = lab.machine.scheduler.now;
  let transfers = 0;
  let failed = 0;
  for (let packet = 0; packet < PACKETS; packet++) {
    lab.nics.forEach((_nic, index) => {
      for (const direction of ["tx", "rx"] as const) {
        const buffer = lab.poolBuffer(PACKET_BYTES);
        const irp = direction === "tx" ? lab.transmit(index, buffer) : lab.receive(index, buffer);
        lab.runUntil(() => irp.completed);
        transfers++;
        if (irp.IoStatus.Status !== 0) failed++;
        lab.freePoolBuffer(buffer);
      }
    });
  }
  const busyNs = lab.machine.scheduler.now - start;
  watchdog?.stop();
  lab.machine.runUntilIdle();
  const measured = meter.stop();
  return {
    ...measured,
    timeNs: busyNs,
    transfers,
    failed,
    estimatedCycles: estimatedCycles(measured),
    watchdogChecks: watchdog?.checks ?? 0,
  };
}
