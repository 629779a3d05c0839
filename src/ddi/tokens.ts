/** Injection tokens of the DDI layer. Concrete classes (Kernel, IoManager) are their own tokens. */
export const ContributionProvider = Symbol.for("ddi.ContributionProvider");
