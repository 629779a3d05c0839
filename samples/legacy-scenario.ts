/**
 * legacy: the ldmasim driver moves 150 KiB between buffers of scattered pages above 4 GiB and a
 * chip that has 32 address lines and no scatter/gather, with packet-based DMA. Each request is
 * split into transfers of at most the chip's 64 KiB buffer.
 *
 * The chip has no offset register: every transfer uses its buffer from byte 0. So the check is
 * per transfer, at the DMA port: for the write, the bytes the chip fetched in each transfer
 * (read from its buffer right after the access) must be the next piece of the data; for the
 * read, the buffer must end up holding, piece after piece, what the chip sent each time.
 */

import { LegacyDriver } from "../drivers/legacy/legacy-driver.js";
import legacyModule from "../drivers/legacy/legacy-module.js";
import { LegacyDmaDevice } from "../src/devices/legacy-dma-device.js";
import { NT_SUCCESS } from "../src/hal/wdm/ntstatus.js";
import { GiB } from "../src/platform/page.js";
import { addressing, formatBytes, plural } from "./explain.js";
import { patternBytes, sameBytes } from "./host-memory.js";
import type { ScenarioDefinition } from "./scenario-run.js";

const LENGTH = 150 * 1024 + 300;
const BUFFER_OFFSET = 700;

export const legacyScenario: ScenarioDefinition = {
  driver: "legacy",
  modules: [legacyModule],
  run(run) {
    const chip = run.plug(new LegacyDmaDevice());
    const fdo = run.start();
    const driver = run.machine.get(LegacyDriver);
    const placement = { minAddress: 4 * GiB, offset: BUFFER_OFFSET };
    const data = patternBytes(LENGTH, run.seed * 13);
    const onboard = patternBytes(chip.bufferSize, run.seed * 17);
    const source = run.host.allocate(LENGTH, placement);
    const target = run.host.allocate(LENGTH, placement);
    run.host.write(source.va, data);
    const above4GiB = source.physicalAddress >= 4 * GiB && target.physicalAddress >= 4 * GiB;

    // What the chip fetched, transfer by transfer; and how long each transfer to memory was.
    const fetched: Uint8Array[] = [];
    const stored: number[] = [];
    const stop = run.machine.events.on("device.transfer", (e) => {
      if (e.requesterId !== chip.requesterId || !e.ok) return;
      if (e.access === "read") fetched.push(chip.contents(e.length));
      else stored.push(e.length);
    });

    run.observe();
    const write = run.send("write", fdo, source.mdl);
    run.run();
    chip.load(onboard);
    const read = run.send("read", fdo, target.mdl);
    run.run();
    stop();

    const ok = (irp: typeof write): boolean =>
      irp.completed && NT_SUCCESS(irp.IoStatus.Status) && irp.IoStatus.Information === LENGTH;
    const expected = new Uint8Array(LENGTH);
    let at = 0;
    for (const length of stored) {
      expected.set(onboard.subarray(0, Math.min(length, LENGTH - at)), at);
      at += length;
    }
    const fetchedAll = Buffer.concat(fetched);
    const writeIntact = at === LENGTH && sameBytes(fetchedAll, data);
    const readIntact = sameBytes(run.host.read(target.va, LENGTH), expected);
    const stats = driver.statistics(fdo);
    return {
      dataIntact: ok(write) && ok(read) && writeIntact && readIntact,
      explain: (r) => {
        const where = above4GiB ? "above 4 GiB" : "(no RAM above 4 GiB)";
        const path =
          r.bounces > 0
            ? `via bounce pages below 4 GiB (${plural(r.bounces, "copy", "copies")})`
            : "via IOVA windows below 4 GiB, no copies";
        if (r.outcome === "ok") {
          return `${formatBytes(2 * LENGTH)} to and from a 32-bit chip ${where} in ${plural(stats.transfers, "transfer")} ${path}; ${addressing(r.mode)}`;
        }
        return `write ${writeIntact ? "intact" : "damaged"}, read ${readIntact ? "intact" : "damaged"} after ${plural(stats.transfers, "transfer")}, ${plural(chip.dmaErrors.length, "DMA error")}`;
      },
    };
  },
};
