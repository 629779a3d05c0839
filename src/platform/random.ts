/**
 * Seeded pseudo-random numbers (xoshiro128**), so that the same seed gives the same frame
 * placement, the same device timing and the same trace.
 */
export class Random {
  readonly #s = new Uint32Array(4);

  constructor(seed: number) {
    // splitmix32 expands the seed into the four state words.
    let x = seed >>> 0;
    for (let i = 0; i < 4; i++) {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      this.#s[i] = (z ^ (z >>> 16)) >>> 0;
    }
  }

  /** A uniform 32-bit unsigned integer. */
  nextU32(): number {
    const s = this.#s;
    const result = Math.imul(rotl(Math.imul(s[1]!, 5), 7), 9) >>> 0;
    const t = s[1]! << 9;
    s[2]! ^= s[0]!;
    s[3]! ^= s[1]!;
    s[1]! ^= s[2]!;
    s[0]! ^= s[3]!;
    s[2]! ^= t;
    s[3] = rotl(s[3]!, 11);
    return result;
  }

  /** A uniform integer in [0, bound). */
  below(bound: number): number {
    if (bound <= 2 ** 32) return Math.floor((this.nextU32() / 2 ** 32) * bound);
    return Math.floor(((this.nextU32() * 2 ** 21 + (this.nextU32() >>> 11)) / 2 ** 53) * bound);
  }

  /** A uniform float in [0, 1). */
  next(): number {
    return this.nextU32() / 2 ** 32;
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}
