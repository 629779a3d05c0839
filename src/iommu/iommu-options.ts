/** One DMA-remapping hardware unit (a VT-d DRHD) and the requester ids it covers. */
export interface IommuUnitOptions {
  readonly name: string;
  /** Requester ids (bus << 8 | dev << 3 | fn), or "rest": every requester no other unit lists. */
  readonly requesters: readonly number[] | "rest";
}

/** What the IOMMU layer needs from the machine's options, already resolved. */
export interface IommuOptions {
  /** GSTS.TES: false leaves all DMA untranslated (remapping mode "off"). */
  readonly translation: boolean;
  readonly units: readonly IommuUnitOptions[];
  /** IOTLB capacity per unit (entries). */
  readonly iotlbEntries: number;
  /** Fault recording registers per unit (CAP.NFR + 1). */
  readonly faultRecords: number;
}
