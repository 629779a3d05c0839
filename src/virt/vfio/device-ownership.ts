/**
 * Who drives a PCI device's DMA: a kernel driver (through the HAL, which writes the device's
 * context entry when its driver opens a DMA adapter), one of the user-space I/O drivers
 * (vfio-pci, uio_pci_generic), or nobody. Linux keeps this as the group's DMA owner
 * (iommu_device_claim_dma_owner): a device whose DMA the kernel already drives cannot be handed
 * to user space, and that is EBUSY.
 *
 * The kernel's claim is read from the IOMMU: a context entry that no user-space driver wrote. With
 * remapping off there are no context entries to read, so a kernel driver's claim is not seen.
 */
import { inject, injectable } from "inversify";
import { Iommu } from "../../iommu/iommu.js";
import { formatRequesterId } from "../../platform/pci-address.js";
import { PciBus } from "../../platform/pci-bus.js";
import { VfioError } from "./vfio-error.js";

export type UserDriver = "vfio-pci" | "uio_pci_generic";

@injectable()
export class DeviceOwnership {
  readonly #pci: PciBus;
  readonly #iommu: Iommu;
  readonly #drivers = new Map<number, UserDriver>();

  constructor(@inject(PciBus) pci: PciBus, @inject(Iommu) iommu: Iommu) {
    this.#pci = pci;
    this.#iommu = iommu;
  }

  /** The user-space driver `rid` is bound to, if any. */
  driverOf(rid: number): UserDriver | undefined {
    return this.#drivers.get(rid);
  }

  /** True when a kernel driver drives the device's DMA (its context entry is the HAL's). */
  kernelOwned(rid: number): boolean {
    return !this.#drivers.has(rid) && this.#iommu.attachment(rid) !== undefined;
  }

  /** Binds `rid` to `driver`: ENODEV if no such device, EBUSY if anyone else drives it. */
  claim(rid: number, driver: UserDriver, operation: string): void {
    if (!Number.isInteger(rid) || rid < 0 || rid > 0xffff || !this.#pci.has(rid)) {
      throw new VfioError("ENODEV", operation, `no PCI device at requester id ${String(rid)}`);
    }
    const bound = this.#drivers.get(rid);
    if (bound !== undefined) {
      throw new VfioError("EBUSY", operation, `${formatRequesterId(rid)} is already bound to ${bound}`);
    }
    if (this.kernelOwned(rid)) {
      throw new VfioError(
        "EBUSY",
        operation,
        `${formatRequesterId(rid)} is driven by a kernel driver (its DMA has an owner)`,
      );
    }
    this.#drivers.set(rid, driver);
  }

  release(rid: number, driver: UserDriver): void {
    if (this.#drivers.get(rid) === driver) this.#drivers.delete(rid);
  }
}
