/**
 * A DiskImage in host memory, for tests and samples that want no file: sparse like the file
 * image, in 64 KiB chunks allocated on first write; unwritten sectors read as zeros.
 */
import { checkLength, GiB, KiB } from "../platform/page.js";
import { PlatformError } from "../platform/platform-error.js";
import { checkSectorAccess, type DiskImage, MAX_IMAGE_BYTES, SECTOR_SIZE } from "./disk-image.js";

const CHUNK_BYTES = 64 * KiB;

export class MemoryDiskImage implements DiskImage {
  readonly sectorCount: number;
  readonly #chunks = new Map<number, Uint8Array>();
  #closed = false;

  constructor(size: number = GiB) {
    checkLength(size, "disk image size", MAX_IMAGE_BYTES);
    if (size === 0 || size % SECTOR_SIZE !== 0) {
      throw new PlatformError("bad-length", `disk image size ${size} must be a positive multiple of 512`);
    }
    this.sectorCount = size / SECTOR_SIZE;
  }

  /** Host bytes spent on written chunks. */
  get hostBytes(): number {
    return this.#chunks.size * CHUNK_BYTES;
  }

  read(lba: number, dst: Uint8Array): void {
    this.#checkOpen();
    checkSectorAccess(lba, dst, this.sectorCount);
    this.#forEachChunk(lba, dst.length, (chunk, offset, done, n) => {
      if (chunk === undefined) dst.fill(0, done, done + n);
      else dst.set(chunk.subarray(offset, offset + n), done);
    });
  }

  write(lba: number, src: Uint8Array): void {
    this.#checkOpen();
    checkSectorAccess(lba, src, this.sectorCount);
    this.#forEachChunk(lba, src.length, (_chunk, offset, done, n, index) => {
      let chunk = this.#chunks.get(index);
      if (chunk === undefined) {
        chunk = new Uint8Array(CHUNK_BYTES);
        this.#chunks.set(index, chunk);
      }
      chunk.set(src.subarray(done, done + n), offset);
    });
  }

  close(): void {
    this.#closed = true;
    this.#chunks.clear();
  }

  #checkOpen(): void {
    if (this.#closed) throw new PlatformError("bad-state", "memory disk image is closed");
  }

  /** Calls `visit` once per chunk touched by [lba, lba + length bytes). */
  #forEachChunk(
    lba: number,
    length: number,
    visit: (chunk: Uint8Array | undefined, offset: number, done: number, n: number, index: number) => void,
  ): void {
    const start = lba * SECTOR_SIZE;
    let done = 0;
    while (done < length) {
      const position = start + done;
      const index = Math.floor(position / CHUNK_BYTES);
      const offset = position % CHUNK_BYTES;
      const n = Math.min(CHUNK_BYTES - offset, length - done);
      visit(this.#chunks.get(index), offset, done, n, index);
      done += n;
    }
  }
}
