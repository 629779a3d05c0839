/**
 * KSPIN_LOCK: caller-allocated in C; here `new KSPIN_LOCK()` then KeInitializeSpinLock. On the
 * simulated uniprocessor, acquiring raises the IRQL to DISPATCH_LEVEL (which is what keeps DPCs
 * out) and a second acquire of a held lock would spin forever: it is a bug check instead.
 */
export class KSPIN_LOCK {
  /** True between acquire and release. */
  held = false;
}
