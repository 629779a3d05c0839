/**
 * SetDeviceFaultReporting's delivery: every fault a remapping unit processes for a device whose
 * reporting is on becomes a FAULT_INFORMATION handed to the driver's IOMMU_DEVICE_FAULT_HANDLER
 * at PASSIVE_LEVEL (windows-dma-ddi §7), from a work item run after the faulting access, as
 * Windows defers it from the fault interrupt. The bus listener exists only while some device
 * reports, so unreported faults cost nothing here.
 *
 * FAULT_INFORMATION_X64.Type from the VT-d fault reason (iommu-anchors §1.5): VT-d reports a
 * missing second-level entry and a missing R/W bit alike (reasons 6 and 5), so the domain's table
 * tells them apart: a page that is mapped is a PermissionFault, one that is not a
 * TranslationFault. An address beyond the table's width (4) is an AddressSizeFault; no context
 * entry and the rest are TranslationFaults.
 */
import { FaultReason } from "../../iommu/fault-reason.js";
import type { Iommu } from "../../iommu/iommu.js";
import type { IommuFaultEvent } from "../../iommu/iommu-events.js";
import type { Scheduler } from "../../platform/scheduler.js";
import type { Counters } from "../../trace/counters.js";
import type { Disposer, EventBus } from "../../trace/event-bus.js";
import {
  AddressSizeFault,
  type FAULT_INFORMATION,
  FaultInformationX64,
  type IOMMU_DEVICE_FAULT_HANDLER,
  PermissionFault,
  TranslationFault,
} from "../wdm/iommu-interface.js";
import type { IommuDmaDomain } from "./iommu-dma-domain.js";

/** Register base of the first remapping unit, as x86 firmware commonly places DRHD 0; units follow 4 KiB apart. */
export const DRHD_BASE_ADDRESS = 0xfed90000;

interface Registration {
  readonly handler: IOMMU_DEVICE_FAULT_HANDLER;
  readonly context: unknown;
  readonly domain: () => IommuDmaDomain | undefined;
}

export class FaultReporter {
  readonly #events: EventBus;
  readonly #scheduler: Scheduler;
  readonly #iommu: Iommu;
  readonly #counters: Counters;
  readonly #registrations = new Map<number, Registration>();
  #listener: Disposer | undefined;

  constructor(events: EventBus, scheduler: Scheduler, iommu: Iommu, counters: Counters) {
    this.#events = events;
    this.#scheduler = scheduler;
    this.#iommu = iommu;
    this.#counters = counters;
  }

  /** Requesters whose faults are reported. */
  get reporting(): number {
    return this.#registrations.size;
  }

  isReporting(requesterId: number): boolean {
    return this.#registrations.has(requesterId);
  }

  enable(
    requesterId: number,
    handler: IOMMU_DEVICE_FAULT_HANDLER,
    context: unknown,
    domain: () => IommuDmaDomain | undefined,
  ): void {
    this.#registrations.set(requesterId, { handler, context, domain });
    this.#listener ??= this.#events.on("iommu.fault", (event) => this.#report(event));
  }

  disable(requesterId: number): void {
    this.#registrations.delete(requesterId);
    if (this.#registrations.size === 0 && this.#listener !== undefined) {
      this.#listener();
      this.#listener = undefined;
    }
  }

  #report(event: IommuFaultEvent): void {
    const registration = this.#registrations.get(event.requesterId);
    if (registration === undefined) return;
    const unit = this.#iommu.units.find((u) => u.name === event.unit);
    const domain = registration.domain();
    const information: FAULT_INFORMATION = {
      Type: FaultInformationX64,
      IsStage1: false,
      X64: {
        DomainHandle: domain,
        FaultAddress: event.address,
        Flags: { WriteNotRead: event.access === "write", FaultAddressValid: true },
        Type: faultType(event.reason, domain?.hardware?.lookup(event.address) !== undefined),
        IommuBaseAddress: DRHD_BASE_ADDRESS + (unit?.index ?? 0) * 0x1000,
        PciSegment: 0,
      },
    };
    this.#counters.add("hal.iommu.fault.reported");
    this.#scheduler.schedule(
      0,
      () => {
        if (this.#registrations.get(event.requesterId) === registration)
          registration.handler(registration.context, information);
      },
      "IOMMU device fault handler",
    );
  }
}

function faultType(reason: number, mapped: boolean): number {
  if (reason === FaultReason.WriteNotPermitted || reason === FaultReason.ReadNotPermitted) {
    return mapped ? PermissionFault : TranslationFault;
  }
  if (reason === FaultReason.BeyondMgaw) return AddressSizeFault;
  return TranslationFault;
}
