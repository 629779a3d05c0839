import { DmaTestDriver } from "./dma-test-driver.js";

/** Scatter/gather done right by a 32-bit device: buffers above 4 GiB bounce without remapping. */
export class CorrectNarrowDriver extends DmaTestDriver {
  readonly serviceName = "correctnarrow";
  protected override readonly dma64 = false;
}
