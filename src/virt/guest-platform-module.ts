/**
 * The rebinds that turn a Machine's container into a guest's (loaded right after the layers'
 * own modules, before the guest's driver packages): its memory and scheduler views of the host,
 * its hypercall interface, and what its DMA interface changes.
 *
 * - trapped: the IOMMU is a CachingModeIommu and the remapping strategy a CachingModeRemapMapping
 *   (the guest runs with remapping on);
 * - paravirtual: the direct strategy's seat goes to ParavirtualMapping (the guest runs with
 *   remapping off: it sees no IOMMU);
 * - native: nothing more; the guest runs with remapping off.
 */
import { ContainerModule } from "inversify";
import { DirectMapping } from "../hal/direct-mapping.js";
import { RemapMapping } from "../hal/remap-mapping.js";
import { Iommu } from "../iommu/iommu.js";
import { PhysicalMemory } from "../platform/physical-memory.js";
import { Scheduler } from "../platform/scheduler.js";
import { CachingModeIommu } from "./caching-mode-iommu.js";
import { CachingModeRemapMapping } from "./caching-mode-remap-mapping.js";
import type { GuestPhysicalMemory } from "./guest-physical-memory.js";
import type { GuestScheduler } from "./guest-scheduler.js";
import type { Hypercalls as HypercallsShape } from "./hypercalls.js";
import { ParavirtualMapping } from "./paravirtual-mapping.js";
import { EmulatedIommuOptions, Hypercalls, ParavirtualOptions } from "./tokens.js";
import type {
  EmulatedIommuOptions as EmulatedIommuOptionsShape,
  ParavirtualOptions as ParavirtualOptionsShape,
  ResolvedGuestOptions,
} from "./virt-options.js";

export function guestPlatformModule(
  options: ResolvedGuestOptions,
  memory: GuestPhysicalMemory,
  scheduler: GuestScheduler,
  hypercalls: HypercallsShape,
): ContainerModule {
  const emulated: EmulatedIommuOptionsShape = { invalidation: options.invalidation };
  const paravirtual: ParavirtualOptionsShape = { regionBytes: options.regionBytes };
  return new ContainerModule(({ bind, rebind }) => {
    rebind(PhysicalMemory).toConstantValue(memory);
    rebind(Scheduler).toConstantValue(scheduler);
    bind(Hypercalls).toConstantValue(hypercalls);
    bind(EmulatedIommuOptions).toConstantValue(emulated);
    bind(ParavirtualOptions).toConstantValue(paravirtual);
    if (options.dmaInterface === "trapped") {
      rebind(Iommu).to(CachingModeIommu).inSingletonScope();
      rebind(RemapMapping).to(CachingModeRemapMapping).inSingletonScope();
    } else if (options.dmaInterface === "paravirtual") {
      rebind(DirectMapping).to(ParavirtualMapping).inSingletonScope();
    }
  });
}
