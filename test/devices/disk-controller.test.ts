import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterEach, describe, expect, it } from "vitest";
import { DiskController } from "../../src/devices/disk-controller.js";
import { type DiskImage, FileDiskImage } from "../../src/devices/disk-image.js";
import { MemoryDiskImage } from "../../src/devices/memory-disk-image.js";
import { NvmeCsts, NvmeOpcode, NvmeRegister, NvmeStatus } from "../../src/devices/nvme-registers.js";
import { FaultReason } from "../../src/iommu/fault-reason.js";
import { GiB, MiB, PAGE_SIZE } from "../../src/platform/page.js";
import { type TestMachine, testBytes } from "../../src/testing/index.js";
import { countInterrupts, makeRig, plug } from "./device-rig.js";

const SQ = 0x10_0000;
const CQ = 0x10_8000;
/** PRP list pages live here, data pages are scattered over low and high RAM. */
const LISTS = 0x18_0000;

interface Command {
  readonly opcode: number;
  readonly slba?: number;
  readonly blocks?: number;
  readonly prp1?: number;
  readonly prp2?: number;
  readonly nsid?: number;
}

interface Completion {
  readonly cid: number;
  readonly status: number;
  readonly sqHead: number;
}

/** Just enough of an NVMe driver: one queue pair, phase-tag polling, doorbells. */
class NvmeHarness {
  sqTail = 0;
  cqHead = 0;
  phase = 1;
  nextCid = 1;

  constructor(
    readonly rig: TestMachine,
    readonly disk: DiskController,
    readonly sqSize = 8,
    readonly cqSize = 8,
  ) {
    rig.mmioWrite(disk, NvmeRegister.aqa, ((cqSize - 1) << 16) | (sqSize - 1));
    rig.mmioWrite64(disk, NvmeRegister.asqLow, SQ);
    rig.mmioWrite64(disk, NvmeRegister.acqLow, CQ);
    rig.mmioWrite(disk, NvmeRegister.cc, 1 | (6 << 16) | (4 << 20));
  }

  /** Writes the command at the SQ tail; rings the doorbell unless told not to. Returns its id. */
  submit(command: Command, ring = true): number {
    const cid = this.nextCid++ & 0xffff;
    const sqe = new Uint8Array(64);
    const view = new DataView(sqe.buffer);
    view.setUint32(0, command.opcode | (cid << 16), true);
    view.setUint32(4, command.nsid ?? 1, true);
    setU64(view, 24, command.prp1 ?? 0);
    setU64(view, 32, command.prp2 ?? 0);
    setU64(view, 40, command.slba ?? 0);
    view.setUint32(48, (command.blocks ?? 1) - 1, true);
    this.rig.memory.write(SQ + this.sqTail * 64, sqe);
    this.sqTail = (this.sqTail + 1) % this.sqSize;
    if (ring) this.ring();
    return cid;
  }

  ring(): void {
    this.rig.mmioWrite(this.disk, NvmeRegister.sq0Tail, this.sqTail);
  }

  /** Consumes every new completion (phase tag = expected phase), then rings the CQ head doorbell. */
  reap(): Completion[] {
    const out: Completion[] = [];
    for (;;) {
      const view = new DataView(this.rig.readPhysical(CQ + this.cqHead * 16, 16).buffer);
      const dw3 = view.getUint32(12, true);
      if (((dw3 >>> 16) & 1) !== this.phase) break;
      out.push({ cid: dw3 & 0xffff, status: (dw3 >>> 17) & 0xff, sqHead: view.getUint32(8, true) & 0xffff });
      this.cqHead++;
      if (this.cqHead === this.cqSize) {
        this.cqHead = 0;
        this.phase ^= 1;
      }
    }
    if (out.length > 0) this.rig.mmioWrite(this.disk, NvmeRegister.cq0Head, this.cqHead);
    return out;
  }

  /** Submits one command, runs the machine, and returns its completion. */
  run(command: Command): Completion {
    const cid = this.submit(command);
    this.rig.scheduler.runUntilIdle();
    const done = this.reap();
    expect(done.map((c) => c.cid)).toEqual([cid]);
    return done[0]!;
  }
}

function setU64(view: DataView, offset: number, value: number): void {
  view.setUint32(offset, value % 2 ** 32, true);
  view.setUint32(offset + 4, Math.floor(value / 2 ** 32), true);
}

/**
 * Scattered data pages for a `length`-byte buffer starting `offset` bytes into its first page,
 * alternating between high and low RAM and never adjacent. Returns the pages and PRP1/PRP2,
 * building a PRP list at `listAddress` (which may sit near the end of a page, forcing a chain).
 */
function prpsFor(
  rig: TestMachine,
  length: number,
  offset: number,
  seed: number,
  listAddress = LISTS,
): { pages: number[]; prp1: number; prp2: number } {
  const count = Math.ceil((offset + length) / PAGE_SIZE);
  const pages = Array.from({ length: count }, (_, i) =>
    i % 2 === 0
      ? 4 * GiB + (seed * 512 + (count - i) * 3) * PAGE_SIZE
      : 8 * MiB + (seed * 512 + i * 5) * PAGE_SIZE,
  );
  const prp1 = pages[0]! + offset;
  if (count === 1) return { pages, prp1, prp2: 0 };
  if (count === 2) return { pages, prp1, prp2: pages[1]! };
  const rest = pages.slice(1);
  let list = listAddress;
  let i = 0;
  while (i < rest.length) {
    const slots = (PAGE_SIZE - (list % PAGE_SIZE)) / 8;
    const remaining = rest.length - i;
    const entries = remaining > slots ? slots - 1 : remaining;
    const bytes = new Uint8Array((remaining > slots ? slots : entries) * 8);
    const view = new DataView(bytes.buffer);
    for (let k = 0; k < entries; k++) setU64(view, k * 8, rest[i + k]!);
    i += entries;
    const next = list - (list % PAGE_SIZE) + 2 * PAGE_SIZE;
    if (i < rest.length) setU64(view, entries * 8, next);
    rig.memory.write(list, bytes);
    list = next;
  }
  return { pages, prp1, prp2: listAddress };
}

/** Copies `data` into (or out of) the scattered buffer described by `pages` and `offset`. */
function scatter(rig: TestMachine, pages: number[], offset: number, data: Uint8Array): void {
  let done = 0;
  pages.forEach((page, i) => {
    const start = i === 0 ? offset : 0;
    const n = Math.min(PAGE_SIZE - start, data.length - done);
    rig.memory.write(page + start, data.subarray(done, done + n));
    done += n;
  });
}

function gather(rig: TestMachine, pages: number[], offset: number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  let done = 0;
  pages.forEach((page, i) => {
    const start = i === 0 ? offset : 0;
    const n = Math.min(PAGE_SIZE - start, length - done);
    out.set(rig.readPhysical(page + start, n), done);
    done += n;
  });
  return out;
}

function sectorsOf(image: DiskImage, lba: number, count: number): Uint8Array {
  const out = new Uint8Array(count * 512);
  image.read(lba, out);
  return out;
}

describe("DiskController (NVMe-like)", () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  it("writes and reads back a multi-page PRP-list transfer near the end of a sparse 1 GiB image", () => {
    const dir = mkdtempSync(join(tmpdir(), "nvme-"));
    dirs.push(dir);
    const path = join(dir, "disk.img");
    const image = new FileDiskImage(path, { size: GiB });
    const rig = makeRig();
    const disk = plug(rig, new DiskController(image));
    const irq = countInterrupts(rig, disk);
    const nvme = new NvmeHarness(rig, disk);
    expect(rig.mmioRead(disk, NvmeRegister.csts) & NvmeCsts.ready).toBe(NvmeCsts.ready);

    const blocks = 80;
    const data = testBytes(blocks * 512, 42);
    const slba = image.sectorCount - 100;
    // PRP1 starts 0x200 into its page; the list starts 4 entries before its page end: it chains.
    const source = prpsFor(rig, data.length, 0x200, 1, LISTS + PAGE_SIZE - 32);
    scatter(rig, source.pages, 0x200, data);
    const written = nvme.run({
      opcode: NvmeOpcode.write,
      slba,
      blocks,
      prp1: source.prp1,
      prp2: source.prp2,
    });
    expect(written.status).toBe(NvmeStatus.success);
    expect(sectorsOf(image, slba, blocks)).toEqualBytes(data);

    const target = prpsFor(rig, data.length, 0, 2, LISTS + 8 * PAGE_SIZE);
    const read = nvme.run({ opcode: NvmeOpcode.read, slba, blocks, prp1: target.prp1, prp2: target.prp2 });
    expect(read.status).toBe(NvmeStatus.success);
    expect(gather(rig, target.pages, 0, data.length)).toEqualBytes(data);
    expect(irq.count).toBe(2);
    expect(disk.stats).toMatchObject({ commands: 2, bytesRead: data.length, bytesWritten: data.length });

    image.close();
    const stat = statSync(path);
    expect(stat.size).toBe(GiB);
    expect(stat.blocks * 512).toBeLessThan(MiB);
  });

  it("uses PRP2 as the second page pointer for a two-page transfer", () => {
    const rig = makeRig();
    const image = new MemoryDiskImage(16 * MiB);
    const disk = plug(rig, new DiskController(image));
    const nvme = new NvmeHarness(rig, disk);
    const data = testBytes(6000, 5);
    const padded = new Uint8Array(6144);
    padded.set(data);
    const source = prpsFor(rig, padded.length, 0x800, 3);
    expect(source.pages).toHaveLength(2);
    scatter(rig, source.pages, 0x800, padded);
    expect(
      nvme.run({ opcode: NvmeOpcode.write, slba: 7, blocks: 12, prp1: source.prp1, prp2: source.prp2 })
        .status,
    ).toBe(NvmeStatus.success);
    expect(sectorsOf(image, 7, 12)).toEqual(padded);
  });

  it("round-trips any transfer shape through PRP entries and lists", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 300 }),
        fc.integer({ min: 0, max: 1023 }),
        fc.integer({ min: 0, max: 511 }),
        fc.integer({ min: 0, max: 100_000 }),
        (blocks, offsetDwords, listSlot, slba) => {
          const rig = makeRig();
          const image = new MemoryDiskImage(64 * MiB);
          const disk = plug(rig, new DiskController(image));
          const nvme = new NvmeHarness(rig, disk);
          const data = testBytes(blocks * 512, blocks + slba);
          const offset = offsetDwords * 4;
          const source = prpsFor(rig, data.length, offset, 1, LISTS + listSlot * 8);
          scatter(rig, source.pages, offset, data);
          expect(nvme.run({ opcode: NvmeOpcode.write, slba, blocks, ...source }).status).toBe(
            NvmeStatus.success,
          );
          const target = prpsFor(rig, data.length, 0, 3, LISTS + 16 * PAGE_SIZE + listSlot * 8);
          expect(nvme.run({ opcode: NvmeOpcode.read, slba, blocks, ...target }).status).toBe(
            NvmeStatus.success,
          );
          expect(gather(rig, target.pages, 0, data.length)).toEqualBytes(data);
        },
      ),
      { numRuns: 40 },
    );
  });

  it("flips the phase tag at every completion queue wrap and waits while the queue is full", () => {
    const rig = makeRig();
    const disk = plug(rig, new DiskController(new MemoryDiskImage(MiB)));
    const nvme = new NvmeHarness(rig, disk, 8, 4);
    const submitted: number[] = [];
    const completed: number[] = [];
    for (let round = 0; round < 4; round++) {
      for (let i = 0; i < 7; i++) submitted.push(nvme.submit({ opcode: NvmeOpcode.flush }, false));
      nvme.ring();
      // A 4-entry completion queue holds 3 unconsumed entries: the controller waits for the head doorbell.
      while (completed.length < submitted.length) {
        rig.scheduler.runUntilIdle();
        const batch = nvme.reap();
        expect(batch.length).toBeGreaterThan(0);
        expect(batch.length).toBeLessThanOrEqual(3);
        completed.push(...batch.map((c) => c.cid));
      }
    }
    expect(completed).toEqual(submitted);
    // 28 completions are 7 passes round a 4-entry queue: the phase flipped 7 times.
    expect(nvme.phase).toBe(0);
  });

  it("completes bad commands with the NVMe status codes", () => {
    const rig = makeRig();
    const disk = plug(rig, new DiskController(new MemoryDiskImage(MiB)));
    const nvme = new NvmeHarness(rig, disk);
    const page = 0x40_0000;
    expect(
      nvme.run({ opcode: NvmeOpcode.read, slba: 2040, blocks: 16, prp1: page, prp2: page + PAGE_SIZE })
        .status,
    ).toBe(NvmeStatus.lbaOutOfRange);
    expect(nvme.run({ opcode: 0x7f }).status).toBe(NvmeStatus.invalidOpcode);
    expect(nvme.run({ opcode: NvmeOpcode.read, nsid: 2, prp1: page }).status).toBe(
      NvmeStatus.invalidNamespace,
    );
    expect(nvme.run({ opcode: NvmeOpcode.read, prp1: page + 2 }).status).toBe(NvmeStatus.prpOffsetInvalid);
    expect(nvme.run({ opcode: NvmeOpcode.read, blocks: 16, prp1: page, prp2: page + 8 }).status).toBe(
      NvmeStatus.prpOffsetInvalid,
    );
    expect(disk.stats.failedCommands).toBe(5);
    expect(nvme.run({ opcode: NvmeOpcode.read, blocks: 8, prp1: page }).status).toBe(NvmeStatus.success);
  });
});

describe("DiskController DMA failures", () => {
  function failing(block: (rig: TestMachine, pages: number[]) => void) {
    const rig = makeRig();
    const image = new MemoryDiskImage(MiB);
    const disk = plug(rig, new DiskController(image));
    const irq = countInterrupts(rig, disk);
    const nvme = new NvmeHarness(rig, disk);
    const data = testBytes(16 * 1024, 9);
    const buffer = prpsFor(rig, data.length, 0, 1);
    scatter(rig, buffer.pages, 0, data);
    block(rig, buffer.pages);
    return { rig, image, disk, irq, nvme, data, buffer };
  }

  it("completes a write whose data page faults with Data Transfer Error and leaves the medium alone", () => {
    const t = failing((rig, pages) => rig.injectDmaError({ address: pages[2]! }));
    const done = t.nvme.run({
      opcode: NvmeOpcode.write,
      slba: 0,
      blocks: 32,
      prp1: t.buffer.prp1,
      prp2: t.buffer.prp2,
    });
    expect(done.status).toBe(NvmeStatus.dataTransferError);
    expect(sectorsOf(t.image, 0, 32).every((b) => b === 0)).toBe(true);
    expect(t.irq.count).toBe(1);
    expect(t.disk.dmaErrors[0]).toMatchObject({
      during: "write data fetch",
      result: { kind: "iommu-fault", faultReason: FaultReason.ReadNotPermitted, address: t.buffer.pages[2] },
    });
  });

  it("completes a read whose target page faults with Data Transfer Error", () => {
    const t = failing((rig, pages) => rig.injectDmaError({ address: pages[3]! }));
    const done = t.nvme.run({
      opcode: NvmeOpcode.read,
      slba: 0,
      blocks: 32,
      prp1: t.buffer.prp1,
      prp2: t.buffer.prp2,
    });
    expect(done.status).toBe(NvmeStatus.dataTransferError);
    expect(t.disk.dmaErrors[0]!.during).toBe("read data store");
  });

  it("completes a command whose PRP list page faults with Data Transfer Error", () => {
    const t = failing((rig) => rig.injectDmaError({ address: LISTS }));
    const done = t.nvme.run({
      opcode: NvmeOpcode.read,
      slba: 0,
      blocks: 32,
      prp1: t.buffer.prp1,
      prp2: t.buffer.prp2,
    });
    expect(done.status).toBe(NvmeStatus.dataTransferError);
    expect(t.disk.dmaErrors[0]!.during).toBe("prp list read");
  });

  it("goes fatal (CSTS.CFS) when it cannot fetch a command, interrupts, and recovers on reset", () => {
    const t = failing((rig) => rig.injectDmaError({ address: SQ }));
    t.nvme.submit({ opcode: NvmeOpcode.flush });
    t.rig.scheduler.runUntilIdle();
    expect(t.rig.mmioRead(t.disk, NvmeRegister.csts) & NvmeCsts.fatal).toBe(NvmeCsts.fatal);
    expect(t.irq.count).toBe(1);
    expect(t.disk.dmaErrors[0]!.during).toBe("submission entry fetch");

    t.rig.clearDmaErrors();
    t.rig.mmioWrite(t.disk, NvmeRegister.cc, 0);
    expect(t.rig.mmioRead(t.disk, NvmeRegister.csts)).toBe(0);
    const fresh = new NvmeHarness(t.rig, t.disk);
    expect(fresh.run({ opcode: NvmeOpcode.flush }).status).toBe(NvmeStatus.success);
  });

  it("goes fatal when it cannot post a completion", () => {
    const t = failing((rig) => rig.injectDmaError({ address: CQ }));
    t.nvme.submit({ opcode: NvmeOpcode.flush });
    t.rig.scheduler.runUntilIdle();
    expect(t.rig.mmioRead(t.disk, NvmeRegister.csts) & NvmeCsts.fatal).toBe(NvmeCsts.fatal);
    expect(t.disk.dmaErrors[0]).toMatchObject({
      during: "completion entry post",
      result: { kind: "iommu-fault" },
    });
  });
});
