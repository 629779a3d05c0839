/**
 * The outcome of one DMA access, as a value (QEMU's MemTxResult): device models must look at it,
 * nothing is thrown for a transaction the hardware itself would complete with an error.
 *
 * - "iommu-fault": the remapper refused the bus address (VT-d fault reason in `faultReason`).
 * - "unassigned": the (translated) physical address is not RAM, e.g. the MMIO hole; like a PCIe
 *   unsupported request, reads return all ones.
 * - "bus-master-disabled": the device's PCI command register has Bus Master Enable clear, so it
 *   may not initiate memory transactions at all (PCI Local Bus 6.2.2).
 */
export type DmaFaultKind = "iommu-fault" | "unassigned" | "bus-master-disabled";
export type DmaResultKind = "ok" | DmaFaultKind;

export type DmaResult =
  | { readonly ok: true }
  | {
      readonly ok: false;
      readonly kind: DmaFaultKind;
      /** The bus address at which the access stopped. */
      readonly address: number;
      /** VT-d fault reason for "iommu-fault", 0 otherwise. */
      readonly faultReason: number;
      /** Bytes moved before the failure. */
      readonly bytesDone: number;
    };

/** The one success value: a successful access allocates nothing. */
export const DMA_OK: DmaResult = Object.freeze({ ok: true });

export function dmaResultKind(result: DmaResult): DmaResultKind {
  return result.ok ? "ok" : result.kind;
}
