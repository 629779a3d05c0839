/**
 * One physical NIC shared by several VMs through SR-IOV (PCI-SIG Single Root I/O Virtualization):
 * a physical function (function 0, which the host keeps) and virtual functions (functions 1..n
 * of the same slot), each a PCI function of its own with its own requester id, so the IOMMU puts
 * each VF in its own domain and each can be assigned to a different guest. The VFs share the
 * card's port through its embedded bridge (VirtualEthernetBridge).
 *
 * Each VF is a full e1000-like queue interface (NicDevice) with its own MAC address. Real VFs
 * have a VF device id and need a VF driver; these keep the 82540EM id so that the unmodified
 * sample driver runs in each guest. The seed's other way to share a device, one function with
 * address-space ids (PASID), needs the IOMMU's scalable mode, which the model does not have.
 */
import { NicDevice } from "../devices/nic-device.js";
import { PciBus } from "../platform/pci-bus.js";
import { PciDevice } from "../platform/pci-device.js";
import { PlatformError } from "../platform/platform-error.js";
import { VirtualEthernetBridge } from "./virtual-ethernet-bridge.js";

/** Intel 82576, an SR-IOV capable gigabit controller: the PF's identity. */
export const SRIOV_PF_VENDOR_ID = 0x8086;
export const SRIOV_PF_DEVICE_ID = 0x10c9;
/** A slot has 8 functions: the PF and at most 7 VFs (no ARI in this bus model). */
export const MAX_VIRTUAL_FUNCTIONS = 7;
/** PF register 0: NumVFs (read only: VFs are enabled when the card is built). */
export const PF_NUM_VFS = 0x0;

export interface SriovNicOptions {
  /** Virtual functions, 1..7. */
  readonly virtualFunctions: number;
  /** The first VF's MAC address; VF n gets the last byte plus n - 1 (default 02:00:00:00:10:01). */
  readonly firstMac?: readonly number[];
  readonly name?: string;
}

/** The physical function: the card's management side, kept by the host. */
export class PhysicalFunction extends PciDevice {
  readonly #virtualFunctions: number;

  constructor(name: string, virtualFunctions: number) {
    super(
      { name, vendorId: SRIOV_PF_VENDOR_ID, deviceId: SRIOV_PF_DEVICE_ID, classCode: 0x020000 },
      { barSize: 4096 },
    );
    this.#virtualFunctions = virtualFunctions;
  }

  protected override registerValue(offset: number): number {
    return offset === PF_NUM_VFS ? this.#virtualFunctions : 0;
  }

  protected override onRegisterWrite(): void {}
}

export class SriovNic {
  readonly name: string;
  readonly physicalFunction: PhysicalFunction;
  readonly virtualFunctions: readonly NicDevice[];
  readonly bridge = new VirtualEthernetBridge();

  constructor(options: SriovNicOptions) {
    const count = options.virtualFunctions;
    if (!Number.isInteger(count) || count < 1 || count > MAX_VIRTUAL_FUNCTIONS) {
      throw new PlatformError(
        "out-of-range",
        `an SR-IOV NIC has 1..${MAX_VIRTUAL_FUNCTIONS} VFs, not ${String(count)}`,
      );
    }
    const first = options.firstMac ?? [0x02, 0x00, 0x00, 0x00, 0x10, 0x01];
    if (
      first.length !== 6 ||
      first.some((b) => !Number.isInteger(b) || b < 0 || b > 0xff) ||
      first[5]! + count > 0x100
    ) {
      throw new PlatformError(
        "out-of-range",
        `first MAC [${first.join(", ")}] leaves no room for ${count} VFs`,
      );
    }
    this.name = options.name ?? "SR-IOV NIC";
    this.physicalFunction = new PhysicalFunction(`${this.name} PF`, count);
    this.virtualFunctions = Array.from(
      { length: count },
      (_, i) =>
        new NicDevice({ name: `${this.name} VF${i + 1}`, mac: [...first.slice(0, 5), first[5]! + i] }),
    );
    for (const vf of this.virtualFunctions) this.bridge.connect(vf);
  }

  /** Plugs the PF at function 0 and VF n at function n of one slot; returns the VFs' requester ids. */
  plug(pci: PciBus, slot: { readonly bus?: number; readonly device?: number } = {}): number[] {
    const pf = pci.attach(this.physicalFunction, { ...slot, function: 0 });
    const device = (pf >> 3) & 0x1f;
    const bus = pf >> 8;
    return this.virtualFunctions.map((vf, i) => pci.attach(vf, { bus, device, function: i + 1 }));
  }
}
