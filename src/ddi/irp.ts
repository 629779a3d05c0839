/**
 * IRP: an I/O request packet with one stack location (the driver stacks here are one driver on
 * a PDO whose PnP part the I/O manager plays, so nothing is forwarded down). Completion is
 * observable by whoever sent it: `completed`, `IoStatus`, `onCompleted(listener)` (run inside
 * IoCompleteRequest) and the `completion` promise. Time is virtual: a sender runs the machine
 * (machine.runUntilIdle()) until the driver's DPC completes the IRP.
 */
import type { IO_STACK_LOCATION, IO_STATUS_BLOCK, IRP, MDL } from "../hal/wdm/device-object.js";
import { type NTSTATUS, STATUS_SUCCESS } from "../hal/wdm/ntstatus.js";

export type IrpCompletionListener = (irp: Irp) => void;

export class Irp implements IRP {
  MdlAddress: MDL | undefined;
  readonly IoStatus: IO_STATUS_BLOCK;
  Cancel = false;
  /** Set by IoCompleteRequest when a dispatch routine called IoMarkIrpPending. */
  PendingReturned = false;
  readonly CurrentStackLocation: IO_STACK_LOCATION;
  DriverContext: unknown = undefined;
  /** Serial number, for bug-check parameters and traces. */
  readonly id: number;
  /** IoMarkIrpPending ran (SL_PENDING_RETURNED of the stack location). */
  markedPending = false;
  /** What the dispatch routine returned to the sender (STATUS_PENDING: completion comes later). */
  dispatchStatus: NTSTATUS | undefined = undefined;
  /** The Key of IoStartPacket while the IRP waits in a device queue. */
  sortKey: number | undefined = undefined;
  /** The promise resolves with IoStatus once IoCompleteRequest ran. */
  readonly completion: Promise<IO_STATUS_BLOCK>;
  #completed = false;
  #resolve: (status: IO_STATUS_BLOCK) => void = () => {};
  readonly #listeners: IrpCompletionListener[] = [];

  constructor(id: number, stack: IO_STACK_LOCATION, mdl: MDL | undefined, initialStatus = STATUS_SUCCESS) {
    this.id = id;
    this.CurrentStackLocation = stack;
    this.MdlAddress = mdl;
    this.IoStatus = { Status: initialStatus, Information: 0 };
    this.completion = new Promise((resolve) => {
      this.#resolve = resolve;
    });
  }

  get completed(): boolean {
    return this.#completed;
  }

  get majorFunction(): number {
    return this.CurrentStackLocation.MajorFunction;
  }

  get minorFunction(): number {
    return this.CurrentStackLocation.MinorFunction;
  }

  /** Runs `listener` when the IRP completes (at once if it already has). */
  onCompleted(listener: IrpCompletionListener): void {
    if (this.#completed) listener(this);
    else this.#listeners.push(listener);
  }

  /** The I/O manager's half of IoCompleteRequest, after the DDI has validated the call. */
  complete(): void {
    this.#completed = true;
    this.PendingReturned = this.markedPending;
    for (const listener of this.#listeners.splice(0)) listener(this);
    this.#resolve(this.IoStatus);
  }
}
