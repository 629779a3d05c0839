/**
 * The verifier's `!dma`: per adapter, the counters the debugger extension prints (map registers,
 * scatter/gather lists, common buffers and adapter channels allocated and freed, bytes mapped
 * since the last flush; reference section 6) and what is outstanding. DmaVerifier.report() gives
 * the data; formatDmaReport lays it out as text for people.
 */
import type { AllocationSite } from "./verifier-events.js";
import type { VerifierMode } from "./verifier-options.js";

export interface AllocatedFreed {
  readonly allocated: number;
  readonly freed: number;
}

export interface AdapterDmaReport {
  readonly adapter: number;
  readonly requesterId: number;
  readonly driver: string;
  readonly mode: VerifierMode;
  readonly released: boolean;
  /** NumberOfMapRegisters IoGetDmaAdapter returned. */
  readonly maximumMapRegisters: number;
  readonly mapRegisters: AllocatedFreed;
  readonly scatterGatherLists: AllocatedFreed;
  readonly commonBuffers: AllocatedFreed;
  readonly adapterChannels: AllocatedFreed;
  readonly bytesMappedSinceFlush: number;
  readonly outstanding: readonly AllocationSite[];
}

export function formatDmaReport(reports: readonly AdapterDmaReport[]): string {
  if (reports.length === 0) return "No verified DMA adapters.\n";
  const lines: string[] = [];
  for (const report of reports) {
    const rid = report.requesterId < 0 ? "none" : `0x${report.requesterId.toString(16).padStart(4, "0")}`;
    lines.push(
      `Adapter ${report.adapter}  driver ${report.driver === "" ? "?" : report.driver}  requester ${rid}  (${report.mode}${report.released ? ", released" : ""})`,
      `  Map registers:        ${pair(report.mapRegisters)}  (at most ${report.maximumMapRegisters} per request)`,
      `  Scatter/gather lists: ${pair(report.scatterGatherLists)}`,
      `  Common buffers:       ${pair(report.commonBuffers)}`,
      `  Adapter channels:     ${pair(report.adapterChannels)}`,
      `  Bytes mapped since last flush: ${report.bytesMappedSinceFlush}`,
    );
    for (const site of report.outstanding) lines.push(`  outstanding ${site.kind}: ${site.detail}`);
  }
  return `${lines.join("\n")}\n`;
}

function pair(counts: AllocatedFreed): string {
  return `allocated ${String(counts.allocated).padStart(6)}  freed ${String(counts.freed).padStart(6)}`;
}
