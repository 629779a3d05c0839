import { PacketTestDriver } from "./packet-test-driver.js";

/** The packet-based sequence done right (AllocateAdapterChannel, MapTransfer, FlushAdapterBuffers, FreeMapRegisters). */
export class CorrectPacketDriver extends PacketTestDriver {
  readonly serviceName = "correctpacket";
}
