/**
 * The scheduler's pending events: a binary min-heap ordered by (time, sequence), where the
 * sequence is the insertion order. Ties in time therefore fire first-in first-out, which is what
 * makes a run reproducible. Each entry knows its heap index, so cancelling a timer removes it in
 * O(log n) instead of leaving a tombstone behind.
 */
export interface QueueEntry {
  readonly time: number;
  readonly sequence: number;
  /** Position in the heap, -1 when not queued. Maintained by the queue only. */
  index: number;
}

export class EventQueue<T extends QueueEntry> {
  readonly #heap: T[] = [];

  get size(): number {
    return this.#heap.length;
  }

  peek(): T | undefined {
    return this.#heap[0];
  }

  push(entry: T): void {
    entry.index = this.#heap.length;
    this.#heap.push(entry);
    this.#up(entry.index);
  }

  pop(): T | undefined {
    const heap = this.#heap;
    const top = heap[0];
    if (top === undefined) return undefined;
    this.#removeAt(0);
    return top;
  }

  /** Removes a queued entry; false if it is not (or no longer) in this queue. */
  remove(entry: T): boolean {
    const i = entry.index;
    if (i < 0 || this.#heap[i] !== entry) return false;
    this.#removeAt(i);
    return true;
  }

  #removeAt(i: number): void {
    const heap = this.#heap;
    const removed = heap[i]!;
    const last = heap.pop()!;
    removed.index = -1;
    if (last === removed) return;
    heap[i] = last;
    last.index = i;
    this.#down(i);
    this.#up(last.index);
  }

  #up(i: number): void {
    const heap = this.#heap;
    const entry = heap[i]!;
    while (i > 0) {
      const parentIndex = (i - 1) >> 1;
      const parent = heap[parentIndex]!;
      if (!before(entry, parent)) break;
      heap[i] = parent;
      parent.index = i;
      i = parentIndex;
    }
    heap[i] = entry;
    entry.index = i;
  }

  #down(i: number): void {
    const heap = this.#heap;
    const n = heap.length;
    const entry = heap[i]!;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= n) break;
      const right = left + 1;
      const child = right < n && before(heap[right]!, heap[left]!) ? right : left;
      if (!before(heap[child]!, entry)) break;
      heap[i] = heap[child]!;
      heap[i]!.index = i;
      i = child;
    }
    heap[i] = entry;
    entry.index = i;
  }
}

function before(a: QueueEntry, b: QueueEntry): boolean {
  return a.time < b.time || (a.time === b.time && a.sequence < b.sequence);
}
