import { DmaTestDriver } from "./dma-test-driver.js";

/** Scatter/gather done right by a 64-bit device: the verifier must stay silent about it. */
export class CorrectDriver extends DmaTestDriver {
  readonly serviceName = "correct";
}
