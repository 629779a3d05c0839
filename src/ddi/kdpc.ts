/**
 * KDPC: a deferred procedure call object. Caller-allocated in C (`KDPC Dpc;`), so here the driver
 * creates one with `new KDPC()` and passes it to KeInitializeDpc, then queues it with
 * KeInsertQueueDpc. Its routine runs at DISPATCH_LEVEL once the IRQL drops below dispatch.
 */
export type KDEFERRED_ROUTINE = (
  Dpc: KDPC,
  DeferredContext: unknown,
  SystemArgument1: unknown,
  SystemArgument2: unknown,
) => void;

export class KDPC {
  DeferredRoutine: KDEFERRED_ROUTINE | undefined = undefined;
  DeferredContext: unknown = undefined;
  SystemArgument1: unknown = undefined;
  SystemArgument2: unknown = undefined;
  /** Non-zero while queued: the ticket of the queue entry that will run it (DpcData in Windows). */
  DpcData = 0;
}
