/**
 * Named monotonic counters ("iommu.iotlb.miss", "hal.bounce.bytes", ...). Layers increment their
 * own; reports and the cost model read a snapshot. A plain object keeps increments cheap.
 */
export class Counters {
  readonly #values = new Map<string, number>();

  add(name: string, amount = 1): void {
    this.#values.set(name, (this.#values.get(name) ?? 0) + amount);
  }

  get(name: string): number {
    return this.#values.get(name) ?? 0;
  }

  /** Counters whose names start with `prefix`, sorted by name. */
  snapshot(prefix = ""): Record<string, number> {
    const out: Record<string, number> = {};
    for (const name of [...this.#values.keys()].sort()) {
      if (name.startsWith(prefix)) out[name] = this.#values.get(name)!;
    }
    return out;
  }

  reset(): void {
    this.#values.clear();
  }
}
