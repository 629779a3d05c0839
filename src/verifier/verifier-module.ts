/**
 * Switching the DMA verifier on: `new Machine(options, [verifierModule({ mode: "log" })])`, or
 * the default export for bug check mode on every driver. The module rebinds the HAL's
 * DmaOperations seam to the verifier's decorator (so every adapter's DMA_OPERATIONS table calls
 * it), decorates Hal.getDmaAdapter for IoGetDmaAdapter's checks, and rebinds CpuMemory to the
 * watched subclass that reports stale reads. DmaVerifier (machine.get(DmaVerifier)) holds the
 * violations and the `!dma` report.
 */
import { ContainerModule } from "inversify";
import { Hal } from "../hal/hal.js";
import { DmaOperations } from "../hal/tokens.js";
import { CpuMemory } from "../platform/cpu-memory.js";
import { DmaVerifier } from "./dma-verifier.js";
import { VerifierOptions } from "./tokens.js";
import { verifiedHal } from "./verified-hal.js";
import { VerifierDmaOperations } from "./verifier-dma-operations.js";
import { resolveVerifierOptions, type VerifierOptions as VerifierOptionsShape } from "./verifier-options.js";
import { WatchedCpuMemory } from "./watched-cpu-memory.js";

export function verifierModule(options: VerifierOptionsShape = {}): ContainerModule {
  const resolved = resolveVerifierOptions(options);
  return new ContainerModule(({ bind, rebind, onActivation }) => {
    bind(VerifierOptions).toConstantValue(resolved);
    bind(DmaVerifier).toSelf().inSingletonScope();
    bind(VerifierDmaOperations).toSelf().inSingletonScope();
    rebind(DmaOperations).toService(VerifierDmaOperations);
    if (resolved.staleReads) rebind(CpuMemory).to(WatchedCpuMemory).inSingletonScope();
    onActivation(Hal, (context, hal) => verifiedHal(hal, context.get(DmaVerifier)));
  });
}

/** Bug check mode, every driver. */
export default verifierModule();
