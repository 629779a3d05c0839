/**
 * The logical page ranges of an IOMMU interface domain (or of a reserved token) that something
 * owns, each with a value saying what: disjoint, kept sorted by first page in parallel arrays and
 * searched by bisection. Removing part of a range splits it, so UnmapLogicalRange can take any
 * page-aligned piece of what MapLogicalRange mapped. The page table in RAM stays the record of the
 * translations; this map only answers "is it mapped, and by whom" without walking it.
 */

export interface LogicalRange<T> {
  readonly first: number;
  readonly pages: number;
  readonly value: T;
}

export class LogicalRangeMap<T> {
  readonly #first: number[] = [];
  readonly #pages: number[] = [];
  readonly #values: T[] = [];

  get size(): number {
    return this.#first.length;
  }

  /** Pages in all ranges. */
  get pages(): number {
    let total = 0;
    for (const n of this.#pages) total += n;
    return total;
  }

  /** True when any page of [first, first + pages) is in a range. */
  overlaps(first: number, pages: number): boolean {
    const i = this.#lastStartingAtOrBefore(first + pages - 1);
    return i >= 0 && this.#first[i]! + this.#pages[i]! > first;
  }

  /** Adds a range; the caller has checked it overlaps nothing. */
  add(first: number, pages: number, value: T): void {
    const at = this.#lastStartingAtOrBefore(first) + 1;
    this.#first.splice(at, 0, first);
    this.#pages.splice(at, 0, pages);
    this.#values.splice(at, 0, value);
  }

  /** The ranges overlapping [first, first + pages), in order, clipped to it. */
  find(first: number, pages: number): LogicalRange<T>[] {
    const end = first + pages;
    const found: LogicalRange<T>[] = [];
    let i = Math.max(0, this.#lastStartingAtOrBefore(first));
    for (; i < this.#first.length && this.#first[i]! < end; i++) {
      const s = Math.max(first, this.#first[i]!);
      const e = Math.min(end, this.#first[i]! + this.#pages[i]!);
      if (s < e) found.push({ first: s, pages: e - s, value: this.#values[i]! });
    }
    return found;
  }

  /** True when ranges whose value passes `accept` cover every page of [first, first + pages). */
  covers(first: number, pages: number, accept: (value: T) => boolean): boolean {
    let next = first;
    for (const range of this.find(first, pages)) {
      if (range.first !== next || !accept(range.value)) return false;
      next = range.first + range.pages;
    }
    return next === first + pages;
  }

  /** The range starting exactly at `first`, if any. */
  at(first: number): LogicalRange<T> | undefined {
    const i = this.#lastStartingAtOrBefore(first);
    if (i < 0 || this.#first[i] !== first) return undefined;
    return { first, pages: this.#pages[i]!, value: this.#values[i]! };
  }

  /** Takes [first, first + pages) out of every range it touches, splitting them; returns what went. */
  remove(first: number, pages: number): LogicalRange<T>[] {
    const removed = this.find(first, pages);
    const end = first + pages;
    for (const piece of removed) {
      const i = this.#lastStartingAtOrBefore(piece.first);
      const start = this.#first[i]!;
      const stop = start + this.#pages[i]!;
      const value = this.#values[i]!;
      this.#first.splice(i, 1);
      this.#pages.splice(i, 1);
      this.#values.splice(i, 1);
      if (stop > end) this.add(end, stop - end, value);
      if (start < piece.first) this.add(start, piece.first - start, value);
    }
    return removed;
  }

  /** Every range, in order. */
  entries(): LogicalRange<T>[] {
    return this.#first.map((first, i) => ({ first, pages: this.#pages[i]!, value: this.#values[i]! }));
  }

  /** Index of the last range starting at or before `page`, or -1. */
  #lastStartingAtOrBefore(page: number): number {
    let low = 0;
    let high = this.#first.length - 1;
    let found = -1;
    while (low <= high) {
      const middle = (low + high) >>> 1;
      if (this.#first[middle]! <= page) {
        found = middle;
        low = middle + 1;
      } else {
        high = middle - 1;
      }
    }
    return found;
  }
}
