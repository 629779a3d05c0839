import type { DEVICE_DESCRIPTION, MDL } from "../../../src/ddi/index.js";
import { DmaTestDriver } from "./dma-test-driver.js";

/** 0xE6/0x0C: a packet-based driver that asks for one map register fewer than its transfer spans. */
export class ShortGrantDriver extends DmaTestDriver {
  readonly serviceName = "shortgrant";
  protected override readonly style = "packet";

  protected override description(): DEVICE_DESCRIPTION {
    return { ...super.description(), ScatterGather: false, Dma64BitAddresses: false, Dma32BitAddresses: true };
  }

  protected override registersFor(mdl: MDL): number {
    return super.registersFor(mdl) - 1;
  }
}
