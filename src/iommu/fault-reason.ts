/**
 * VT-d fault reason codes (FR field of a fault recording register), verbatim from the table in
 * iommu-anchors §1.5 (Linux dma_remap_fault_reasons, QEMU VTDFaultReason). A Windows-style layer
 * maps them to its own status codes.
 */
export const FaultReason = {
  RootEntryNotPresent: 0x1,
  ContextEntryNotPresent: 0x2,
  InvalidContextEntry: 0x3,
  BeyondMgaw: 0x4,
  WriteNotPermitted: 0x5,
  ReadNotPermitted: 0x6,
  InvalidNextLevelTable: 0x7,
  RootTableInvalid: 0x8,
  ContextTableInvalid: 0x9,
  RootEntryReserved: 0xa,
  ContextEntryReserved: 0xb,
  PagingEntryReserved: 0xc,
  TranslationTypeBlocked: 0xd,
} as const;
export type FaultReason = (typeof FaultReason)[keyof typeof FaultReason];

/** Linux's text for each reason (drivers/iommu/intel/dmar.c), as `dmar_fault` prints it. */
const DESCRIPTIONS: readonly string[] = [
  "Software",
  "Present bit in root entry is clear",
  "Present bit in context entry is clear",
  "Invalid context entry",
  "Access beyond MGAW",
  "PTE Write access is not set",
  "PTE Read access is not set",
  "Next page table ptr is invalid",
  "Root table address invalid",
  "Context table ptr is invalid",
  "non-zero reserved fields in RTP",
  "non-zero reserved fields in CTP",
  "non-zero reserved fields in PTE",
  "PCE for translation request specifies blocking",
];

export function describeFaultReason(reason: number): string {
  return DESCRIPTIONS[reason] ?? "Unknown";
}

/**
 * "Qualified" faults, which a context entry with FPD=1 suppresses (QEMU vtd_qualified_faults).
 * Root-table and context-table access faults and reserved bits in root or context entries are
 * always reported: the context entry that would carry FPD cannot be trusted then.
 */
export function isQualifiedFault(reason: number): boolean {
  switch (reason) {
    case FaultReason.RootEntryNotPresent:
    case FaultReason.ContextEntryNotPresent:
    case FaultReason.InvalidContextEntry:
    case FaultReason.BeyondMgaw:
    case FaultReason.WriteNotPermitted:
    case FaultReason.ReadNotPermitted:
    case FaultReason.InvalidNextLevelTable:
    case FaultReason.PagingEntryReserved:
    case FaultReason.TranslationTypeBlocked:
      return true;
    default:
      return false;
  }
}
