/**
 * VFIO, the kernel side of user-space device drivers (Linux drivers/vfio, iommu-anchors §8):
 * binding devices to vfio-pci, the /dev/vfio/vfio container and the /dev/vfio/<group> nodes.
 * A process that wants its device to DMA into its own memory, safely with remapping on, does
 * what the VFIO documentation's example does:
 *
 *   vfio.bind(rid);                                   // echo ... > vfio-pci/bind
 *   const container = vfio.openContainer(process);   // open("/dev/vfio/vfio")
 *   const group = vfio.openGroup(vfio.groupOf(rid));  // open("/dev/vfio/N")
 *   group.setContainer(container);
 *   container.setIommu(VFIO_TYPE1v2_IOMMU);
 *   container.mapDma({ vaddr, iova, size, flags: READ | WRITE });
 *   const device = group.getDevice("0000:00:03.0");   // registers, config, interrupts
 *
 * Without DMA remapping there are no IOMMU groups: binding fails with EINVAL, unless the machine
 * enables the unsafe noiommu mode, whose groups have no MAP_DMA at all.
 */
import { inject, injectable } from "inversify";
import { Iommu } from "../../iommu/iommu.js";
import { formatRequesterId } from "../../platform/pci-address.js";
import { PciBus } from "../../platform/pci-bus.js";
import { PlatformError } from "../../platform/platform-error.js";
import { ProcessAddressSpace } from "../../platform/process-address-space.js";
import { Scheduler } from "../../platform/scheduler.js";
import { Counters } from "../../trace/counters.js";
import { EventBus } from "../../trace/event-bus.js";
import { DeviceOwnership } from "./device-ownership.js";
import { IommuGroups } from "./iommu-groups.js";
import { VfioOptions as VfioOptionsToken } from "./tokens.js";
import { DEFAULT_DMA_ENTRY_LIMIT } from "./vfio-constants.js";
import { VfioContainer } from "./vfio-container.js";
import type { VfioContext } from "./vfio-context.js";
import { VfioError } from "./vfio-error.js";
import { VfioGroup } from "./vfio-group.js";

export interface VfioOptions {
  /** enable_unsafe_noiommu_mode: without remapping, bind devices anyway, with no protection. */
  readonly enableUnsafeNoiommuMode?: boolean;
  /** type1's dma_entry_limit: mappings per container (default 65535). */
  readonly dmaEntryLimit?: number;
}

@injectable()
export class Vfio {
  readonly #context: VfioContext;
  readonly #noiommuAllowed: boolean;
  readonly #openGroups = new Map<number, VfioGroup>();
  #nextContainer = 3;

  constructor(
    @inject(Iommu) iommu: Iommu,
    @inject(PciBus) pci: PciBus,
    @inject(Scheduler) scheduler: Scheduler,
    @inject(Counters) counters: Counters,
    @inject(EventBus) events: EventBus,
    @inject(IommuGroups) groups: IommuGroups,
    @inject(DeviceOwnership) ownership: DeviceOwnership,
    @inject(VfioOptionsToken) options: VfioOptions,
  ) {
    const dmaEntryLimit = options.dmaEntryLimit ?? DEFAULT_DMA_ENTRY_LIMIT;
    if (!Number.isInteger(dmaEntryLimit) || dmaEntryLimit < 1 || dmaEntryLimit > 0xffff) {
      throw new PlatformError(
        "out-of-range",
        `dmaEntryLimit ${String(dmaEntryLimit)} is not an integer in [1, 65535]`,
      );
    }
    this.#noiommuAllowed = options.enableUnsafeNoiommuMode ?? false;
    this.#context = { iommu, pci, scheduler, counters, events, groups, ownership, dmaEntryLimit };
  }

  /** True when groups are noiommu groups: remapping is off and the unsafe mode is enabled. */
  get noiommu(): boolean {
    return !this.#context.iommu.translationEnabled && this.#noiommuAllowed;
  }

  /** The IOMMU group number of requester `rid` (/sys/bus/pci/devices/.../iommu_group). */
  groupOf(rid: number): number {
    return this.#context.groups.groupOf(rid);
  }

  /**
   * Binds a device to vfio-pci. EINVAL without DMA remapping (no IOMMU group) unless noiommu is
   * enabled; ENODEV for no device; EBUSY when another driver drives it.
   */
  bind(rid: number): void {
    const operation = "vfio-pci bind";
    if (!this.#context.iommu.translationEnabled && !this.#noiommuAllowed) {
      throw new VfioError(
        "EINVAL",
        operation,
        "the device has no IOMMU group (DMA remapping is off; enable_unsafe_noiommu_mode is not set)",
      );
    }
    this.#context.ownership.claim(rid, "vfio-pci", operation);
  }

  /** Unbinds a device from vfio-pci; EBUSY while its group is open. */
  unbind(rid: number): void {
    const operation = "vfio-pci unbind";
    if (this.#context.ownership.driverOf(rid) !== "vfio-pci") {
      throw new VfioError("ENODEV", operation, `${String(rid)} is not bound to vfio-pci`);
    }
    if (this.#openGroups.has(this.groupOf(rid))) {
      throw new VfioError("EBUSY", operation, `the group of ${formatRequesterId(rid)} is open`);
    }
    this.#context.ownership.release(rid, "vfio-pci");
  }

  /** open("/dev/vfio/vfio") on behalf of `process`, whose memory the container will map. */
  openContainer(process: ProcessAddressSpace): VfioContainer {
    if (!(process instanceof ProcessAddressSpace) || process.destroyed) {
      throw new VfioError("EBADF", "open /dev/vfio/vfio", "not a live process");
    }
    return new VfioContainer(this.#nextContainer++, process, this.#context);
  }

  /**
   * open("/dev/vfio/<group>"): ENOENT when no device of that group is bound to vfio-pci (the
   * node does not exist), EBUSY when the group is open already.
   */
  openGroup(group: number): VfioGroup {
    const operation = `open /dev/vfio/${String(group)}`;
    const devices = Number.isInteger(group) && group >= 0 ? this.#context.groups.devicesIn(group) : [];
    if (!devices.some((rid) => this.#context.ownership.driverOf(rid) === "vfio-pci")) {
      throw new VfioError("ENOENT", operation, "no such VFIO group (bind a device of it to vfio-pci first)");
    }
    if (this.#openGroups.has(group)) throw new VfioError("EBUSY", operation, "the group is open already");
    const opened = new VfioGroup(group, this.noiommu, this.#context, (closed) =>
      this.#openGroups.delete(closed.number),
    );
    this.#openGroups.set(group, opened);
    return opened;
  }
}
