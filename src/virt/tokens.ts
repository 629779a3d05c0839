/** Injection tokens of the virtualization layer. */
/** Host side: the hypervisor's cost model and policies (HypervisorOptions). */
export const HypervisorOptions = Symbol.for("virt.HypervisorOptions");
/** Guest side: the hypercall interface of the guest's hypervisor (Hypercalls). */
export const Hypercalls = Symbol.for("virt.Hypercalls");
/** Guest side: how the guest's emulated IOMMU issues its invalidations (EmulatedIommuOptions). */
export const EmulatedIommuOptions = Symbol.for("virt.EmulatedIommuOptions");
/** Guest side: the paravirtual IOMMU's reserved region (ParavirtualOptions). */
export const ParavirtualOptions = Symbol.for("virt.ParavirtualOptions");
