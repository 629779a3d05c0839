import { describe, expect, it } from "vitest";
import { STATUS_IO_TIMEOUT } from "../../drivers/attack-nic/attack-nic-hw.js";
import { AttackLab } from "../../samples/attack-lab/lab.js";
import { PortWatchdog } from "../../samples/attack-lab/port-watchdog.js";
import { STATUS_SUCCESS } from "../../src/hal/wdm/ntstatus.js";
import { REMAPPING_MODES } from "../../src/machine/machine-options.js";

describe("the attacknic driver on an honest lab NIC", () => {
  for (const mode of REMAPPING_MODES) {
    it(`transmits and receives page-crossing buffers intact (${mode})`, () => {
      const lab = new AttackLab({ mode, seed: 5 });
      const tx = lab.poolBuffer(3 * 4096 + 100);
      const data = Uint8Array.from({ length: tx.length }, (_, i) => (i * 7) % 256);
      lab.kernel.WriteMemory(tx.va, data);
      const send = lab.transmit(0, tx);
      const rx = lab.poolBuffer(5000);
      const receive = lab.receive(0, rx);
      lab.runUntil(() => send.completed && receive.completed);
      expect(send.IoStatus.Status).toBe(STATUS_SUCCESS);
      expect(receive.IoStatus.Status).toBe(STATUS_SUCCESS);
      const sent = lab.nics[0]!.transmitted;
      const total = sent.reduce((n, piece) => n + piece.length, 0);
      expect(total).toBe(tx.length);
      expect(Buffer.compare(Buffer.concat(sent), data)).toBe(0);
      expect(lab.read(rx.va, rx.length).every((byte) => byte === 0x5a)).toBe(true);
      expect(lab.faults(0)).toBe(0);
    });
  }

  it("revokes a request the device never completes when the port's watchdog resets it", () => {
    const lab = new AttackLab({ mode: "strict", seed: 2 });
    const nic = lab.nics[0]!;
    nic.withholdCompletion = true;
    const watchdog = new PortWatchdog(lab);
    watchdog.start();
    const buffer = lab.poolBuffer(512);
    const send = lab.transmit(0, buffer);
    lab.runUntil(() => send.completed, 10_000_000_000);
    watchdog.stop();
    expect(send.IoStatus.Status).toBe(STATUS_IO_TIMEOUT);
    expect(watchdog.resets).toBe(1);
    expect(nic.resetsIgnored).toBe(1);
    expect(lab.driver.statistics(lab.fdos[0]!).revoked).toBe(1);
    expect(nic.read(nic.programmed[0]!.address, 16).bytesDone).toBe(0);
  });
});
