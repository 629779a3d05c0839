/**
 * uio_pci_generic: user-space access to a device's registers and interrupt, and nothing about
 * its DMA. The device stays in the domain the kernel gave it at boot (its default domain), so
 * what a DMA to a physical address does depends on the machine's IOMMU mode, as the seed's user
 * found (seed 003):
 * - remapping off: no translation; a physical address reaches RAM;
 * - passthrough (iommu=pt): an identity domain; a physical address reaches RAM;
 * - strict / lazy: a DMA domain that maps only what the kernel's DMA API mapped for the device,
 *   which is nothing of the process's memory: the DMA faults, and the fault record names the
 *   device, the address and the reason.
 * VFIO (vfio.ts) is the way out: MAP_DMA puts exactly the process's buffers in the device's domain.
 */
import { inject, injectable } from "inversify";
import { Iommu } from "../../iommu/iommu.js";
import type { IommuDomain } from "../../iommu/iommu-domain.js";
import type { ResolvedMachineOptions } from "../../machine/machine-options.js";
import { MachineOptionsToken } from "../../machine/tokens.js";
import { Irql } from "../../platform/irql.js";
import { PciBus } from "../../platform/pci-bus.js";
import { PlatformError } from "../../platform/platform-error.js";
import { Scheduler } from "../../platform/scheduler.js";
import { DeviceOwnership } from "./device-ownership.js";
import { VfioError } from "./vfio-error.js";

/** The kind of domain the kernel left the device in. */
export type DefaultDomain = "none" | "identity" | "dma";

@injectable()
export class UioPciGeneric {
  readonly #pci: PciBus;
  readonly #iommu: Iommu;
  readonly #ownership: DeviceOwnership;
  readonly #scheduler: Scheduler;
  readonly #options: ResolvedMachineOptions;

  constructor(
    @inject(PciBus) pci: PciBus,
    @inject(Iommu) iommu: Iommu,
    @inject(DeviceOwnership) ownership: DeviceOwnership,
    @inject(Scheduler) scheduler: Scheduler,
    @inject(MachineOptionsToken) options: ResolvedMachineOptions,
  ) {
    this.#pci = pci;
    this.#iommu = iommu;
    this.#ownership = ownership;
    this.#scheduler = scheduler;
    this.#options = options;
  }

  /** Binds `rid` to uio_pci_generic (/dev/uioN): ENODEV for no device, EBUSY if someone drives it. */
  bind(rid: number): UioDevice {
    this.#ownership.claim(rid, "uio_pci_generic", "uio_pci_generic bind");
    let domain: IommuDomain | undefined;
    let kind: DefaultDomain = "none";
    if (this.#iommu.translationEnabled) {
      if (this.#options.remapping === "passthrough") {
        this.#iommu.attachPassthrough(rid);
        kind = "identity";
      } else {
        domain = this.#iommu.createDomain();
        this.#iommu.attach(rid, domain);
        kind = "dma";
      }
    }
    return new UioDevice(rid, kind, this.#pci, this.#scheduler, () => {
      if (kind !== "none" && this.#iommu.attachment(rid) !== undefined) this.#iommu.detach(rid);
      if (domain !== undefined) this.#iommu.destroyDomain(domain);
      this.#ownership.release(rid, "uio_pci_generic");
    });
  }
}

export class UioDevice {
  readonly requesterId: number;
  readonly defaultDomain: DefaultDomain;
  readonly #pci: PciBus;
  readonly #scheduler: Scheduler;
  readonly #release: () => void;
  #disconnect: (() => void) | undefined;
  #interrupts = 0;
  #bound = true;

  constructor(
    requesterId: number,
    defaultDomain: DefaultDomain,
    pci: PciBus,
    scheduler: Scheduler,
    release: () => void,
  ) {
    this.requesterId = requesterId;
    this.defaultDomain = defaultDomain;
    this.#pci = pci;
    this.#scheduler = scheduler;
    this.#release = release;
  }

  /** Interrupts seen (what read(2) on /dev/uioN returns). */
  get interrupts(): number {
    return this.#interrupts;
  }

  /** A load from the mmap of BAR 0. */
  read32(offset: number): number {
    return this.#access(() => this.#pci.mmioRead32(this.#barAddress(offset)));
  }

  /** A store to the mmap of BAR 0. */
  write32(offset: number, value: number): void {
    this.#access(() => this.#pci.mmioWrite32(this.#barAddress(offset), value));
  }

  /** /sys/bus/pci/devices/.../config. */
  configRead32(offset: number): number {
    return this.#access(() => this.#pci.configRead32(this.requesterId, offset));
  }

  configWrite32(offset: number, value: number): void {
    this.#access(() => this.#pci.configWrite32(this.requesterId, offset, value));
  }

  /** Calls `handler` with the running count on each interrupt (undefined stops). */
  onInterrupt(handler: ((count: number) => void) | undefined): void {
    this.#check("uio interrupt");
    this.#disconnect?.();
    this.#disconnect = undefined;
    if (handler === undefined) return;
    this.#disconnect = this.#scheduler.connectInterrupt(
      this.#pci.device(this.requesterId).interruptLine,
      () => {
        this.#interrupts++;
        handler(this.#interrupts);
        return true;
      },
      Irql.device,
    );
  }

  /** Unbinds: the interrupt is released and the device leaves its default domain. */
  unbind(): void {
    this.#check("uio_pci_generic unbind");
    this.#disconnect?.();
    this.#disconnect = undefined;
    this.#bound = false;
    this.#release();
  }

  #barAddress(offset: number): number {
    const device = this.#pci.device(this.requesterId);
    if (!Number.isInteger(offset) || offset < 0 || offset % 4 !== 0 || offset + 4 > device.barSize) {
      throw new VfioError(
        "EINVAL",
        "uio mmap access",
        `offset ${String(offset)} is not a dword inside BAR 0`,
      );
    }
    return device.barAddress + offset;
  }

  #access<T>(access: () => T): T {
    this.#check("uio access");
    try {
      return access();
    } catch (error) {
      if (error instanceof PlatformError) throw new VfioError("EINVAL", "uio access", error.message);
      throw error;
    }
  }

  #check(operation: string): void {
    if (!this.#bound) throw new VfioError("EBADF", operation, `device ${this.requesterId} was unbound`);
  }
}
