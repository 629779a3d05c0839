import type { DEVICE_DESCRIPTION } from "../../../src/ddi/index.js";
import { DmaTestDriver } from "./dma-test-driver.js";

/**
 * The packet-based flavour of the test driver (reference section 3): a 32-bit bus master without
 * scatter/gather, one AllocateAdapterChannel + MapTransfer per transfer, FlushAdapterBuffers and
 * FreeMapRegisters when it is done.
 */
export abstract class PacketTestDriver extends DmaTestDriver {
  protected override readonly style = "packet";
  protected override readonly dma64 = false;

  protected override description(): DEVICE_DESCRIPTION {
    return { ...super.description(), ScatterGather: false };
  }
}
