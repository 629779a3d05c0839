/**
 * The DMA verifier (src/verifier/verifier-module.ts) as a container module for test machines.
 * It is looked up when the kit loads, not imported statically, so the kit also works in a build
 * without the verifier; asking for it there fails with an error that says so.
 */
import type { ContainerModule } from "inversify";
import { PlatformError } from "../platform/platform-error.js";
import type { VerifierOptions } from "../verifier/verifier-options.js";

const VERIFIER_MODULE = "../verifier/verifier-module.js";

/** What the verifier package exports: its module, or a factory taking its options. */
interface VerifierExports {
  readonly default?: ContainerModule | ((options?: VerifierOptions) => ContainerModule);
  readonly verifierModule?: (options?: VerifierOptions) => ContainerModule;
}

const loaded: VerifierExports | Error = await import(/* @vite-ignore */ VERIFIER_MODULE).then(
  (exports: VerifierExports) => exports,
  (error: unknown) => (error instanceof Error ? error : new Error(String(error))),
);

/** True when the verifier package is part of this build. */
export function verifierAvailable(): boolean {
  return !(loaded instanceof Error);
}

/** The verifier's container module, configured with `options`. */
export function verifierModule(options: VerifierOptions | undefined): ContainerModule {
  if (loaded instanceof Error) {
    throw new PlatformError(
      "bad-state",
      `a test machine with the verifier needs src/verifier/verifier-module.ts, which could not be loaded: ${loaded.message}`,
    );
  }
  const exported = loaded.verifierModule ?? loaded.default;
  if (typeof exported === "function") return exported(options);
  if (exported === undefined) {
    throw new PlatformError("bad-state", "src/verifier/verifier-module.ts exports no container module");
  }
  if (options !== undefined) {
    throw new PlatformError("bad-state", "this verifier module takes no options: pass verifier: true");
  }
  return exported;
}
