/** What the VFIO objects (container, group, device) share: the machine's parts and the policy. */
import type { Iommu } from "../../iommu/iommu.js";
import type { PciBus } from "../../platform/pci-bus.js";
import type { Scheduler } from "../../platform/scheduler.js";
import type { Counters } from "../../trace/counters.js";
import type { EventBus } from "../../trace/event-bus.js";
import type { DeviceOwnership } from "./device-ownership.js";
import type { IommuGroups } from "./iommu-groups.js";

export interface VfioContext {
  readonly iommu: Iommu;
  readonly pci: PciBus;
  readonly scheduler: Scheduler;
  readonly counters: Counters;
  readonly events: EventBus;
  readonly groups: IommuGroups;
  readonly ownership: DeviceOwnership;
  /** type1's dma_entry_limit. */
  readonly dmaEntryLimit: number;
}
