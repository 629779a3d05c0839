import { DmaTestDriver } from "./dma-test-driver.js";

/** No bug at all: the verifier must stay silent about it in every mode. */
export class CorrectDriver extends DmaTestDriver {
  readonly serviceName = "correct";
}
