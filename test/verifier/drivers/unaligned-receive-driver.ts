import { DmaTestDriver } from "./dma-test-driver.js";

/**
 * 0xE6/0x1F (p2 = 4): receives into whatever buffer its caller passed, even one that does not start
 * on a cache line; on a non-coherent machine the line it shares with its neighbour is at risk.
 * (The driver is the correct one: the bug is accepting the buffer.)
 */
export class UnalignedReceiveDriver extends DmaTestDriver {
  readonly serviceName = "unaligned";
}
