import { ContainerModule } from "inversify";
import { Hypervisor } from "./hypervisor.js";
import { HypervisorOptions } from "./tokens.js";
import {
  type HypervisorOptions as HypervisorOptionsShape,
  resolveHypervisorOptions,
} from "./virt-options.js";

/**
 * The virtualization layer's bindings on a HOST machine: `new Machine(options, [virtModule()])`,
 * then `machine.get(Hypervisor)`. The options set the trap cost model (defaults in virt-options).
 */
export function virtModule(options: Partial<HypervisorOptionsShape> = {}): ContainerModule {
  const resolved = resolveHypervisorOptions(options);
  return new ContainerModule(({ bind }) => {
    bind(HypervisorOptions).toConstantValue(resolved);
    bind(Hypervisor).toSelf().inSingletonScope();
  });
}

export default virtModule();
