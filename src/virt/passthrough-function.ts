/**
 * What a guest sees of a device assigned to it: a PCI function on the guest's own bus, with the
 * physical device's identity (so the guest's PnP manager binds the same driver), a BAR of the
 * same size at a guest-physical address, and a guest interrupt line. QEMU's vfio-pci plays this
 * part: the device itself stays on the host's bus, with its host requester id, host DmaPort and
 * host interrupt line; only register accesses and the command register pass through.
 *
 * - Register reads and writes go to the physical device unchanged (a BAR mapped into the guest).
 * - The guest's Bus Master Enable and Interrupt Disable bits are copied to the physical device at
 *   each register access: the guest's PnP manager sets them in this function's configuration
 *   space, which has no write hook, and a driver touches its registers before any DMA it starts.
 * - This function never does DMA: the physical device does, through the host IOMMU. Its
 *   interrupts are routed from the physical device's host line (InterruptRouter).
 */
import { PciCommand } from "../platform/pci-config-space.js";
import { PciDevice } from "../platform/pci-device.js";

export class PassthroughFunction extends PciDevice {
  /** The device on the host's bus. */
  readonly physical: PciDevice;

  constructor(physical: PciDevice) {
    super(
      { ...physical.config.identity, name: `${physical.name} (assigned)` },
      { barSize: physical.barSize, latencyNs: physical.latencyNs, bandwidth: physical.bandwidth },
    );
    this.physical = physical;
  }

  /** Copies the guest's command register bits that govern DMA and interrupts to the device. */
  syncCommand(): void {
    const host = this.physical.config;
    host.setCommandBit(PciCommand.busMaster, this.config.busMasterEnabled);
    host.setCommandBit(PciCommand.interruptDisable, this.config.interruptDisabled);
  }

  protected override registerValue(offset: number): number {
    this.syncCommand();
    return this.physical.readRegister(offset);
  }

  protected override onRegisterWrite(offset: number, value: number): void {
    this.syncCommand();
    this.physical.writeRegister(offset, value);
  }
}
