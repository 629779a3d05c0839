/** Injection tokens of the verifier: its resolved options. The decorator classes are their own tokens. */
export const VerifierOptions = Symbol.for("verifier.VerifierOptions");
