/**
 * The backing store of a disk: 512-byte sectors addressed by LBA. `FileDiskImage` keeps them in a
 * sparse raw image file on the host (what `qemu-img create -f raw` makes): the file is extended
 * with ftruncate, so never-written sectors take no disk space and read as zeros, and every access
 * is one positioned read or write; the image is never read whole.
 */
import { closeSync, existsSync, fstatSync, ftruncateSync, openSync, readSync, writeSync } from "node:fs";
import { checkLength, GiB, TiB } from "../platform/page.js";
import { PlatformError } from "../platform/platform-error.js";

export const SECTOR_SIZE = 512;

export interface DiskImage {
  readonly sectorCount: number;
  /** Fills `dst` (a whole number of sectors) from `lba` on. */
  read(lba: number, dst: Uint8Array): void;
  /** Stores `src` (a whole number of sectors) from `lba` on. */
  write(lba: number, src: Uint8Array): void;
  close(): void;
}

export interface FileDiskImageOptions {
  /** Image size in bytes, a multiple of 512 (default 1 GiB). An existing larger file is kept as is. */
  readonly size?: number;
}

/** Largest image: 16 TiB keeps every byte offset a safe integer with room to spare. */
export const MAX_IMAGE_BYTES = 16 * TiB;

/** Checks an access of `buffer` at `lba` against an image of `sectorCount` sectors. */
export function checkSectorAccess(lba: number, buffer: Uint8Array, sectorCount: number): void {
  if (!(buffer instanceof Uint8Array) || buffer.length % SECTOR_SIZE !== 0) {
    throw new PlatformError(
      "bad-length",
      `disk transfers are whole 512-byte sectors, not ${String(buffer?.length)} bytes`,
    );
  }
  checkLength(lba, "LBA");
  if (lba + buffer.length / SECTOR_SIZE > sectorCount) {
    throw new PlatformError(
      "out-of-range",
      `sectors ${lba}..${lba + buffer.length / SECTOR_SIZE - 1} are beyond the image's ${sectorCount} sectors`,
    );
  }
}

export class FileDiskImage implements DiskImage {
  readonly path: string;
  readonly sectorCount: number;
  #fd: number | undefined;

  /** Opens `path`, creating a sparse file of `size` bytes if it does not exist or is smaller. */
  constructor(path: string, options: FileDiskImageOptions = {}) {
    const size = options.size ?? GiB;
    checkLength(size, "disk image size", MAX_IMAGE_BYTES);
    if (size === 0 || size % SECTOR_SIZE !== 0) {
      throw new PlatformError("bad-length", `disk image size ${size} must be a positive multiple of 512`);
    }
    const fd = openSync(path, existsSync(path) ? "r+" : "w+");
    try {
      const existing = fstatSync(fd).size;
      if (existing < size) ftruncateSync(fd, size);
      this.sectorCount = Math.floor(Math.max(existing, size) / SECTOR_SIZE);
    } catch (error) {
      closeSync(fd);
      throw error;
    }
    this.path = path;
    this.#fd = fd;
  }

  read(lba: number, dst: Uint8Array): void {
    const fd = this.#open();
    checkSectorAccess(lba, dst, this.sectorCount);
    let done = 0;
    while (done < dst.length) {
      const n = readSync(fd, dst, done, dst.length - done, lba * SECTOR_SIZE + done);
      if (n === 0) {
        // Shortened by someone else under us: what is past the end reads as zeros.
        dst.fill(0, done);
        return;
      }
      done += n;
    }
  }

  write(lba: number, src: Uint8Array): void {
    const fd = this.#open();
    checkSectorAccess(lba, src, this.sectorCount);
    let done = 0;
    while (done < src.length) done += writeSync(fd, src, done, src.length - done, lba * SECTOR_SIZE + done);
  }

  /** Closes the file; closing twice is harmless, any other use after it throws. */
  close(): void {
    if (this.#fd === undefined) return;
    closeSync(this.#fd);
    this.#fd = undefined;
  }

  #open(): number {
    if (this.#fd === undefined) throw new PlatformError("bad-state", `disk image ${this.path} is closed`);
    return this.#fd;
  }
}
