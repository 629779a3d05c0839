/**
 * A guest's physical address space: the PhysicalMemory a guest machine's own frame allocator,
 * kernel memory, MDLs, HAL, IOMMU tables and emulated devices use, addressed by guest-physical
 * address (GPA), and backed page by page by host frames (HPA) the hypervisor allocated for it.
 * This is the second-stage translation an EPT/NPT walk performs for the guest's CPU accesses,
 * kept here as one host frame number per guest frame (a flat table per RAM range).
 *
 * Every access is split into runs of guest pages whose host frames are consecutive, and each run
 * is one call on host memory: a guest backed by scattered frames costs one host copy per page, a
 * guest backed by contiguous runs one copy per run. Nothing is copied byte by byte and nothing is
 * allocated per access. The base class's own slabs stay empty: every byte lives in host RAM, so a
 * device assigned to the guest, writing host frames through the host IOMMU, and the guest's CPU,
 * reading through this view, see the same bytes.
 */
import { checkAddress, checkLength, formatAddress, PAGE_SIZE } from "../platform/page.js";
import { PhysicalMemory, type RamRange } from "../platform/physical-memory.js";
import { PlatformError } from "../platform/platform-error.js";

/** One guest RAM range and the host frame behind each of its pages. */
interface BackedRange {
  readonly firstPfn: number;
  readonly endPfn: number;
  readonly hostPfns: Float64Array;
}

export class GuestPhysicalMemory extends PhysicalMemory {
  /** The host RAM every guest frame lives in. */
  readonly host: PhysicalMemory;
  readonly #backed: readonly BackedRange[];
  /** Host address of the run #hostRun found last (one result, reused). */
  #runAddress = 0;

  /**
   * `hostPfns` gives the host frame of every guest frame, in guest address order over `ranges`.
   * Throws a PlatformError if the count is wrong or a host frame is not host RAM.
   */
  constructor(ranges: readonly RamRange[], host: PhysicalMemory, hostPfns: readonly number[]) {
    super(ranges);
    this.host = host;
    let at = 0;
    const backed: BackedRange[] = [];
    for (const range of this.ranges) {
      const firstPfn = range.start / PAGE_SIZE;
      const endPfn = range.end / PAGE_SIZE;
      const count = endPfn - firstPfn;
      if (at + count > hostPfns.length) break;
      backed.push({ firstPfn, endPfn, hostPfns: Float64Array.from(hostPfns.slice(at, at + count)) });
      at += count;
    }
    if (at !== hostPfns.length || backed.length !== this.ranges.length) {
      throw new PlatformError(
        "bad-length",
        `${hostPfns.length} host frames cannot back ${this.ramBytes / PAGE_SIZE} guest frames`,
      );
    }
    for (const range of backed) {
      for (const pfn of range.hostPfns) {
        if (!host.isRam(pfn * PAGE_SIZE, PAGE_SIZE)) {
          throw new PlatformError("out-of-range", `host frame ${formatAddress(pfn * PAGE_SIZE)} is not RAM`);
        }
      }
    }
    this.#backed = backed;
  }

  /** Host frame number behind guest frame `pfn`; "out-of-range" when the frame is not guest RAM. */
  hostFrame(pfn: number): number {
    if (!Number.isSafeInteger(pfn) || pfn < 0 || !this.isRam(pfn * PAGE_SIZE, PAGE_SIZE)) {
      throw new PlatformError("out-of-range", `guest frame number ${String(pfn)} is not guest RAM`);
    }
    const range = this.#rangeOf(pfn);
    return range.hostPfns[pfn - range.firstPfn]!;
  }

  /** Host physical address of guest-physical address `gpa`. */
  hostAddress(gpa: number): number {
    checkAddress(gpa, "guest-physical address");
    const pfn = Math.floor(gpa / PAGE_SIZE);
    return this.hostFrame(pfn) * PAGE_SIZE + (gpa - pfn * PAGE_SIZE);
  }

  /** Calls `visit` with every guest frame and its host frame, in guest address order. */
  forEachBacking(visit: (guestPfn: number, hostPfn: number) => void): void {
    for (const range of this.#backed) {
      const table = range.hostPfns;
      for (let i = 0; i < table.length; i++) visit(range.firstPfn + i, table[i]!);
    }
  }

  /**
   * Moves guest frames [firstPfn, +hostPfns.length) onto other host frames, contents included,
   * and returns the host frames they leave (the caller frees them). What a hypervisor does when it
   * must give guest pages a different host placement (contiguous, below a device's reach).
   */
  replaceBacking(firstPfn: number, hostPfns: readonly number[]): number[] {
    const count = hostPfns.length;
    if (count === 0 || !this.isRam(firstPfn * PAGE_SIZE, count * PAGE_SIZE)) {
      throw new PlatformError(
        "out-of-range",
        `guest frames ${String(firstPfn)}+${count} are not one stretch of guest RAM`,
      );
    }
    for (const pfn of hostPfns) {
      if (!this.host.isRam(pfn * PAGE_SIZE, PAGE_SIZE)) {
        throw new PlatformError("out-of-range", `host frame ${formatAddress(pfn * PAGE_SIZE)} is not RAM`);
      }
    }
    const range = this.#rangeOf(firstPfn);
    const base = firstPfn - range.firstPfn;
    const old: number[] = [];
    for (let i = 0; i < count; i++) {
      const from = range.hostPfns[base + i]!;
      old.push(from);
      this.host.copy(hostPfns[i]! * PAGE_SIZE, from * PAGE_SIZE, PAGE_SIZE);
      range.hostPfns[base + i] = hostPfns[i]!;
    }
    return old;
  }

  override get touchedFrames(): number {
    let touched = 0;
    this.forEachBacking((_pfn, hostPfn) => {
      if (this.host.isTouched(hostPfn)) touched++;
    });
    return touched;
  }

  /** Host bytes of the frames this guest has touched (the guest owns no slabs of its own). */
  override get hostBytes(): number {
    return this.touchedFrames * PAGE_SIZE;
  }

  override isTouched(pfn: number): boolean {
    if (!Number.isSafeInteger(pfn) || pfn < 0 || !this.isRam(pfn * PAGE_SIZE, PAGE_SIZE)) return false;
    return this.host.isTouched(this.hostFrame(pfn));
  }

  override forEachTouchedFrame(visit: (pfn: number) => void): void {
    this.forEachBacking((pfn, hostPfn) => {
      if (this.host.isTouched(hostPfn)) visit(pfn);
    });
  }

  override frame(pfn: number): Uint8Array {
    if (!this.isRam(pfn * PAGE_SIZE, PAGE_SIZE)) this.#reject(pfn * PAGE_SIZE, PAGE_SIZE);
    return this.host.frame(this.hostFrame(pfn));
  }

  override readInto(address: number, dst: Uint8Array, dstOffset: number, length: number): void {
    if (!this.isRam(address, length) || dstOffset < 0 || dstOffset + length > dst.length) {
      this.#reject(address, length);
    }
    let done = 0;
    while (done < length) {
      const run = this.#hostRun(address + done, length - done);
      this.host.readInto(this.#runAddress, dst, dstOffset + done, run);
      done += run;
    }
  }

  override writeFrom(address: number, src: Uint8Array, srcOffset: number, length: number): void {
    if (!this.isRam(address, length) || srcOffset < 0 || srcOffset + length > src.length) {
      this.#reject(address, length);
    }
    let done = 0;
    while (done < length) {
      const run = this.#hostRun(address + done, length - done);
      this.host.writeFrom(this.#runAddress, src, srcOffset + done, run);
      done += run;
    }
  }

  override fill(address: number, length: number, value: number): void {
    if (!this.isRam(address, length)) this.#reject(address, length);
    let done = 0;
    while (done < length) {
      const run = this.#hostRun(address + done, length - done);
      this.host.fill(this.#runAddress, run, value);
      done += run;
    }
  }

  override copy(dstAddress: number, srcAddress: number, length: number): void {
    if (!this.isRam(srcAddress, length)) this.#reject(srcAddress, length);
    if (!this.isRam(dstAddress, length)) this.#reject(dstAddress, length);
    let done = 0;
    while (done < length) {
      const srcRun = this.#hostRun(srcAddress + done, length - done);
      const from = this.#runAddress;
      const run = this.#hostRun(dstAddress + done, srcRun);
      this.host.copy(this.#runAddress, from, run);
      done += run;
    }
  }

  /**
   * The bytes from guest address `address` (at most `max`) whose host frames are consecutive;
   * their host address is left in #runAddress. The caller has checked the range is guest RAM,
   * and a check never passes across two RAM ranges, so the run stays in one.
   */
  #hostRun(address: number, max: number): number {
    const pfn = Math.floor(address / PAGE_SIZE);
    const range = this.#rangeOf(pfn);
    const table = range.hostPfns;
    let index = pfn - range.firstPfn;
    const inPage = address - pfn * PAGE_SIZE;
    this.#runAddress = table[index]! * PAGE_SIZE + inPage;
    let length = Math.min(PAGE_SIZE - inPage, max);
    while (length < max && index + 1 < table.length && table[index + 1] === table[index]! + 1) {
      index++;
      length = Math.min(length + PAGE_SIZE, max);
    }
    return length;
  }

  #rangeOf(pfn: number): BackedRange {
    for (const range of this.#backed) if (pfn >= range.firstPfn && pfn < range.endPfn) return range;
    throw new PlatformError("out-of-range", `guest frame number ${String(pfn)} is not guest RAM`);
  }

  #reject(address: number, length: number): never {
    checkAddress(address, "guest-physical address");
    checkLength(length, "length");
    throw new PlatformError(
      "out-of-range",
      `guest-physical range ${formatAddress(address)}+${formatAddress(length)} is not guest RAM (or overruns its buffer)`,
    );
  }
}
