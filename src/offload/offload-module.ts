import { ContainerModule } from "inversify";
import type { DmaCopyOptions as DmaCopyOptionsShape } from "./dma-copy-options.js";
import { DmaCopyService } from "./dma-copy-service.js";
import { DmaCopyOptions } from "./tokens.js";

/**
 * The offload layer's bindings: the copy service and its policy. Load it after the DMA engine's
 * driver package (drivers/dma-engine/dma-engine-module.ts) to give it engines; without that
 * package every copy is a CPU copy.
 */
export function offloadModule(options: DmaCopyOptionsShape = {}): ContainerModule {
  return new ContainerModule(({ bind }) => {
    bind(DmaCopyOptions).toConstantValue(options);
    bind(DmaCopyService).toSelf().inSingletonScope();
  });
}

export default offloadModule();
