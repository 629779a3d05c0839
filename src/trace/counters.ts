/**
 * Named monotonic counters ("iommu.iotlb.miss", "hal.bounce.bytes", ...). Layers increment their
 * own; reports and the cost model read a snapshot. Hot paths take a `cell` once and bump its
 * `value` directly: a string-keyed lookup per DMA page would cost more than the copy it counts.
 */
export interface CounterCell {
  value: number;
}

export class Counters {
  readonly #cells = new Map<string, CounterCell>();

  /** The live cell behind `name`, created at zero. */
  cell(name: string): CounterCell {
    let cell = this.#cells.get(name);
    if (cell === undefined) {
      cell = { value: 0 };
      this.#cells.set(name, cell);
    }
    return cell;
  }

  add(name: string, amount = 1): void {
    this.cell(name).value += amount;
  }

  get(name: string): number {
    return this.#cells.get(name)?.value ?? 0;
  }

  /** Non-zero counters whose names start with `prefix`, sorted by name. */
  snapshot(prefix = ""): Record<string, number> {
    const out: Record<string, number> = {};
    for (const name of [...this.#cells.keys()].sort()) {
      const value = this.#cells.get(name)!.value;
      if (name.startsWith(prefix) && value !== 0) out[name] = value;
    }
    return out;
  }

  /** Zeroes every counter; cells stay live, so hot paths keep their references. */
  reset(): void {
    for (const cell of this.#cells.values()) cell.value = 0;
  }
}
