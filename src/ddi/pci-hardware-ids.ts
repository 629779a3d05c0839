/**
 * The hardware and compatible ids pci.sys reports for a PCI function, most specific first (WDK
 * "Identifiers for PCI Devices"): SUBSYS is the subsystem id then the subsystem vendor id, CC the
 * class code; hex digits are upper case. Drivers match on any of them, case-insensitively.
 */
import type { PciIdentity } from "../platform/pci-config-space.js";

export interface PciDeviceIds {
  readonly hardwareIds: readonly string[];
  readonly compatibleIds: readonly string[];
}

export function pciDeviceIds(identity: PciIdentity): PciDeviceIds {
  const ven = `VEN_${hex(identity.vendorId, 4)}`;
  const dev = `${ven}&DEV_${hex(identity.deviceId, 4)}`;
  const subsys = `SUBSYS_${hex(identity.subsystemId ?? 0, 4)}${hex(identity.subsystemVendorId ?? 0, 4)}`;
  const rev = `REV_${hex(identity.revisionId ?? 0, 2)}`;
  const cc = `CC_${hex(identity.classCode, 6)}`;
  const cc4 = `CC_${hex(Math.floor(identity.classCode / 0x100), 4)}`;
  return {
    hardwareIds: [
      `PCI\\${dev}&${subsys}&${rev}`,
      `PCI\\${dev}&${subsys}`,
      `PCI\\${dev}&${cc}`,
      `PCI\\${dev}&${cc4}`,
    ],
    compatibleIds: [
      `PCI\\${dev}&${rev}`,
      `PCI\\${dev}`,
      `PCI\\${ven}&${cc}`,
      `PCI\\${ven}&${cc4}`,
      `PCI\\${ven}`,
      `PCI\\${cc}`,
      `PCI\\${cc4}`,
    ],
  };
}

function hex(value: number, digits: number): string {
  return value.toString(16).toUpperCase().padStart(digits, "0");
}
