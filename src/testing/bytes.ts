/**
 * Bytes for tests: a deterministic pattern, a fast equality, and a difference a person can read
 * (vitest's element-wise diff of a 64 KiB Uint8Array is both slow and unreadable).
 */

/** `length` bytes that differ per seed and per offset (a 32-bit LCG), so misplaced bytes show. */
export function testBytes(length: number, seed = 1): Uint8Array {
  const bytes = new Uint8Array(length);
  let x = (seed >>> 0) ^ 0x9e37_79b9;
  for (let i = 0; i < length; i++) {
    x = (Math.imul(x, 1_664_525) + 1_013_904_223) >>> 0;
    bytes[i] = x >>> 24;
  }
  return bytes;
}

export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.length).equals(Buffer.from(b.buffer, b.byteOffset, b.length));
}

/** Concatenates byte arrays into one. */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  const total = parts.reduce((sum, part) => sum + part.length, 0);
  const out = new Uint8Array(total);
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** "lengths differ (12 vs 16), first difference at byte 4: ... 0a [0b] 0c ... vs ... 0a [ff] 0c ...". */
export function describeDifference(actual: Uint8Array, expected: Uint8Array): string {
  const common = Math.min(actual.length, expected.length);
  let at = 0;
  while (at < common && actual[at] === expected[at]) at++;
  const lengths =
    actual.length === expected.length
      ? `${actual.length} bytes`
      : `lengths differ (${actual.length} actual, ${expected.length} expected)`;
  if (at === common && actual.length === expected.length) return `${lengths}, identical`;
  return `${lengths}, first difference at byte ${at}:\n    actual   ${excerpt(actual, at)}\n    expected ${excerpt(expected, at)}`;
}

function excerpt(bytes: Uint8Array, at: number): string {
  const from = Math.max(0, at - 4);
  const to = Math.min(bytes.length, at + 5);
  const cells: string[] = [];
  for (let i = from; i < to; i++) {
    const hex = bytes[i]!.toString(16).padStart(2, "0");
    cells.push(i === at ? `[${hex}]` : hex);
  }
  if (at >= bytes.length) cells.push("[end]");
  return `${from > 0 ? "... " : ""}${cells.join(" ")}${to < bytes.length ? " ..." : ""}`;
}
