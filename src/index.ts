/**
 * dma-ddi-sim: the package's main entry. A Machine and its options for building simulations; the
 * layers' public classes for those who extend them. Drivers import `dma-ddi-sim/ddi` instead, and
 * tests the kit in `dma-ddi-sim/testing`.
 */
import "reflect-metadata";

export { IoPermission } from "./iommu/io-page-table.js";
export { Iommu } from "./iommu/iommu.js";
export { Machine } from "./machine/machine.js";
export {
  type MachineOptions,
  REMAPPING_MODES,
  type RemappingMode,
  resolveMachineOptions,
} from "./machine/machine-options.js";
export { FrameAllocator } from "./platform/frame-allocator.js";
export { PciBus } from "./platform/pci-bus.js";
export { PciDevice } from "./platform/pci-device.js";
export { PhysicalMemory } from "./platform/physical-memory.js";
export { PlatformError } from "./platform/platform-error.js";
export { Scheduler } from "./platform/scheduler.js";
export { Counters } from "./trace/counters.js";
export { EventBus } from "./trace/event-bus.js";
