/**
 * The files a demonstration run leaves in its output folder: trace.json (Chrome trace events,
 * for ui.perfetto.dev), nic.pcap (the loopback wire, for tshark or Wireshark) and disk.img (the
 * disk's sparse raw image). The folder is created and checked before anything runs, so a bad
 * --out fails fast with one line.
 */
import { accessSync, closeSync, constants, mkdirSync, openSync, rmSync, statSync, writeSync } from "node:fs";
import { join } from "node:path";
import { ChromeTraceExporter } from "../trace/chrome-trace-exporter.js";
import { PcapWriter } from "../trace/pcap-writer.js";

/** A bad output folder, said in one line. */
export class OutputFolderError extends Error {
  override readonly name = "OutputFolderError";
}

/** Gap between the captures of two machines on nic.pcap's one clock. */
const PCAP_GAP_NS = 1_000_000;

/**
 * nic.pcap holds the frames of several machines, each with its own virtual clock from 0: each
 * machine's frames are shifted to start after the previous machine's last moment, so the
 * capture's timestamps only go forward.
 */
export class ContinuousPcapWriter extends PcapWriter {
  #offsetNs = 0;

  /** The machine that just finished ran for `ns`; the next one starts after it. */
  advance(ns: number): void {
    this.#offsetNs += ns + PCAP_GAP_NS;
  }

  override writeFrame(timeNs: number, frame: Uint8Array): void {
    super.writeFrame(timeNs + this.#offsetNs, frame);
  }
}

export class Artifacts {
  readonly folder: string;
  readonly trace = new ChromeTraceExporter();
  #pcap: ContinuousPcapWriter | undefined;

  /** Creates `folder` if needed; throws OutputFolderError if it cannot be written. */
  constructor(folder: string) {
    try {
      mkdirSync(folder, { recursive: true });
      if (!statSync(folder).isDirectory())
        throw new OutputFolderError(`output folder ${folder} is not a folder`);
      accessSync(folder, constants.W_OK);
      const probe = join(folder, ".write-test");
      closeSync(openSync(probe, "w"));
      rmSync(probe);
    } catch (error) {
      if (error instanceof OutputFolderError) throw error;
      const reason = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
      throw new OutputFolderError(`cannot write to output folder ${folder} (${reason})`);
    }
    this.folder = folder;
  }

  get tracePath(): string {
    return join(this.folder, "trace.json");
  }

  get pcapPath(): string {
    return join(this.folder, "nic.pcap");
  }

  get diskImagePath(): string {
    return join(this.folder, "disk.img");
  }

  /** The capture file, created on first use. */
  pcap(): ContinuousPcapWriter {
    if (this.#pcap === undefined) {
      const fd = openSync(this.pcapPath, "w");
      this.#pcap = new ContinuousPcapWriter({
        write(bytes: Uint8Array): void {
          let done = 0;
          while (done < bytes.length) done += writeSync(fd, bytes, done, bytes.length - done);
        },
        close(): void {
          closeSync(fd);
        },
      });
    }
    return this.#pcap;
  }

  /** A fresh disk image for this run (the scenarios create it sparse). */
  resetDiskImage(): string {
    rmSync(this.diskImagePath, { force: true });
    return this.diskImagePath;
  }

  /** Writes trace.json and closes the capture; returns the paths written. */
  close(): string[] {
    this.trace.writeFile(this.tracePath);
    const written = [this.tracePath];
    if (this.#pcap !== undefined) {
      this.#pcap.close();
      written.push(this.pcapPath);
    }
    return written;
  }
}
