import type { DEVICE_DESCRIPTION } from "../../../src/ddi/index.js";
import { DmaTestDriver } from "./dma-test-driver.js";

/** 0xE6/0x25: asks IoGetDmaAdapter for DEVICE_DESCRIPTION version 4, which does not exist. */
export class UnknownVersionDriver extends DmaTestDriver {
  readonly serviceName = "v4";

  protected override description(): DEVICE_DESCRIPTION {
    return { ...super.description(), Version: 4 };
  }
}
