import { describe, expect, it } from "vitest";
import { PcapWriter } from "../../src/trace/pcap-writer.js";

describe("PcapWriter", () => {
  it("writes the classic header and one record per frame with nanosecond virtual timestamps", () => {
    const { writer, bytes } = PcapWriter.inMemory();
    writer.writeFrame(1_500_000_123, new Uint8Array([1, 2, 3]));
    writer.writeFrame(2_000_000_000, new Uint8Array(60).fill(7));
    writer.close();
    const file = Buffer.from(bytes());
    expect(file.readUInt32LE(0)).toBe(0xa1b23c4d);
    expect(file.readUInt16LE(4)).toBe(2);
    expect(file.readUInt16LE(6)).toBe(4);
    expect(file.readUInt32LE(16)).toBe(262_144);
    expect(file.readUInt32LE(20)).toBe(1);
    expect([
      file.readUInt32LE(24),
      file.readUInt32LE(28),
      file.readUInt32LE(32),
      file.readUInt32LE(36),
    ]).toEqual([1, 500_000_123, 3, 3]);
    expect([...file.subarray(40, 43)]).toEqual([1, 2, 3]);
    expect([file.readUInt32LE(43), file.readUInt32LE(47)]).toEqual([2, 0]);
    expect(file.length).toBe(24 + 16 + 3 + 16 + 60);
    expect(writer.frames).toBe(2);
  });

  it("cuts frames at the snapshot length and keeps their original length", () => {
    const { writer, bytes } = PcapWriter.inMemory({ snaplen: 64 });
    writer.writeFrame(0, new Uint8Array(100));
    const file = Buffer.from(bytes());
    expect([file.readUInt32LE(32), file.readUInt32LE(36)]).toEqual([64, 100]);
    expect(file.length).toBe(24 + 16 + 64);
  });

  it("rejects bad timestamps and writes after close", () => {
    const { writer } = PcapWriter.inMemory();
    expect(() => writer.writeFrame(-1, new Uint8Array(1))).toThrow(RangeError);
    expect(() => writer.writeFrame(1.5, new Uint8Array(1))).toThrow(RangeError);
    expect(() => PcapWriter.inMemory({ snaplen: 0 })).toThrow(RangeError);
    writer.close();
    expect(() => writer.writeFrame(0, new Uint8Array(1))).toThrow(/closed/);
  });
});
