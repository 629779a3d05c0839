import "reflect-metadata";
import { Container, type ContainerModule, type ServiceIdentifier } from "inversify";
import ddiModule from "../ddi/ddi-module.js";
import halModule from "../hal/hal-module.js";
import { HalOptions } from "../hal/tokens.js";
import { Iommu } from "../iommu/iommu.js";
import iommuModule from "../iommu/iommu-module.js";
import { IommuOptions } from "../iommu/tokens.js";
import { FrameAllocator } from "../platform/frame-allocator.js";
import { PciBus } from "../platform/pci-bus.js";
import { PhysicalMemory } from "../platform/physical-memory.js";
import platformModule from "../platform/platform-module.js";
import { Scheduler } from "../platform/scheduler.js";
import { PlatformOptions } from "../platform/tokens.js";
import { Counters } from "../trace/counters.js";
import { EventBus } from "../trace/event-bus.js";
import traceModule from "../trace/trace-module.js";
import {
  type MachineOptions,
  type ResolvedMachineOptions,
  resolveMachineOptions,
} from "./machine-options.js";
import { MachineOptionsToken } from "./tokens.js";

/**
 * A simulated computer: one inversify container built from one options object. Each layer
 * contributes a ContainerModule; `extraModules` (verifier, drivers, test doubles) load after the
 * built-in ones and may rebind their seams.
 */
export class Machine {
  readonly options: ResolvedMachineOptions;
  readonly container: Container;

  constructor(options: MachineOptions = {}, extraModules: readonly ContainerModule[] = []) {
    this.options = resolveMachineOptions(options);
    this.container = new Container();
    this.container.bind(MachineOptionsToken).toConstantValue(this.options);
    this.container.bind(PlatformOptions).toConstantValue(this.options.platform);
    this.container.bind(IommuOptions).toConstantValue(this.options.iommu);
    this.container.bind(HalOptions).toConstantValue(this.options.hal);
    this.container.load(traceModule, platformModule, iommuModule, halModule, ddiModule, ...extraModules);
  }

  get<T>(id: ServiceIdentifier<T>): T {
    return this.container.get<T>(id);
  }

  get memory(): PhysicalMemory {
    return this.get(PhysicalMemory);
  }

  get frames(): FrameAllocator {
    return this.get(FrameAllocator);
  }

  get scheduler(): Scheduler {
    return this.get(Scheduler);
  }

  get pci(): PciBus {
    return this.get(PciBus);
  }

  get iommu(): Iommu {
    return this.get(Iommu);
  }

  get events(): EventBus {
    return this.get(EventBus);
  }

  get counters(): Counters {
    return this.get(Counters);
  }

  /** Runs the virtual-time scheduler until nothing is pending. */
  runUntilIdle(): void {
    this.scheduler.runUntilIdle();
  }
}
