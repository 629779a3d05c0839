import type { MDL } from "../../../src/ddi/index.js";
import { PacketTestDriver } from "./packet-test-driver.js";

/** 0xE6/0x0C: asks for one map register fewer than its transfer spans, then maps all of it. */
export class ShortGrantDriver extends PacketTestDriver {
  readonly serviceName = "shortgrant";

  protected override registersFor(mdl: MDL): number {
    return super.registersFor(mdl) - 1;
  }
}
