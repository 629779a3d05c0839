/**
 * A back-reference from an object the HAL hands to a driver (a SCATTER_GATHER_LIST, a
 * MAP_REGISTER_BASE) to the HAL's record of it, which the driver cannot see or change: a private
 * field stamped onto the object before it is frozen. A base constructor that returns its argument
 * makes the derived class's field initialisers run on that argument (the "return override"
 * idiom), so any plain object can carry the field.
 *
 * Why not a Map and a WeakSet: the HAL must find its record in O(1) on every put and free, and
 * must still recognise the object once it is put back (a double free is a different bug check
 * from a forged handle). A WeakSet entry per list costs the garbage collector more than a whole
 * GetScatterGatherList/PutScatterGatherList pair; a private field costs nothing after the stamp.
 */

class ReturnsItsArgument {
  constructor(target: object) {
    // biome-ignore lint/correctness/noConstructorReturn: the return override is the point here.
    return target;
  }
}

class HiddenReference extends ReturnsItsArgument {
  readonly #value: unknown;

  private constructor(target: object, value: unknown) {
    super(target);
    this.#value = value;
  }

  static attach(target: object, value: unknown): void {
    new HiddenReference(target, value);
  }

  static read(target: unknown): unknown {
    return typeof target === "object" && target !== null && #value in target
      ? (target as HiddenReference).#value
      : undefined;
  }
}

/** Stamps `value` onto `target`, which must not be frozen yet and must not carry one already. */
export function attachHiddenReference(target: object, value: unknown): void {
  HiddenReference.attach(target, value);
}

/** What attachHiddenReference stamped onto `target`; undefined for anything else. */
export function hiddenReference(target: unknown): unknown {
  return HiddenReference.read(target);
}
