import { DmaTestDriver, type DmaTestExtension } from "./dma-test-driver.js";

/** dma-debug's stale data: reads the received bytes before PutScatterGatherList hands them over. */
export class StaleReadDriver extends DmaTestDriver {
  readonly serviceName = "staleread";
  protected override readonly dma64 = false;
  /** The first bytes the driver read, before Put. */
  seen: Uint8Array | undefined;

  protected override endScatterGather(extension: DmaTestExtension): void {
    const k = this.kernel;
    const mdl = extension.irp!.MdlAddress!;
    this.seen = k.ReadMemory(k.MmGetMdlVirtualAddress(mdl), 16);
    super.endScatterGather(extension);
  }
}
