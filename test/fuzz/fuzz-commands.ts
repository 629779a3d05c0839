/**
 * The commands of the DMA fuzzer, as plain data fast-check generates and shrinks: DDI calls with
 * their arguments given as indices and fractions that the harness resolves against what is live
 * when the command runs (so a shrunk sequence stays meaningful), valid variants and invalid ones
 * (wrong lengths, foreign or freed handles, addresses outside the buffer, the wrong IRQL, double
 * frees, arguments that are not what C would pass at all).
 */
import fc from "fast-check";

/** Run at the IRQL the WDK page requires, or at a wrong one. */
export type IrqlChoice = "right" | "wrong";

export type Command =
  | { readonly kind: "open"; readonly device: number; readonly description: number }
  | { readonly kind: "put"; readonly adapter: number; readonly irql: IrqlChoice }
  | { readonly kind: "buffer"; readonly length: number; readonly offset: number; readonly build: boolean }
  | { readonly kind: "freeBuffer"; readonly buffer: number }
  | {
      readonly kind: "allocateCommon";
      readonly adapter: number;
      readonly length: number;
      readonly api: number;
      readonly irql: IrqlChoice;
    }
  | {
      readonly kind: "freeCommon";
      readonly adapter: number;
      readonly target: number;
      readonly variant: "ok" | "length" | "freed" | "foreign";
      readonly irql: IrqlChoice;
    }
  | {
      readonly kind: "getList";
      readonly adapter: number;
      readonly buffer: number;
      readonly start: number;
      readonly length: number;
      readonly write: boolean;
      readonly build: boolean;
      readonly variant: "ok" | "before" | "after" | "zero" | "long";
      readonly irql: IrqlChoice;
    }
  | {
      readonly kind: "putList";
      readonly adapter: number;
      readonly list: number;
      readonly direction: "same" | "other";
      readonly variant: "ok" | "freed" | "foreign";
      readonly irql: IrqlChoice;
    }
  | {
      readonly kind: "channel";
      readonly adapter: number;
      /** Registers asked, as a fraction of the adapter's maximum (above 1: too many). */
      readonly registers: number;
      readonly action: 1 | 2 | 3;
      readonly irql: IrqlChoice;
    }
  | {
      readonly kind: "map";
      readonly adapter: number;
      readonly grant: number;
      readonly buffer: number;
      readonly start: number;
      readonly length: number;
      readonly write: boolean;
      readonly variant: "ok" | "outside" | "zero" | "long" | "nullBase";
      readonly irql: IrqlChoice;
    }
  | {
      readonly kind: "flush";
      readonly adapter: number;
      readonly grant: number;
      readonly piece: number;
      readonly variant: "ok" | "direction" | "whole";
      readonly irql: IrqlChoice;
    }
  | {
      readonly kind: "freeRegisters";
      readonly adapter: number;
      readonly grant: number;
      readonly variant: "ok" | "count" | "freed";
      readonly irql: IrqlChoice;
    }
  | { readonly kind: "freeChannel"; readonly adapter: number; readonly irql: IrqlChoice }
  | { readonly kind: "dma"; readonly adapter: number; readonly target: number; readonly seed: number }
  | {
      readonly kind: "rogue";
      readonly device: number;
      readonly address: number;
      readonly length: number;
      readonly write: boolean;
    }
  | { readonly kind: "cpuRead"; readonly buffer: number }
  | { readonly kind: "time"; readonly ns: number }
  | { readonly kind: "junk"; readonly adapter: number; readonly member: number; readonly variant: number };

const index = fc.nat({ max: 15 });
const fraction = fc.double({ min: 0, max: 1, noNaN: true });
const irql = fc.constantFrom<IrqlChoice>("right", "right", "right", "right", "right", "wrong");

const open = fc.record({
  kind: fc.constant("open" as const),
  device: fc.nat({ max: 1 }),
  description: fc.nat({ max: 7 }),
});
const put = fc.record({ kind: fc.constant("put" as const), adapter: index, irql });
const buffer = fc.record({
  kind: fc.constant("buffer" as const),
  length: fc.integer({ min: 1, max: 3 * 4096 }),
  offset: fc.integer({ min: 0, max: 4095 }),
  build: fc.constantFrom(true, true, true, true, true, true, true, true, true, false),
});
const freeBuffer = fc.record({ kind: fc.constant("freeBuffer" as const), buffer: index });
const allocateCommon = fc.record({
  kind: fc.constant("allocateCommon" as const),
  adapter: index,
  length: fc.oneof(fc.integer({ min: 1, max: 3 * 4096 }), fc.constantFrom(0, -1, 1.5, 2 ** 32, Number.NaN)),
  api: fc.nat({ max: 2 }),
  irql,
});
const freeCommon = fc.record({
  kind: fc.constant("freeCommon" as const),
  adapter: index,
  target: index,
  variant: fc.constantFrom("ok", "ok", "ok", "length", "freed", "foreign") as fc.Arbitrary<
    "ok" | "length" | "freed" | "foreign"
  >,
  irql,
});
const getList = fc.record({
  kind: fc.constant("getList" as const),
  adapter: index,
  buffer: index,
  start: fraction,
  length: fraction,
  write: fc.boolean(),
  build: fc.boolean(),
  variant: fc.constantFrom("ok", "ok", "ok", "ok", "before", "after", "zero", "long") as fc.Arbitrary<
    "ok" | "before" | "after" | "zero" | "long"
  >,
  irql,
});
const putList = fc.record({
  kind: fc.constant("putList" as const),
  adapter: index,
  list: index,
  direction: fc.constantFrom("same", "same", "same", "other") as fc.Arbitrary<"same" | "other">,
  variant: fc.constantFrom("ok", "ok", "ok", "freed", "foreign") as fc.Arbitrary<"ok" | "freed" | "foreign">,
  irql,
});
const channel = fc.record({
  kind: fc.constant("channel" as const),
  adapter: index,
  registers: fc.double({ min: 0, max: 1.2, noNaN: true }),
  action: fc.constantFrom(1, 2, 3, 3) as fc.Arbitrary<1 | 2 | 3>,
  irql,
});
const map = fc.record({
  kind: fc.constant("map" as const),
  adapter: index,
  grant: index,
  buffer: index,
  start: fraction,
  length: fraction,
  write: fc.boolean(),
  variant: fc.constantFrom("ok", "ok", "ok", "ok", "outside", "zero", "long", "nullBase") as fc.Arbitrary<
    "ok" | "outside" | "zero" | "long" | "nullBase"
  >,
  irql,
});
const flush = fc.record({
  kind: fc.constant("flush" as const),
  adapter: index,
  grant: index,
  piece: index,
  variant: fc.constantFrom("ok", "ok", "ok", "direction", "whole") as fc.Arbitrary<
    "ok" | "direction" | "whole"
  >,
  irql,
});
const freeRegisters = fc.record({
  kind: fc.constant("freeRegisters" as const),
  adapter: index,
  grant: index,
  variant: fc.constantFrom("ok", "ok", "ok", "count", "freed") as fc.Arbitrary<"ok" | "count" | "freed">,
  irql,
});
const freeChannel = fc.record({ kind: fc.constant("freeChannel" as const), adapter: index, irql });
const dma = fc.record({
  kind: fc.constant("dma" as const),
  adapter: index,
  target: index,
  seed: fc.nat({ max: 255 }),
});
const rogue = fc.record({
  kind: fc.constant("rogue" as const),
  device: fc.nat({ max: 1 }),
  address: fc.oneof(fc.nat({ max: 2 ** 33 }), fc.constantFrom(0, 4096, 2 ** 32 - 4096, 2 ** 47)),
  length: fc.integer({ min: 1, max: 8192 }),
  write: fc.boolean(),
});
const cpuRead = fc.record({ kind: fc.constant("cpuRead" as const), buffer: index });
const time = fc.record({ kind: fc.constant("time" as const), ns: fc.integer({ min: 1, max: 20_000_000 }) });
const junk = fc.record({
  kind: fc.constant("junk" as const),
  adapter: index,
  member: fc.nat({ max: 11 }),
  variant: fc.nat({ max: 5 }),
});

/** One command, DMA traffic weighted over the rest. */
export const commandArbitrary: fc.Arbitrary<Command> = fc.oneof(
  { arbitrary: open, weight: 1 },
  { arbitrary: put, weight: 1 },
  { arbitrary: buffer, weight: 2 },
  { arbitrary: freeBuffer, weight: 1 },
  { arbitrary: allocateCommon, weight: 2 },
  { arbitrary: freeCommon, weight: 2 },
  { arbitrary: getList, weight: 5 },
  { arbitrary: putList, weight: 4 },
  { arbitrary: channel, weight: 3 },
  { arbitrary: map, weight: 4 },
  { arbitrary: flush, weight: 3 },
  { arbitrary: freeRegisters, weight: 2 },
  { arbitrary: freeChannel, weight: 1 },
  { arbitrary: dma, weight: 4 },
  { arbitrary: rogue, weight: 1 },
  { arbitrary: cpuRead, weight: 1 },
  { arbitrary: time, weight: 1 },
  { arbitrary: junk, weight: 2 },
);

export const sequenceArbitrary = fc.array(commandArbitrary, { minLength: 8, maxLength: 48, size: "medium" });
