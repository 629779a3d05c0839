import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterEach, describe, expect, it } from "vitest";
import { LoopbackWire } from "../../src/devices/loopback-wire.js";
import { NicDevice } from "../../src/devices/nic-device.js";
import {
  IcrBit,
  NicRegister,
  RctlBit,
  RxStatus,
  TctlBit,
  TxCmd,
  TxStatus,
} from "../../src/devices/nic-registers.js";
import { FaultReason } from "../../src/iommu/fault-reason.js";
import { GiB, MiB, PAGE_SIZE } from "../../src/platform/page.js";
import { type TestMachine, testBytes } from "../../src/testing/index.js";
import { PcapWriter } from "../../src/trace/pcap-writer.js";
import { countInterrupts, makeRig, plug } from "./device-rig.js";

/** The TX ring lives above 4 GiB, to show the 64-bit base registers at work. */
const TX_RING = 4 * GiB + 0x1000;
const RX_RING = 0x10_0000;
const TX_BUFFERS = 4 * GiB + MiB;
const RX_BUFFERS = 0x20_0000;
const RX_BUFFER_SIZE = 2048;

/** Just enough of an e1000 driver to drive the model through its registers and rings. */
class NicHarness {
  txTail = 0;
  rxNext = 0;
  rdt: number;

  constructor(
    readonly rig: TestMachine,
    readonly nic: NicDevice,
    readonly txCount = 8,
    readonly rxCount = 8,
    rxAvailable = rxCount - 1,
  ) {
    const w = (offset: number, value: number): void => rig.mmioWrite(nic, offset, value);
    rig.mmioWrite64(nic, NicRegister.tdbal, TX_RING);
    w(NicRegister.tdlen, txCount * 16);
    w(NicRegister.tdh, 0);
    w(NicRegister.tdt, 0);
    rig.mmioWrite64(nic, NicRegister.rdbal, RX_RING);
    w(NicRegister.rdlen, rxCount * 16);
    for (let slot = 0; slot < rxCount; slot++) {
      this.#writeDescriptor(RX_RING, slot, RX_BUFFERS + slot * RX_BUFFER_SIZE, 0, 0);
    }
    w(NicRegister.rdh, 0);
    this.rdt = rxAvailable;
    w(NicRegister.rdt, rxAvailable);
    w(NicRegister.rctl, RctlBit.enable | RctlBit.bam);
    w(NicRegister.tctl, TctlBit.enable | TctlBit.psp);
    w(NicRegister.ims, IcrBit.txdw | IcrBit.rxt0 | IcrBit.rxo | IcrBit.dmaError);
  }

  /** Puts one frame in the TX ring, one descriptor per piece; EOP and RS on the last. Does not ring TDT. */
  queue(pieces: readonly Uint8Array[], endOfPacket = true): void {
    pieces.forEach((piece, i) => {
      const slot = this.txTail;
      const buffer = TX_BUFFERS + slot * PAGE_SIZE;
      this.rig.memory.write(buffer, piece);
      const last = endOfPacket && i === pieces.length - 1;
      this.#writeDescriptor(
        TX_RING,
        slot,
        buffer,
        piece.length,
        last ? TxCmd.eop | TxCmd.ifcs | TxCmd.rs : TxCmd.ifcs,
      );
      this.txTail = (this.txTail + 1) % this.txCount;
    });
  }

  kick(): void {
    this.rig.mmioWrite(this.nic, NicRegister.tdt, this.txTail);
  }

  send(pieces: readonly Uint8Array[]): void {
    this.queue(pieces);
    this.kick();
  }

  /** Takes every completed frame off the RX ring and gives the descriptors back. */
  collect(): Uint8Array[] {
    const frames: Uint8Array[] = [];
    let parts: Uint8Array[] = [];
    for (;;) {
      const descriptor = this.rig.readPhysical(RX_RING + this.rxNext * 16, 16);
      const view = new DataView(descriptor.buffer);
      const status = view.getUint8(12);
      if ((status & RxStatus.dd) === 0) break;
      parts.push(this.rig.readPhysical(RX_BUFFERS + this.rxNext * RX_BUFFER_SIZE, view.getUint16(8, true)));
      this.rig.memory.write(RX_RING + this.rxNext * 16 + 12, new Uint8Array(1));
      this.rxNext = (this.rxNext + 1) % this.rxCount;
      this.rdt = (this.rdt + 1) % this.rxCount;
      this.rig.mmioWrite(this.nic, NicRegister.rdt, this.rdt);
      if ((status & RxStatus.eop) !== 0) {
        frames.push(new Uint8Array(Buffer.concat(parts)));
        parts = [];
      }
    }
    return frames;
  }

  txStatus(slot: number): number {
    return this.rig.readPhysical(TX_RING + slot * 16 + 12, 1)[0]!;
  }

  #writeDescriptor(ring: number, slot: number, buffer: number, length: number, cmd: number): void {
    const bytes = new Uint8Array(16);
    const view = new DataView(bytes.buffer);
    view.setUint32(0, buffer % 2 ** 32, true);
    view.setUint32(4, Math.floor(buffer / 2 ** 32), true);
    view.setUint16(8, length, true);
    view.setUint8(11, cmd);
    this.rig.memory.write(ring + slot * 16, bytes);
  }
}

/** An Ethernet frame: broadcast destination, the NIC's source, local experimental EtherType 0x88b5. */
function ethernetFrame(nic: NicDevice, payloadLength: number, seed: number): Uint8Array {
  const frame = new Uint8Array(14 + payloadLength);
  frame.fill(0xff, 0, 6);
  frame.set(nic.mac, 6);
  frame[12] = 0x88;
  frame[13] = 0xb5;
  frame.set(testBytes(payloadLength, seed), 14);
  return frame;
}

function split(frame: Uint8Array, cuts: readonly number[]): Uint8Array[] {
  const points = [0, ...cuts.filter((c) => c > 0 && c < frame.length).sort((a, b) => a - b), frame.length];
  const pieces: Uint8Array[] = [];
  for (let i = 1; i < points.length; i++) {
    if (points[i]! > points[i - 1]!) pieces.push(frame.subarray(points[i - 1]!, points[i]!));
  }
  return pieces;
}

function loopedNic(
  rig: TestMachine,
  options: { txCount?: number; rxCount?: number; rxAvailable?: number } = {},
) {
  const nic = plug(rig, new NicDevice());
  const wire = new LoopbackWire();
  wire.plug(nic);
  const harness = new NicHarness(rig, nic, options.txCount, options.rxCount, options.rxAvailable);
  return { nic, wire, harness };
}

describe("NicDevice (e1000-like) over a loopback wire", () => {
  it("sends a frame gathered from three descriptors and receives it intact", () => {
    const rig = makeRig();
    const { nic, wire, harness } = loopedNic(rig);
    const causes: number[] = [];
    const irq = countInterrupts(rig, nic, () => {
      const icr = rig.mmioRead(nic, NicRegister.icr);
      causes.push(icr);
      return icr !== 0;
    });
    const frame = ethernetFrame(nic, 1000, 7);
    harness.send(split(frame, [14, 300]));
    expect(rig.mmioRead(nic, NicRegister.tdh)).toBe(0);
    rig.scheduler.runUntilIdle();

    expect(harness.collect()).toEqual([frame]);
    expect(rig.mmioRead(nic, NicRegister.tdh)).toBe(3);
    expect(harness.txStatus(2) & TxStatus.dd).toBe(TxStatus.dd);
    expect(harness.txStatus(0) & TxStatus.dd).toBe(0);
    expect(irq.count).toBeGreaterThan(0);
    const seen = causes.reduce((a, b) => a | b, 0);
    expect(seen & (IcrBit.txdw | IcrBit.rxt0)).toBe(IcrBit.txdw | IcrBit.rxt0);
    expect(rig.mmioRead(nic, NicRegister.icr)).toBe(0);
    expect(rig.mmioRead(nic, NicRegister.gptc)).toBe(1);
    expect(rig.mmioRead(nic, NicRegister.gprc)).toBe(1);
    expect(rig.mmioRead(nic, NicRegister.gptc)).toBe(0);
    expect(wire.stats).toEqual({ frames: 1, bytes: frame.length, dropped: 0 });
    expect(nic.dmaErrors).toEqual([]);
  });

  it("waits for the EOP descriptor before sending a frame", () => {
    const rig = makeRig();
    const { nic, harness } = loopedNic(rig);
    const frame = ethernetFrame(nic, 200, 3);
    const pieces = split(frame, [100]);
    // The driver hands over half a frame: no EOP yet.
    harness.queue(pieces.slice(0, 1), false);
    harness.kick();
    rig.scheduler.runUntilIdle();
    expect(rig.mmioRead(nic, NicRegister.tdh)).toBe(0);
    expect(nic.stats.txFrames).toBe(0);
    harness.send(pieces.slice(1));
    rig.scheduler.runUntilIdle();
    expect(harness.collect()).toEqual([frame]);
  });

  it("pads a short frame to 60 bytes when TCTL.PSP is set", () => {
    const rig = makeRig();
    const { nic, harness } = loopedNic(rig);
    const frame = ethernetFrame(nic, 10, 1);
    harness.send([frame]);
    rig.scheduler.runUntilIdle();
    const [received] = harness.collect();
    expect(received!.length).toBe(60);
    expect(received!.subarray(0, frame.length)).toEqual(frame);
    expect(received!.subarray(frame.length).every((b) => b === 0)).toBe(true);
  });

  it("does not put an empty frame on the wire, but still completes its descriptors", () => {
    const rig = makeRig();
    const { nic, wire, harness } = loopedNic(rig);
    rig.mmioWrite(nic, NicRegister.tctl, TctlBit.enable);
    harness.send([new Uint8Array(0)]);
    rig.scheduler.runUntilIdle();
    expect(wire.stats.frames).toBe(0);
    expect(nic.stats.txInvalid).toBe(1);
    expect(rig.mmioRead(nic, NicRegister.tdh)).toBe(1);
    expect(harness.txStatus(0) & TxStatus.dd).toBe(TxStatus.dd);
  });

  it("delivers any frames split over any descriptors intact and in order, across ring wraps", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            payload: fc.integer({ min: 46, max: 3000 }),
            cuts: fc.array(fc.integer({ min: 1, max: 3013 }), { maxLength: 3 }),
            batch: fc.boolean(),
          }),
          { minLength: 1, maxLength: 12 },
        ),
        (specs) => {
          const rig = makeRig();
          const { nic, harness } = loopedNic(rig, { txCount: 8, rxCount: 16 });
          const sent: Uint8Array[] = [];
          const received: Uint8Array[] = [];
          let queued = 0;
          specs.forEach((spec, i) => {
            const frame = ethernetFrame(nic, spec.payload, i + 1);
            const pieces = split(frame, spec.cuts);
            // A ring of 8 holds at most 7 outstanding descriptors (TDT never catches up with TDH).
            if (queued + pieces.length > 7) {
              harness.kick();
              rig.scheduler.runUntilIdle();
              received.push(...harness.collect());
              queued = 0;
            }
            harness.queue(pieces);
            queued += pieces.length;
            sent.push(frame);
            if (!spec.batch) {
              harness.kick();
              rig.scheduler.runUntilIdle();
              received.push(...harness.collect());
              queued = 0;
            }
          });
          harness.kick();
          rig.scheduler.runUntilIdle();
          received.push(...harness.collect());
          expect(received).toEqual(sent);
          expect(rig.mmioRead(nic, NicRegister.tdh)).toBe(harness.txTail);
          expect(nic.stats.rxMissed).toBe(0);
        },
      ),
      { numRuns: 40 },
    );
  });

  it("drops and counts frames when the RX ring has no free descriptor", () => {
    const rig = makeRig();
    const { nic, wire, harness } = loopedNic(rig, { rxAvailable: 2 });
    let icr = 0;
    countInterrupts(rig, nic, () => {
      icr |= rig.mmioRead(nic, NicRegister.icr);
      return true;
    });
    for (let i = 0; i < 5; i++) harness.queue([ethernetFrame(nic, 100, i)]);
    harness.kick();
    rig.scheduler.runUntilIdle();

    expect(harness.collect()).toHaveLength(2);
    expect(wire.stats.dropped).toBe(3);
    expect(nic.stats.rxMissed).toBe(3);
    expect(icr & IcrBit.rxo).toBe(IcrBit.rxo);
    expect(rig.mmioRead(nic, NicRegister.mpc)).toBe(3);
    expect(rig.mmioRead(nic, NicRegister.mpc)).toBe(0);
    expect(rig.mmioRead(nic, NicRegister.tpr)).toBe(5);
  });

  it("spreads a frame longer than one RX buffer over several descriptors", () => {
    const rig = makeRig();
    const { nic, harness } = loopedNic(rig);
    const frame = ethernetFrame(nic, 5000, 9);
    harness.send(split(frame, [4000]));
    rig.scheduler.runUntilIdle();
    expect(harness.rxNext).toBe(0);
    expect(harness.collect()).toEqual([frame]);
    expect(harness.rxNext).toBe(3);
  });

  it("coalesces interrupts under ITR and raises one per event without it", () => {
    const burst = (itr: number): { interrupts: number; frames: number } => {
      const rig = makeRig();
      const { nic, harness } = loopedNic(rig, { txCount: 16, rxCount: 16 });
      rig.mmioWrite(nic, NicRegister.itr, itr);
      const irq = countInterrupts(rig, nic, () => rig.mmioRead(nic, NicRegister.icr) !== 0);
      for (let i = 0; i < 10; i++) harness.queue([ethernetFrame(nic, 64, i)]);
      harness.kick();
      rig.scheduler.runUntilIdle();
      return { interrupts: irq.count, frames: harness.collect().length };
    };
    const unmoderated = burst(0);
    // 100 µs between interrupts: the 10 frames take about 10 µs on a 1 Gb/s wire.
    const moderated = burst(Math.ceil(100_000 / 256));
    expect(unmoderated.frames).toBe(10);
    expect(moderated.frames).toBe(10);
    expect(unmoderated.interrupts).toBeGreaterThanOrEqual(10);
    expect(moderated.interrupts).toBeGreaterThanOrEqual(1);
    expect(moderated.interrupts).toBeLessThanOrEqual(2);
  });

  it("connects two NICs: what one sends the other receives", () => {
    const rig = makeRig();
    const a = plug(rig, new NicDevice({ name: "nic a" }));
    const b = plug(rig, new NicDevice({ name: "nic b", mac: [0x52, 0x54, 0, 0, 0, 2] }));
    const wire = new LoopbackWire();
    wire.plug(a, b);
    // Both harnesses use the same ring addresses: a only sends, b only receives.
    const receiver = new NicHarness(rig, b);
    const sender = new NicHarness(rig, a);
    rig.mmioWrite(a, NicRegister.rctl, 0);
    const frame = ethernetFrame(a, 500, 4);
    sender.send([frame]);
    rig.scheduler.runUntilIdle();
    expect(a.stats.txFrames).toBe(1);
    expect(a.stats.rxFrames).toBe(0);
    expect(b.stats.rxFrames).toBe(1);
    expect(receiver.collect()).toEqual([frame]);
    expect(() => wire.plug(a)).toThrow(/already plugged/);
  });

  it("resets every register with CTRL.RST, keeping the MAC address", () => {
    const rig = makeRig();
    const { nic } = loopedNic(rig);
    rig.mmioWrite(nic, NicRegister.ctrl, 1 << 26);
    expect(rig.mmioRead(nic, NicRegister.rctl)).toBe(0);
    expect(rig.mmioRead(nic, NicRegister.tdlen)).toBe(0);
    expect(rig.mmioRead(nic, NicRegister.ral0)).toBe(0x12005452);
    expect(rig.mmioRead(nic, NicRegister.rah0)).toBe((0x80000000 | 0x5634) >>> 0);
  });
});

describe("NicDevice DMA failures", () => {
  function failing(failingPage: number) {
    const rig = makeRig();
    rig.injectDmaError({ address: failingPage });
    const { nic, wire, harness } = loopedNic(rig);
    let icr = 0;
    const irq = countInterrupts(rig, nic, () => {
      icr |= rig.mmioRead(nic, NicRegister.icr);
      return true;
    });
    return { rig, nic, wire, harness, irq, icr: () => icr };
  }

  it("halts transmit at a frame whose buffer read faults, and says so in ICR", () => {
    const t = failing(TX_BUFFERS + PAGE_SIZE);
    t.harness.send([ethernetFrame(t.nic, 100, 1)]);
    t.harness.send([ethernetFrame(t.nic, 100, 2)]);
    t.rig.scheduler.runUntilIdle();
    expect(t.wire.stats.frames).toBe(1);
    expect(t.rig.mmioRead(t.nic, NicRegister.tdh)).toBe(1);
    expect(t.icr() & IcrBit.dmaError).toBe(IcrBit.dmaError);
    expect(t.irq.count).toBeGreaterThan(0);
    const [error] = t.nic.dmaErrors;
    expect(error!.during).toBe("tx buffer read");
    expect(error!.result).toMatchObject({
      kind: "iommu-fault",
      faultReason: FaultReason.ReadNotPermitted,
      bytesDone: 0,
    });
    expect(error!.result.address).toBe(TX_BUFFERS + PAGE_SIZE);
  });

  it("drops a received frame whose buffer write faults, without writing a descriptor back", () => {
    const t = failing(RX_BUFFERS);
    t.harness.send([ethernetFrame(t.nic, 100, 1)]);
    t.rig.scheduler.runUntilIdle();
    expect(t.harness.collect()).toEqual([]);
    expect(t.rig.mmioRead(t.nic, NicRegister.rdh)).toBe(0);
    expect(t.wire.stats.dropped).toBe(1);
    expect(t.icr() & IcrBit.dmaError).toBe(IcrBit.dmaError);
    expect(t.nic.dmaErrors[0]).toMatchObject({
      during: "rx buffer write",
      result: { faultReason: FaultReason.WriteNotPermitted },
    });
  });

  it("reports a descriptor ring in the MMIO hole as an unassigned access", () => {
    const rig = makeRig();
    const { nic, harness } = loopedNic(rig);
    rig.mmioWrite64(nic, NicRegister.tdbal, 3 * GiB);
    harness.send([ethernetFrame(nic, 100, 1)]);
    rig.scheduler.runUntilIdle();
    expect(nic.dmaErrors[0]).toMatchObject({ during: "tx descriptor read", result: { kind: "unassigned" } });
    expect(nic.stats.txFrames).toBe(0);
  });

  it("reports a transfer attempted with Bus Master Enable off", () => {
    const rig = makeRig();
    const { nic, harness } = loopedNic(rig);
    rig.pci.setBusMaster(nic.requesterId, false);
    harness.send([ethernetFrame(nic, 100, 1)]);
    rig.scheduler.runUntilIdle();
    expect(nic.dmaErrors[0]!.result.kind).toBe("bus-master-disabled");
    expect(rig.mmioRead(nic, NicRegister.icr) & IcrBit.dmaError).toBe(IcrBit.dmaError);
  });

  it("treats a descriptor address beyond 2^53 as an address nothing decodes", () => {
    const rig = makeRig();
    const { nic, harness } = loopedNic(rig);
    harness.send([ethernetFrame(nic, 100, 1)]);
    rig.memory.write(TX_RING + 4, new Uint8Array([0, 0, 0, 0xff]));
    rig.scheduler.runUntilIdle();
    expect(nic.dmaErrors[0]).toMatchObject({ during: "tx buffer read", result: { kind: "unassigned" } });
  });
});

describe("LoopbackWire capture", () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  it("records every frame to a pcap file that tshark reads", () => {
    const dir = mkdtempSync(join(tmpdir(), "nic-pcap-"));
    dirs.push(dir);
    const path = join(dir, "loopback.pcap");
    const rig = makeRig();
    const nic = plug(rig, new NicDevice());
    const pcap = PcapWriter.toFile(path);
    const wire = new LoopbackWire({ capture: pcap });
    wire.plug(nic);
    const harness = new NicHarness(rig, nic);
    const frames = [ethernetFrame(nic, 100, 1), ethernetFrame(nic, 1400, 2), ethernetFrame(nic, 46, 3)];
    for (const frame of frames) harness.queue(split(frame, [14]));
    harness.kick();
    rig.scheduler.runUntilIdle();
    pcap.close();

    const file = readFileSync(path);
    expect(file.readUInt32LE(0)).toBe(0xa1b23c4d);
    expect(file.readUInt32LE(20)).toBe(1);
    expect(file.length).toBe(24 + frames.reduce((n, f) => n + 16 + f.length, 0));

    let tshark = true;
    try {
      execFileSync("which", ["tshark"], { stdio: "ignore" });
    } catch {
      tshark = false;
    }
    if (!tshark) {
      console.warn(
        "tshark is not installed: skipping the check that tshark reads the capture (CI installs it)",
      );
      return;
    }
    const out = execFileSync(
      "tshark",
      ["-r", path, "-T", "fields", "-e", "frame.len", "-e", "eth.src", "-e", "eth.type"],
      {
        encoding: "utf8",
      },
    );
    const rows = out
      .trim()
      .split("\n")
      .map((line) => line.split("\t"));
    expect(rows).toEqual(frames.map((f) => [String(f.length), "52:54:00:12:34:56", "0x88b5"]));
  });
});
