/**
 * nic: the e1000sim driver sends frames to itself over a loopback cable. Eight frames from 60
 * bytes to 16000 (jumbo frames span several 2 KiB receive buffers), placed so that some cross
 * page boundaries and their lists have several elements. Reads are posted first; each must
 * come back with exactly the frame sent in the same position.
 */
import nicModule from "../drivers/nic/nic-module.js";
import { LoopbackWire } from "../src/devices/loopback-wire.js";
import { NicDevice } from "../src/devices/nic-device.js";
import { NT_SUCCESS } from "../src/hal/wdm/ntstatus.js";
import { PAGE_SIZE } from "../src/platform/page.js";
import { addressing, formatBytes, plural } from "./explain.js";
import { patternBytes, sameBytes } from "./host-memory.js";
import type { ScenarioDefinition } from "./scenario-run.js";

const FRAME_SIZES = [60, 1514, 590, 4096, 9018, 1514, 128, 16_000];
/** IEEE 802 "local experimental" EtherType: nobody's protocol. */
const ETHERTYPE_EXPERIMENTAL = 0x88b5;
const SOURCE_MAC = [0x02, 0x00, 0x5e, 0x00, 0x00, 0x01];
const RECEIVE_BUFFER = 16 * 1024;

export const nicScenario: ScenarioDefinition = {
  driver: "nic",
  modules: [nicModule],
  run(run) {
    const nic = run.plug(new NicDevice());
    const wire = new LoopbackWire(
      run.environment.pcap === undefined ? {} : { capture: run.environment.pcap },
    );
    wire.plug(nic);
    const fdo = run.start();

    const frames = FRAME_SIZES.map((size, i) => {
      const frame = patternBytes(size, run.seed * 100 + i);
      frame.set(nic.mac, 0);
      frame.set(SOURCE_MAC, 6);
      frame[12] = ETHERTYPE_EXPERIMENTAL >> 8;
      frame[13] = ETHERTYPE_EXPERIMENTAL & 0xff;
      return frame;
    });
    // Odd frames start 100 bytes before a page ends, so their lists have two or more elements.
    const sendBuffers = frames.map((frame, i) => {
      const buffer = run.host.allocate(frame.length, { offset: i % 2 === 1 ? PAGE_SIZE - 100 : 0 });
      run.host.write(buffer.va, frame);
      return buffer;
    });
    const receiveBuffers = frames.map(() => run.host.allocate(RECEIVE_BUFFER));

    run.observe();
    const reads = receiveBuffers.map((buffer) => run.send("read", fdo, buffer.mdl));
    const writes = sendBuffers.map((buffer) => run.send("write", fdo, buffer.mdl));
    run.run();

    const sent = writes.filter((irp) => irp.completed && NT_SUCCESS(irp.IoStatus.Status)).length;
    const received = reads.filter(
      (irp, i) =>
        irp.completed &&
        NT_SUCCESS(irp.IoStatus.Status) &&
        irp.IoStatus.Information === frames[i]!.length &&
        sameBytes(run.host.read(receiveBuffers[i]!.va, frames[i]!.length), frames[i]!),
    ).length;
    const pending = [...reads, ...writes].filter((irp) => !irp.completed).length;
    const total = frames.reduce((n, f) => n + f.length, 0);
    return {
      dataIntact: sent === frames.length && received === frames.length,
      explain: (r) => {
        if (r.outcome === "ok") {
          const { lists, elements } = run.mapping;
          return `${frames.length} frames (${formatBytes(total)}) out and back over loopback, ${plural(lists, "list")} (${plural(elements, "element")}), ${plural(r.interrupts, "moderated interrupt")}; ${addressing(r.mode)}`;
        }
        if (r.outcome === "blocked") {
          return `${plural(r.faults, "IOMMU fault")}: ${sent}/${frames.length} frames sent, ${received} received intact`;
        }
        return `${sent}/${frames.length} frames sent, ${received} received intact${pending > 0 ? `, ${plural(pending, "request")} never completed` : ""}`;
      },
    };
  },
};
