/**
 * IoGetDmaAdapter under the verifier. The DDI's IoGetDmaAdapter calls Hal.getDmaAdapter, which
 * is outside DMA_OPERATIONS, so the verifier module decorates the Hal instance when the container
 * activates it (an inversify activation handler returning this proxy): an unknown
 * DEVICE_DESCRIPTION version is 0xE6/0x25 (p2 the version asked, p3 the highest known, 3), and
 * every adapter handed out gets its books, with the call site, before the driver sees it.
 */
import { AdapterObject } from "../hal/adapter-object.js";
import type { Hal } from "../hal/hal.js";
import { type DEVICE_DESCRIPTION, DEVICE_DESCRIPTION_VERSION3 } from "../hal/wdm/device-description.js";
import type { DEVICE_OBJECT } from "../hal/wdm/device-object.js";
import type { IoGetDmaAdapterResult } from "../hal/wdm/dma-operations.js";
import type { DmaVerifier } from "./dma-verifier.js";
import { VerifierCode } from "./violation-codes.js";

export function verifiedHal(hal: Hal, verifier: DmaVerifier): Hal {
  const getDmaAdapter = (pdo: DEVICE_OBJECT, description: DEVICE_DESCRIPTION): IoGetDmaAdapterResult => {
    const mode = verifier.modeForDevice(pdo);
    if (mode === "off") return hal.getDmaAdapter(pdo, description);
    const version: unknown =
      typeof description === "object" && description !== null ? description.Version : undefined;
    if (
      !Number.isInteger(version) ||
      (version as number) < 0 ||
      (version as number) > DEVICE_DESCRIPTION_VERSION3
    ) {
      verifier.violate(
        undefined,
        {
          member: "IoGetDmaAdapter",
          code: VerifierCode.unknownDescriptionVersion,
          p2: Number.isSafeInteger(version) && (version as number) >= 0 ? (version as number) : 0,
          p3: DEVICE_DESCRIPTION_VERSION3,
          p4: 0,
          explanation: `IoGetDmaAdapter with DEVICE_DESCRIPTION.Version ${String(version)}: only versions 0 to ${DEVICE_DESCRIPTION_VERSION3} exist (IoGetDmaAdapter returns NULL)`,
          driver: verifier.driverOf(pdo),
        },
        mode,
      );
    }
    const stack = verifier.stack();
    const result = hal.getDmaAdapter(pdo, description);
    if (result.Adapter instanceof AdapterObject) verifier.open(result.Adapter, pdo, stack);
    return result;
  };
  return new Proxy(hal, {
    get(target, property) {
      if (property === "getDmaAdapter") return getDmaAdapter;
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}
