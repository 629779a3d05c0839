import { describe, expect, it } from "vitest";
import { CpuMemory } from "../../src/platform/cpu-memory.js";
import { GiB, MiB, PAGE_SIZE } from "../../src/platform/page.js";
import { PhysicalMemory } from "../../src/platform/physical-memory.js";
import { PlatformError } from "../../src/platform/platform-error.js";
import { Counters } from "../../src/trace/counters.js";

function cpu(coherent: boolean): { memory: PhysicalMemory; cpu: CpuMemory; counters: Counters } {
  const ramRanges = [
    { start: 0, end: 3 * GiB },
    { start: 4 * GiB, end: 5 * GiB },
  ];
  const memory = new PhysicalMemory(ramRanges);
  const counters = new Counters();
  return { memory, counters, cpu: new CpuMemory(memory, { ramRanges, coherent, seed: 1 }, counters) };
}

function deviceRead(memory: PhysicalMemory, pa: number, length: number): Uint8Array {
  const bytes = new Uint8Array(length);
  memory.read(pa, bytes);
  return bytes;
}

const BUFFER = 16 * MiB + 100;

describe("CpuMemory, coherent", () => {
  it("writes through, so a device sees CPU data without a flush", () => {
    const { memory, cpu: c } = cpu(true);
    c.write(BUFFER, new Uint8Array([1, 2, 3]));
    expect([...deviceRead(memory, BUFFER, 3)]).toEqual([1, 2, 3]);
    memory.write(BUFFER, new Uint8Array([9]));
    const seen = new Uint8Array(1);
    c.read(BUFFER, seen);
    expect(seen[0]).toBe(9);
    expect(c.cachedPages).toBe(0);
  });
});

describe("CpuMemory, non-coherent", () => {
  it("keeps CPU writes from a device until they are flushed", () => {
    const { memory, cpu: c, counters } = cpu(false);
    const data = new Uint8Array(300).fill(0xab);
    c.write(BUFFER, data);
    expect(deviceRead(memory, BUFFER, 300).every((b) => b === 0)).toBe(true);
    c.flush(BUFFER, 300);
    expect(deviceRead(memory, BUFFER, 300).every((b) => b === 0xab)).toBe(true);
    // 300 bytes at offset 100 of a page span lines 1..6.
    expect(counters.get("cpu.cache.flush.lines")).toBe(6);
  });

  it("hides a device write from the CPU until the lines are invalidated", () => {
    const { memory, cpu: c } = cpu(false);
    const seen = new Uint8Array(64);
    c.read(BUFFER, seen);
    memory.write(BUFFER, new Uint8Array(64).fill(0x5a));
    c.read(BUFFER, seen);
    expect(seen.every((b) => b === 0)).toBe(true);
    c.invalidate(BUFFER, 64);
    c.read(BUFFER, seen);
    expect(seen.every((b) => b === 0x5a)).toBe(true);
  });

  it("sees a device write to lines it never cached", () => {
    const { memory, cpu: c } = cpu(false);
    c.read(BUFFER, new Uint8Array(8));
    memory.write(BUFFER + 1024, new Uint8Array([7]));
    const seen = new Uint8Array(1);
    c.read(BUFFER + 1024, seen);
    expect(seen[0]).toBe(7);
  });

  it("writes back partly covered edge lines on invalidate and discards dirty lines inside", () => {
    const { memory, cpu: c, counters } = cpu(false);
    const line = 32 * MiB;
    c.write(line, new Uint8Array(192).fill(1));
    // Invalidate a DMA buffer at [line + 32, line + 160): lines 0 and 2 are partly outside.
    c.invalidate(line + 32, 128);
    const seen = deviceRead(memory, line, 192);
    expect(seen.subarray(0, 64).every((b) => b === 1)).toBe(true);
    expect(seen.subarray(64, 128).every((b) => b === 0)).toBe(true);
    expect(seen.subarray(128, 192).every((b) => b === 1)).toBe(true);
    expect(counters.get("cpu.cache.discard.dirty.lines")).toBe(1);
  });

  it("writes dirty lines back when they are evicted, least recently used first", () => {
    const { memory, cpu: c, counters } = cpu(false);
    const base = 4 * GiB;
    for (let page = 0; page <= CpuMemory.CACHE_PAGES; page++) {
      c.write(base + page * PAGE_SIZE, new Uint8Array([page & 0xff, 1]));
    }
    expect(c.cachedPages).toBe(CpuMemory.CACHE_PAGES);
    expect([...deviceRead(memory, base, 2)]).toEqual([0, 1]);
    expect(deviceRead(memory, base + PAGE_SIZE, 2)[1]).toBe(0);
    expect(counters.get("cpu.cache.evict.lines")).toBe(1);
    c.writeBackAll();
    expect(c.cachedPages).toBe(0);
    expect(deviceRead(memory, base + CpuMemory.CACHE_PAGES * PAGE_SIZE, 2)[1]).toBe(1);
  });

  it("crosses page boundaries and merges cached and uncached lines in one read", () => {
    const { memory, cpu: c } = cpu(false);
    const pa = 8 * MiB + PAGE_SIZE - 10;
    c.write(pa, new Uint8Array(20).fill(3));
    memory.write(pa + 20, new Uint8Array(100).fill(4));
    const seen = new Uint8Array(120);
    c.read(pa, seen);
    expect(seen.subarray(0, 20).every((b) => b === 3)).toBe(true);
    // The device's first 54 bytes share the second page's first line with the CPU's (cached) write.
    expect(seen.subarray(20, 74).every((b) => b === 0)).toBe(true);
    expect(seen.subarray(74, 120).every((b) => b === 4)).toBe(true);
  });

  it("rejects ranges that are not RAM without touching the cache", () => {
    const { cpu: c } = cpu(false);
    expect(() => c.write(3 * GiB - 2, new Uint8Array(4))).toThrow(PlatformError);
    expect(() => c.flush(-1, 4)).toThrow(PlatformError);
    expect(() => c.invalidate(0, 1.5)).toThrow(PlatformError);
    expect(c.cachedPages).toBe(0);
  });
});

describe("CpuMemory, uncached frames", () => {
  const PFN = Math.floor(BUFFER / PAGE_SIZE);

  it("reaches memory at once in both directions, with no flush or invalidate", () => {
    const { memory, cpu: c } = cpu(false);
    c.setCaching([PFN], false);
    c.write(BUFFER, new Uint8Array([1, 2, 3]));
    expect([...deviceRead(memory, BUFFER, 3)]).toEqual([1, 2, 3]);
    memory.write(BUFFER, new Uint8Array([9]));
    const seen = new Uint8Array(1);
    c.read(BUFFER, seen);
    expect(seen[0]).toBe(9);
    expect(c.cachedPages).toBe(0);
    expect(c.uncachedPages).toBe(1);
  });

  it("bypasses the cache only on the uncached page of an access spanning two", () => {
    const { memory, cpu: c } = cpu(false);
    const first = PFN;
    c.setCaching([first + 1], false);
    const end = (first + 1) * PAGE_SIZE;
    c.write(end - 4, new Uint8Array(8).fill(7));
    expect([...deviceRead(memory, end - 4, 8)]).toEqual([0, 0, 0, 0, 7, 7, 7, 7]);
    expect(c.isCached(first)).toBe(true);
    expect(c.isCached(first + 1)).toBe(false);
  });

  it("writes dirty lines back when a frame turns uncached, and caches again once restored", () => {
    const { memory, cpu: c } = cpu(false);
    c.write(BUFFER, new Uint8Array([5, 6]));
    c.setCaching([PFN], false);
    expect([...deviceRead(memory, BUFFER, 2)]).toEqual([5, 6]);
    expect(c.cachedPages).toBe(0);
    c.setCaching([PFN], true);
    c.write(BUFFER, new Uint8Array([8]));
    expect(deviceRead(memory, BUFFER, 1)[0]).toBe(5);
    expect(c.uncachedPages).toBe(0);
  });

  it("is a no-op on a coherent machine and rejects frames that are not RAM", () => {
    const { cpu: coherent } = cpu(true);
    coherent.setCaching([PFN], false);
    expect(coherent.uncachedPages).toBe(0);
    expect(coherent.isCached(PFN)).toBe(true);
    const { cpu: c } = cpu(false);
    expect(() => c.setCaching([PFN, (3 * GiB) / PAGE_SIZE], false)).toThrow(PlatformError);
    expect(c.uncachedPages).toBe(0);
  });
});
