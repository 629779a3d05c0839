/**
 * A classic libpcap capture writer (the format of `tcpdump -w`, pcap-savefile(5)): a 24-byte
 * global header, then per frame a 16-byte record header and the frame bytes. Link type
 * LINKTYPE_ETHERNET (1), little-endian, with the nanosecond-resolution magic 0xa1b23c4d so that
 * virtual time (ns) is written exactly; Wireshark, tshark and tcpdump read it.
 *
 * Output goes to a sink: a file written with synchronous appends (never buffered whole), or
 * memory for tests. Time comes from the caller, never from a real clock.
 */
import { closeSync, openSync, writeSync } from "node:fs";

/** pcap-savefile(5): magic for nanosecond timestamps. */
export const PCAP_MAGIC_NANOSECONDS = 0xa1b23c4d;
export const PCAP_VERSION_MAJOR = 2;
export const PCAP_VERSION_MINOR = 4;
/** LINKTYPE_ETHERNET: IEEE 802.3 frames without the FCS. */
export const LINKTYPE_ETHERNET = 1;
/** Default snapshot length: what tcpdump uses since 4.99 (frames longer are cut in the file). */
export const DEFAULT_SNAPLEN = 262_144;

const GLOBAL_HEADER_BYTES = 24;
const RECORD_HEADER_BYTES = 16;
const NS_PER_SECOND = 1_000_000_000;

/** Where the capture bytes go. */
export interface PcapSink {
  write(bytes: Uint8Array): void;
  close(): void;
}

export interface PcapOptions {
  /** Bytes kept per frame (default 262144). */
  readonly snaplen?: number;
}

export class PcapWriter {
  readonly snaplen: number;
  readonly #sink: PcapSink;
  /** One record header, reused for every frame. */
  readonly #record = new Uint8Array(RECORD_HEADER_BYTES);
  readonly #recordView = new DataView(this.#record.buffer);
  #frames = 0;
  #closed = false;

  constructor(sink: PcapSink, options: PcapOptions = {}) {
    const snaplen = options.snaplen ?? DEFAULT_SNAPLEN;
    if (!Number.isInteger(snaplen) || snaplen < 1 || snaplen > 0x7fffffff) {
      throw new RangeError(`pcap snaplen ${String(snaplen)} is not an integer in [1, 2^31)`);
    }
    this.snaplen = snaplen;
    this.#sink = sink;
    const header = new Uint8Array(GLOBAL_HEADER_BYTES);
    const view = new DataView(header.buffer);
    view.setUint32(0, PCAP_MAGIC_NANOSECONDS, true);
    view.setUint16(4, PCAP_VERSION_MAJOR, true);
    view.setUint16(6, PCAP_VERSION_MINOR, true);
    // thiszone and sigfigs stay 0, as every modern writer leaves them.
    view.setUint32(16, snaplen, true);
    view.setUint32(20, LINKTYPE_ETHERNET, true);
    sink.write(header);
  }

  /** A capture file at `path` (created or truncated), written as frames arrive. */
  static toFile(path: string, options?: PcapOptions): PcapWriter {
    const fd = openSync(path, "w");
    return new PcapWriter(
      {
        write(bytes: Uint8Array): void {
          let done = 0;
          while (done < bytes.length) done += writeSync(fd, bytes, done, bytes.length - done);
        },
        close(): void {
          closeSync(fd);
        },
      },
      options,
    );
  }

  /** A capture kept in memory; `bytes()` of the returned recorder gives the file image. */
  static inMemory(options?: PcapOptions): { writer: PcapWriter; bytes: () => Uint8Array } {
    const chunks: Uint8Array[] = [];
    const writer = new PcapWriter(
      {
        write(bytes: Uint8Array): void {
          chunks.push(bytes.slice());
        },
        close(): void {},
      },
      options,
    );
    return { writer, bytes: () => Buffer.concat(chunks) };
  }

  /** Frames written so far. */
  get frames(): number {
    return this.#frames;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Appends one Ethernet frame seen at virtual time `timeNs`. */
  writeFrame(timeNs: number, frame: Uint8Array): void {
    if (this.#closed) throw new RangeError("pcap writer is closed");
    if (!Number.isSafeInteger(timeNs) || timeNs < 0) {
      throw new RangeError(`pcap timestamp ${String(timeNs)} ns is not a non-negative integer`);
    }
    if (!(frame instanceof Uint8Array)) throw new RangeError("pcap frame must be a Uint8Array");
    const seconds = Math.floor(timeNs / NS_PER_SECOND);
    if (seconds > 0xffffffff) throw new RangeError(`pcap timestamp ${timeNs} ns does not fit 32-bit seconds`);
    const kept = Math.min(frame.length, this.snaplen);
    const view = this.#recordView;
    view.setUint32(0, seconds, true);
    view.setUint32(4, timeNs % NS_PER_SECOND, true);
    view.setUint32(8, kept, true);
    view.setUint32(12, frame.length, true);
    this.#sink.write(this.#record);
    this.#sink.write(frame.subarray(0, kept));
    this.#frames++;
  }

  /** Closes the sink; later writes throw. Closing twice is harmless. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#sink.close();
  }
}
