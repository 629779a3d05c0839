/** Injection tokens of VFIO. */
export const VfioOptions = Symbol.for("virt.VfioOptions");
