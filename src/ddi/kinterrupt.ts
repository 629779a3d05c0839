/**
 * KINTERRUPT: the interrupt object IoConnectInterrupt returns. Opaque to drivers, who only pass
 * it back to IoDisconnectInterrupt and KeSynchronizeExecution; its ISR receives it first.
 */
import type { KIRQL } from "../hal/wdm/irql.js";

export type KSERVICE_ROUTINE = (Interrupt: KINTERRUPT, ServiceContext: unknown) => boolean;
export type KSYNCHRONIZE_ROUTINE = (SynchronizeContext: unknown) => boolean;

export class KINTERRUPT {
  constructor(
    readonly Vector: number,
    readonly Irql: KIRQL,
    readonly SynchronizeIrql: KIRQL,
    readonly ShareVector: boolean,
  ) {}
}
