import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { FrameAllocator } from "../../src/platform/frame-allocator.js";
import { MiB, PAGE_SIZE } from "../../src/platform/page.js";
import { PhysicalMemory } from "../../src/platform/physical-memory.js";
import { PlatformError } from "../../src/platform/platform-error.js";
import { Random } from "../../src/platform/random.js";
import { GuestPhysicalMemory } from "../../src/virt/guest-physical-memory.js";

const GUEST_PAGES = 64;

/** A 64-page guest on a 4 MiB host: pages scattered, except 10..12 on consecutive host frames. */
function guestOnHost(): { host: PhysicalMemory; guest: GuestPhysicalMemory; hostPfns: number[] } {
  const host = new PhysicalMemory([{ start: 0, end: 4 * MiB }]);
  const hostPfns = Array.from({ length: GUEST_PAGES }, (_, i) => 800 + ((i * 37) % GUEST_PAGES));
  hostPfns[10] = 500;
  hostPfns[11] = 501;
  hostPfns[12] = 502;
  const guest = new GuestPhysicalMemory([{ start: 0, end: GUEST_PAGES * PAGE_SIZE }], host, hostPfns);
  return { host, guest, hostPfns };
}

function errorCode(action: () => unknown): string {
  try {
    action();
  } catch (error) {
    if (error instanceof PlatformError) return error.code;
    throw error;
  }
  return "none";
}

describe("GuestPhysicalMemory", () => {
  it("puts every guest byte in the host frame behind its guest page", () => {
    const { host, guest, hostPfns } = guestOnHost();
    const bytes = Uint8Array.from({ length: 3 * PAGE_SIZE }, (_, i) => i % 251);
    guest.write(9 * PAGE_SIZE + 100, bytes);
    for (let page = 0; page < 4; page++) {
      const gpa = (9 + page) * PAGE_SIZE;
      const expected = new Uint8Array(PAGE_SIZE);
      guest.read(gpa, expected);
      const onHost = new Uint8Array(PAGE_SIZE);
      host.read(hostPfns[9 + page]! * PAGE_SIZE, onHost);
      expect(onHost).toEqual(expected);
    }
    expect(guest.hostAddress(10 * PAGE_SIZE + 7)).toBe(500 * PAGE_SIZE + 7);
  });

  it("agrees with a flat model for any mix of writes, fills and copies (property)", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            op: fc.constantFrom("write", "fill", "copy"),
            at: fc.integer({ min: 0, max: GUEST_PAGES * PAGE_SIZE - 1 }),
            to: fc.integer({ min: 0, max: GUEST_PAGES * PAGE_SIZE - 1 }),
            length: fc.integer({ min: 1, max: 3 * PAGE_SIZE }),
            value: fc.integer({ min: 0, max: 255 }),
          }),
          { maxLength: 12 },
        ),
        (ops) => {
          const { guest } = guestOnHost();
          const model = new Uint8Array(GUEST_PAGES * PAGE_SIZE);
          for (const { op, at, to, length, value } of ops) {
            const n = Math.min(length, model.length - Math.max(at, to));
            if (n <= 0) continue;
            if (op === "write") {
              const bytes = Uint8Array.from({ length: n }, (_, i) => (value + i) & 0xff);
              guest.write(at, bytes);
              model.set(bytes, at);
            } else if (op === "fill") {
              guest.fill(at, n, value);
              model.fill(value, at, at + n);
            } else if (at + n <= to || to + n <= at) {
              guest.copy(to, at, n);
              model.copyWithin(to, at, at + n);
            }
          }
          const all = new Uint8Array(model.length);
          guest.read(0, all);
          expect(Buffer.compare(all, model)).toBe(0);
        },
      ),
      { numRuns: 60 },
    );
  });

  it("gives the host frame's live view and reports touches through the host", () => {
    const { host, guest, hostPfns } = guestOnHost();
    expect(guest.isTouched(3)).toBe(false);
    guest.frame(3)[5] = 0x5a;
    expect(host.isTouched(hostPfns[3]!)).toBe(true);
    const view = new Uint8Array(1);
    host.read(hostPfns[3]! * PAGE_SIZE + 5, view);
    expect(view[0]).toBe(0x5a);
    const touched: number[] = [];
    guest.forEachTouchedFrame((pfn) => touched.push(pfn));
    expect(touched).toEqual([3]);
    expect(guest.touchedFrames).toBe(1);
  });

  it("refuses addresses outside guest RAM and leaves memory as it was", () => {
    const { guest } = guestOnHost();
    guest.write(0, Uint8Array.of(1, 2, 3));
    expect(errorCode(() => guest.write(GUEST_PAGES * PAGE_SIZE - 1, Uint8Array.of(9, 9)))).toBe(
      "out-of-range",
    );
    expect(errorCode(() => guest.read(-1, new Uint8Array(1)))).toBe("bad-address");
    expect(errorCode(() => guest.hostFrame(GUEST_PAGES))).toBe("out-of-range");
    expect(errorCode(() => guest.frame(1.5))).toBe("out-of-range");
    const last = new Uint8Array(1);
    guest.read(GUEST_PAGES * PAGE_SIZE - 1, last);
    expect(last[0]).toBe(0);
  });

  it("needs exactly one RAM host frame per guest frame", () => {
    const host = new PhysicalMemory([{ start: 0, end: MiB }]);
    const ranges = [{ start: 0, end: 4 * PAGE_SIZE }];
    expect(errorCode(() => new GuestPhysicalMemory(ranges, host, [1, 2, 3]))).toBe("bad-length");
    expect(errorCode(() => new GuestPhysicalMemory(ranges, host, [1, 2, 3, 9999]))).toBe("out-of-range");
  });

  it("moves guest pages onto other host frames, contents included", () => {
    const { host, guest, hostPfns } = guestOnHost();
    const bytes = Uint8Array.from({ length: 2 * PAGE_SIZE }, (_, i) => (i * 7) & 0xff);
    guest.write(20 * PAGE_SIZE, bytes);
    const old = guest.replaceBacking(20, [100, 101]);
    expect(old).toEqual([hostPfns[20], hostPfns[21]]);
    expect(guest.hostFrame(21)).toBe(101);
    const back = new Uint8Array(2 * PAGE_SIZE);
    guest.read(20 * PAGE_SIZE, back);
    expect(back).toEqual(bytes);
    const direct = new Uint8Array(2 * PAGE_SIZE);
    host.read(100 * PAGE_SIZE, direct);
    expect(direct).toEqual(bytes);
    expect(errorCode(() => guest.replaceBacking(GUEST_PAGES - 1, [1, 2]))).toBe("out-of-range");
  });

  it("serves a whole frame allocator, kernel-style, on scattered host frames", () => {
    const host = new PhysicalMemory([{ start: 0, end: 64 * MiB }]);
    const hostFrames = new FrameAllocator(host, new Random(5));
    const owner = hostFrames.registerOwner("guest");
    const pfns = hostFrames.allocate(4096, { owner });
    const guest = new GuestPhysicalMemory([{ start: 0, end: 16 * MiB }], host, pfns);
    const frames = new FrameAllocator(guest, new Random(1));
    const mine = frames.registerOwner("driver");
    const run = frames.allocate(8, { owner: mine, contiguous: true });
    guest.write(run[0]! * PAGE_SIZE, new Uint8Array(8 * PAGE_SIZE).fill(0x11));
    frames.free(run, mine);
    const poisoned = new Uint8Array(8 * PAGE_SIZE);
    guest.read(run[0]! * PAGE_SIZE, poisoned);
    expect(poisoned.every((b) => b === FrameAllocator.POISON)).toBe(true);
    expect(hostFrames.framesOwnedBy(owner)).toBe(4096);
  });
});
