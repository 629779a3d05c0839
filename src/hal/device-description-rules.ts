/**
 * What IoGetDmaAdapter reads from a DEVICE_DESCRIPTION: the field rules of the WDK page
 * (reference section 2), applied the Windows way rather than ReactOS's (which gives a 32-bit
 * scatter/gather PCI device no map registers at all, so it never bounces above 4 GiB).
 */
import { bytesToPages } from "../platform/page.js";
import type { AdapterCapabilities } from "./adapter-object.js";
import {
  type DEVICE_DESCRIPTION,
  DEVICE_DESCRIPTION_VERSION3,
  InterfaceTypeUndefined,
  Internal,
  PCIBus,
  PNPBus,
} from "./wdm/device-description.js";

/** MAXULONG + 1: MaximumLength is a ULONG. */
const ULONG_LIMIT = 2 ** 32;

/** The adapter's capabilities before the platform caps NumberOfMapRegisters. */
export type DescribedCapabilities = Omit<AdapterCapabilities, "numberOfMapRegisters"> & {
  /** The bus the device sits on, after InterfaceTypeUndefined / PNPBus were resolved. */
  readonly interfaceType: number;
};

/**
 * Applies the DEVICE_DESCRIPTION rules, or returns undefined where IoGetDmaAdapter returns NULL:
 * a version other than 0-3, a malformed field (Reserved1 set, a MaximumLength that is not a
 * ULONG, a VERSION3 DmaAddressWidth outside 1..64), or a subordinate (system DMA) device, since
 * the simulated machine has no system DMA controller. `pdoIsPci` stands for the PDO's bus type,
 * which InterfaceTypeUndefined and PNPBus defer to.
 */
export function describeAdapter(
  description: DEVICE_DESCRIPTION,
  pdoIsPci: boolean,
): DescribedCapabilities | undefined {
  if (typeof description !== "object" || description === null) return undefined;
  const version = description.Version;
  if (!Number.isInteger(version) || version < 0 || version > DEVICE_DESCRIPTION_VERSION3) return undefined;
  if (description.Reserved1) return undefined;
  if (!description.Master) return undefined;
  const maximumLength = description.MaximumLength;
  if (!Number.isInteger(maximumLength) || maximumLength < 0 || maximumLength >= ULONG_LIMIT) return undefined;
  let interfaceType = description.InterfaceType;
  if (!Number.isInteger(interfaceType)) return undefined;
  if (interfaceType === InterfaceTypeUndefined || interfaceType === PNPBus)
    interfaceType = pdoIsPci ? PCIBus : Internal;
  const scatterGather = Boolean(description.ScatterGather);
  let addressBits: number;
  if (version === DEVICE_DESCRIPTION_VERSION3) {
    // VERSION3: Dma32BitAddresses / Dma64BitAddresses are ignored; the width is given in bits.
    addressBits = description.DmaAddressWidth;
    if (!Number.isInteger(addressBits) || addressBits < 1 || addressBits > 64) return undefined;
  } else if (description.Dma64BitAddresses) {
    addressBits = 64;
  } else if (description.Dma32BitAddresses || (scatterGather && interfaceType === PCIBus)) {
    // A scatter/gather PCI master is assumed 32-bit capable whatever Dma32BitAddresses says.
    addressBits = 32;
  } else {
    addressBits = 24;
  }
  return {
    tableVersion: version <= 1 ? 1 : (version as 2 | 3),
    master: true,
    scatterGather,
    addressBits,
    addressLimit: addressLimitOf(addressBits),
    maximumLength,
    interfaceType,
  };
}

/** Highest address a device of `bits` address lines drives; every JS-representable one from 53 bits on. */
export function addressLimitOf(bits: number): number {
  return bits >= 53 ? Number.MAX_SAFE_INTEGER : 2 ** bits - 1;
}

/**
 * What the HAL tries to return as NumberOfMapRegisters: the pages MaximumLength bytes can span,
 * BYTES_TO_PAGES(MaximumLength) + 1, the +1 covering a start that is not page aligned.
 */
export function mapRegistersWanted(maximumLength: number): number {
  return bytesToPages(maximumLength) + 1;
}
