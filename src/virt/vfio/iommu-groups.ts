/**
 * IOMMU groups: the smallest sets of devices the platform can isolate from each other, and so
 * the unit VFIO hands to user space (iommu-anchors §7). The simulated platform has no ACS on
 * multi-function devices, so every function of one bus:device slot is in one group, as Linux
 * groups a multi-function card without ACS; separate slots are separate groups. A group's number
 * is its slot, (bus << 5) | device: /dev/vfio/<number>, stable whatever else is plugged in.
 */
import { inject, injectable } from "inversify";
import { checkRequesterId } from "../../platform/pci-address.js";
import { PciBus } from "../../platform/pci-bus.js";

@injectable()
export class IommuGroups {
  readonly #pci: PciBus;

  constructor(@inject(PciBus) pci: PciBus) {
    this.#pci = pci;
  }

  /** The group number of requester `rid` (attached or not). */
  groupOf(rid: number): number {
    return checkRequesterId(rid) >> 3;
  }

  /** Requester ids of the attached devices in group `group`, ascending. */
  devicesIn(group: number): number[] {
    return this.#pci
      .devices()
      .map((device) => device.requesterId)
      .filter((rid) => rid >> 3 === group);
  }
}
