/**
 * The port driver's completion watchdog, the mitigation for a device that withholds completion
 * (perf-security-anchors §14.2.5: "timeouts"). It does what the OS does for NICs: NDIS calls
 * MiniportCheckForHangEx about every two seconds and MiniportResetEx when it reports a hang
 * (ndis.h, MINIPORT_CHECK_FOR_HANG); Linux's dev_watchdog (net/sched/sch_generic.c) calls the
 * driver's ndo_tx_timeout once a transmit has been stuck for watchdog_timeo. Here a request still
 * in StartIo at two successive checks is hung, and the port sends the driver its reset request
 * (IOCTL_ATTACK_NIC_RESET), whose PutScatterGatherList revokes the device's mapping. The window
 * is bounded (2 to 4 s), not closed: data that lands in the mapped page before the reset is
 * still exposed.
 */
import { IOCTL_ATTACK_NIC_RESET } from "../../drivers/attack-nic/attack-nic-hw.js";
import { type IRP, IRP_MJ_DEVICE_CONTROL } from "../../src/hal/wdm/device-object.js";
import type { TimerHandle } from "../../src/platform/scheduler.js";
import type { AttackLab } from "./lab.js";

/** NDIS's default check-for-hang period. */
export const CHECK_FOR_HANG_NS = 2_000_000_000;

export class PortWatchdog {
  checks = 0;
  resets = 0;
  /** Virtual time of the last reset, undefined before any. */
  lastResetNs: number | undefined;
  readonly #lab: AttackLab;
  readonly #intervalNs: number;
  readonly #seen: (IRP | undefined)[] = [];
  #timer: TimerHandle | undefined;

  constructor(lab: AttackLab, intervalNs = CHECK_FOR_HANG_NS) {
    this.#lab = lab;
    this.#intervalNs = intervalNs;
  }

  start(): void {
    this.#timer = this.#lab.machine.scheduler.schedule(
      this.#intervalNs,
      () => this.#check(),
      "check for hang",
    );
  }

  stop(): void {
    if (this.#timer !== undefined) this.#lab.machine.scheduler.cancel(this.#timer);
    this.#timer = undefined;
  }

  #check(): void {
    this.checks++;
    this.#lab.fdos.forEach((fdo, i) => {
      const current = fdo.CurrentIrp;
      if (current !== undefined && current === this.#seen[i]) {
        this.#reset(i);
        this.#seen[i] = undefined;
      } else {
        this.#seen[i] = current;
      }
    });
    this.start();
  }

  #reset(index: number): void {
    const io = this.#lab.io;
    const irp = io.createIrp(IRP_MJ_DEVICE_CONTROL, {
      parameters: {
        DeviceIoControl: {
          IoControlCode: IOCTL_ATTACK_NIC_RESET,
          InputBufferLength: 0,
          OutputBufferLength: 0,
        },
      },
    });
    io.callDriver(this.#lab.fdos[index]!, irp);
    this.resets++;
    this.lastResetNs = this.#lab.machine.scheduler.now;
  }
}
