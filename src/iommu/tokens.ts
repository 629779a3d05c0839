/** Injection tokens of the IOMMU layer. */
export const IommuOptions = Symbol.for("iommu.IommuOptions");
