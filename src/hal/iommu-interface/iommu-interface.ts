/**
 * The HAL side of IoGetIommuInterface(Ex): DMA_IOMMU_INTERFACE V1 and V2 (windows-dma-ddi §7, the
 * nc-wdm-iommu_* WDK pages). Drivers that manage device domains themselves (shared page tables,
 * one-sided device mappings, reserved logical ranges: the VCMM seed in Windows form) call these;
 * ordinary drivers keep using DMA_OPERATIONS.
 *
 * Each routine checks its IRQL (creation, attachment and registration at PASSIVE_LEVEL; map,
 * unmap and flush at <= DISPATCH_LEVEL: the WDK pages say nothing, these follow what allocates),
 * then its arguments in parameter order, returning the documented status of the first bad one
 * (STATUS_INVALID_PARAMETER_n, _MIX, NOT_SUPPORTED, RESOURCE_IN_USE, ...), and only then changes
 * anything. The WDK's "STATUS_IN_USE" for an already mapped range is not an ntstatus.h code;
 * STATUS_RESOURCE_IN_USE, which MapReservedLogicalRange documents for the same case, is returned.
 *
 * Devices attached here are the interface's: a requester the HAL's DMA adapters already attached
 * (a DMA domain or pass-through) is "already attached to a domain" (STATUS_INVALID_PARAMETER).
 * DomainTypeUnmanaged domains block all DMA until configured, and on x64 a configuration is
 * "reserved for system use" (STATUS_NOT_SUPPORTED): their devices stay blocked. DMA Guard: an
 * external device is never offered a pass-through domain, nor is any device while
 * setDmaGuardBlocking(true) is in force (nc-wdm-iommu_device_query_domain_types).
 */
import { inject, injectable } from "inversify";
import { IoPermission } from "../../iommu/io-page-table.js";
import { Iommu } from "../../iommu/iommu.js";
import type { IommuDomain } from "../../iommu/iommu-domain.js";
import { PAGE_SIZE } from "../../platform/page.js";
import { PlatformError } from "../../platform/platform-error.js";
import { Scheduler } from "../../platform/scheduler.js";
import { Counters } from "../../trace/counters.js";
import { EventBus } from "../../trace/event-bus.js";
import { checkIrql } from "../hal-bug-checks.js";
import type { DEVICE_OBJECT } from "../wdm/device-object.js";
import {
  type DEVICE_FAULT_CONFIGURATION,
  type DMA_IOMMU_INTERFACE,
  type DMA_IOMMU_INTERFACE_EX,
  DMA_IOMMU_INTERFACE_EX_SIZE_V1,
  DMA_IOMMU_INTERFACE_EX_SIZE_V2,
  DMA_IOMMU_INTERFACE_EX_VERSION_1,
  DMA_IOMMU_INTERFACE_EX_VERSION_2,
  type DMA_IOMMU_INTERFACE_V1,
  type DMA_IOMMU_INTERFACE_V2,
  DMA_IOMMU_INTERFACE_VERSION_1,
  type DOMAIN_CONFIGURATION,
  DomainConfigurationArm64,
  DomainConfigurationX64,
  DomainTypePassThrough,
  DomainTypeTranslate,
  DomainTypeTranslateS1,
  DomainTypeUnmanaged,
  type INPUT_MAPPING_ELEMENT,
  INPUT_MAPPING_ELEMENT_SIZE,
  type IOMMU_DMA_DEVICE,
  type IOMMU_DMA_DOMAIN,
  type IOMMU_DMA_LOGICAL_ADDRESS_TOKEN,
  type IOMMU_DMA_LOGICAL_ALLOCATOR_CONFIG,
  type IOMMU_DMA_RESERVED_REGION,
  type IOMMU_INTERFACE_STATE_CHANGE_CALLBACK,
  type IOMMU_INTERFACE_STATE_CHANGE_FIELDS,
  IommuDmaLogicalAllocatorBuddy,
  IommuDmaLogicalAllocatorNone,
  STATUS_ACCESS_DENIED,
  STATUS_NOT_FOUND,
} from "../wdm/iommu-interface.js";
import {
  type NTSTATUS,
  STATUS_BUFFER_TOO_SMALL,
  STATUS_INVALID_PARAMETER,
  STATUS_INVALID_PARAMETER_1,
  STATUS_INVALID_PARAMETER_2,
  STATUS_INVALID_PARAMETER_3,
  STATUS_INVALID_PARAMETER_4,
  STATUS_NOT_IMPLEMENTED,
  STATUS_NOT_SUPPORTED,
  STATUS_RESOURCE_IN_USE,
  STATUS_SUCCESS,
  STATUS_UNSUCCESSFUL,
} from "../wdm/ntstatus.js";
import { BuddyAllocator } from "./buddy-allocator.js";
import { FaultReporter } from "./fault-reporter.js";
import { IommuDmaDevice, IommuDmaDomain } from "./iommu-dma-domain.js";
import { LogicalAddressToken } from "./logical-address-token.js";
import {
  insufficient,
  isLogicalAddress,
  isPageAligned,
  LAST_LOGICAL_PAGE,
  LOGICAL_BITS,
  MappingRoutines,
  MSI_FIRST_PAGE,
  MSI_PAGES,
} from "./mapping-routines.js";

/** Longest ReservedRegions list CreateDomainEx walks (a cycle in RegionNext would never end). */
const MAX_RESERVED_REGIONS = 1024;

/** What the interface holds: all zero once every driver has cleaned up. */
export interface IommuInterfaceResources {
  readonly domains: number;
  readonly devices: number;
  readonly attachedDevices: number;
  readonly tokens: number;
  /** Logical pages mapped through the interface (tokens' segments included). */
  readonly mappedPages: number;
  readonly faultReporting: number;
}

@injectable()
export class IommuInterface {
  // TypeScript `private`, not `#`: tsx lowers #-members of decorated classes to WeakMap lookups.
  private readonly iommu: Iommu;
  private readonly scheduler: Scheduler;
  private readonly counters: Counters;
  private readonly faults: FaultReporter;
  private readonly domains = new Set<IommuDmaDomain>();
  private readonly devices = new Set<IommuDmaDevice>();
  /** Devices attached through the interface, by requester id. */
  private readonly attached = new Map<number, IommuDmaDevice>();
  private readonly mappings: MappingRoutines;
  private readonly v1: DMA_IOMMU_INTERFACE_V1;
  private readonly v2: DMA_IOMMU_INTERFACE_V2;
  private dmaGuardBlocking = false;
  private nextDomainId = 1;

  constructor(
    @inject(Iommu) iommu: Iommu,
    @inject(Scheduler) scheduler: Scheduler,
    @inject(EventBus) events: EventBus,
    @inject(Counters) counters: Counters,
  ) {
    this.iommu = iommu;
    this.scheduler = scheduler;
    this.counters = counters;
    this.faults = new FaultReporter(events, scheduler, iommu, counters);
    this.mappings = new MappingRoutines(scheduler, counters, {
      domain: (value) => this.domain(value),
      translateDomain: (value) => this.translateDomain(value),
      token: (value, freed) => this.token(value, freed),
    });
    this.v1 = Object.freeze<DMA_IOMMU_INTERFACE_V1>({
      CreateDomain: (managed) => this.CreateDomain(managed),
      DeleteDomain: (domain) => this.DeleteDomain(domain),
      AttachDevice: (domain, pdo, base, count) => this.AttachDevice(domain, pdo, base, count),
      DetachDevice: (domain, pdo, id) => this.DetachDevice(domain, pdo, id),
      FlushDomain: (domain) => this.FlushDomain(domain),
      FlushDomainByVaList: (domain, last, n, list) => this.FlushDomainByVaList(domain, last, n, list),
      QueryInputMappings: (pdo, buffer, length) => this.QueryInputMappings(pdo, buffer, length),
      MapLogicalRange: (domain, permissions, mdl, la) =>
        this.mappings.MapLogicalRange(domain, permissions, mdl, la),
      UnmapLogicalRange: (domain, la, pages) => this.mappings.UnmapLogicalRange(domain, la, pages),
      MapIdentityRange: (domain, permissions, mdl) =>
        this.mappings.MapIdentityRange(domain, permissions, mdl),
      UnmapIdentityRange: (domain, mdl) => this.mappings.UnmapIdentityRange(domain, mdl),
      SetDeviceFaultReporting: (pdo, base, enable, config) =>
        this.SetDeviceFaultReporting(pdo, base, enable, config),
      ConfigureDomain: (domain, configuration) => this.ConfigureDomain(domain, configuration),
    });
    this.v2 = Object.freeze<DMA_IOMMU_INTERFACE_V2>({
      CreateDomainEx: (type, flags, allocator, regions) =>
        this.CreateDomainEx(type, flags, allocator, regions),
      DeleteDomain: (domain) => this.DeleteDomain(domain),
      AttachDeviceEx: (domain, device) => this.AttachDeviceEx(domain, device),
      DetachDeviceEx: (device) => this.DetachDeviceEx(device),
      FlushDomain: (domain) => this.FlushDomain(domain),
      FlushDomainByVaList: (domain, last, n, list) => this.FlushDomainByVaList(domain, last, n, list),
      QueryInputMappings: (pdo, buffer, length) => this.QueryInputMappings(pdo, buffer, length),
      MapLogicalRangeEx: (domain, permissions, pa, explicit, min, max) =>
        this.mappings.MapLogicalRangeEx(domain, permissions, pa, explicit, min, max),
      UnmapLogicalRange: (domain, la, pages) => this.mappings.UnmapLogicalRange(domain, la, pages),
      MapIdentityRangeEx: (domain, permissions, pa) =>
        this.mappings.MapIdentityRangeEx(domain, permissions, pa),
      UnmapIdentityRangeEx: (domain, pa) => this.mappings.UnmapIdentityRangeEx(domain, pa),
      SetDeviceFaultReportingEx: () => STATUS_NOT_IMPLEMENTED,
      ConfigureDomain: (domain, configuration) => this.ConfigureDomain(domain, configuration),
      QueryAvailableDomainTypes: (device) => this.QueryAvailableDomainTypes(device),
      RegisterInterfaceStateChangeCallback: (callback, context, device, fields) =>
        this.RegisterInterfaceStateChangeCallback(callback, context, device, fields),
      UnregisterInterfaceStateChangeCallback: (callback, device) =>
        this.UnregisterInterfaceStateChangeCallback(callback, device),
      ReserveLogicalAddressRange: (domain, size, explicit, min, max) =>
        this.mappings.ReserveLogicalAddressRange(domain, size, explicit, min, max),
      FreeReservedLogicalAddressRange: (token) => this.mappings.FreeReservedLogicalAddressRange(token),
      MapReservedLogicalRange: (token, offset, permissions, pa) =>
        this.mappings.MapReservedLogicalRange(token, offset, permissions, pa),
      UnmapReservedLogicalRange: (segment) => this.mappings.UnmapReservedLogicalRange(segment),
      CreateDevice: (pdo, config) => this.CreateDevice(pdo, config),
      DeleteDevice: (device) => this.DeleteDevice(device),
    });
  }

  // ------------------------------------------------------------------ IoGetIommuInterface(Ex)

  /** IoGetIommuInterface (deprecated): DMA_IOMMU_INTERFACE, version 1 only. */
  getInterface(Version: number): { Status: NTSTATUS; InterfaceOut: DMA_IOMMU_INTERFACE | undefined } {
    if (!Number.isInteger(Version)) return { Status: STATUS_INVALID_PARAMETER_1, InterfaceOut: undefined };
    if (Version !== DMA_IOMMU_INTERFACE_VERSION_1 || !this.iommu.translationEnabled) {
      return { Status: STATUS_NOT_SUPPORTED, InterfaceOut: undefined };
    }
    return { Status: STATUS_SUCCESS, InterfaceOut: Object.freeze({ Version, ...this.v1 }) };
  }

  /** IoGetIommuInterfaceEx: DMA_IOMMU_INTERFACE_EX of version 1 or 2; Flags must be 0. */
  getInterfaceEx(
    Version: number,
    Flags: number,
  ): { Status: NTSTATUS; InterfaceOut: DMA_IOMMU_INTERFACE_EX | undefined } {
    if (!Number.isInteger(Version)) return { Status: STATUS_INVALID_PARAMETER_1, InterfaceOut: undefined };
    if (Flags !== 0) return { Status: STATUS_INVALID_PARAMETER_2, InterfaceOut: undefined };
    if (!this.iommu.translationEnabled) return { Status: STATUS_NOT_SUPPORTED, InterfaceOut: undefined };
    if (Version === DMA_IOMMU_INTERFACE_EX_VERSION_1) {
      return {
        Status: STATUS_SUCCESS,
        InterfaceOut: Object.freeze({ Size: DMA_IOMMU_INTERFACE_EX_SIZE_V1, Version, V1: this.v1 }),
      };
    }
    if (Version === DMA_IOMMU_INTERFACE_EX_VERSION_2) {
      return {
        Status: STATUS_SUCCESS,
        InterfaceOut: Object.freeze({ Size: DMA_IOMMU_INTERFACE_EX_SIZE_V2, Version, V2: this.v2 }),
      };
    }
    return { Status: STATUS_NOT_SUPPORTED, InterfaceOut: undefined };
  }

  // ------------------------------------------------------------------ domains

  /** V1: TRUE, the HAL owns the table (Map/Unmap); FALSE, the caller does (Configure/Flush). */
  CreateDomain(OsManagedPageTable: boolean): { Status: NTSTATUS; DomainOut: IOMMU_DMA_DOMAIN | undefined } {
    checkIrql(this.scheduler.irql, "passive", "CreateDomain");
    if (typeof OsManagedPageTable !== "boolean")
      return { Status: STATUS_INVALID_PARAMETER_1, DomainOut: undefined };
    return this.newDomain(
      OsManagedPageTable ? DomainTypeTranslate : DomainTypeUnmanaged,
      undefined,
      undefined,
    );
  }

  CreateDomainEx(
    DomainType: number,
    Flags: number,
    LogicalAllocatorConfig: IOMMU_DMA_LOGICAL_ALLOCATOR_CONFIG | undefined,
    ReservedRegions: IOMMU_DMA_RESERVED_REGION | undefined,
  ): { Status: NTSTATUS; DomainOut: IOMMU_DMA_DOMAIN | undefined } {
    checkIrql(this.scheduler.irql, "passive", "CreateDomainEx");
    const fail = (Status: NTSTATUS): { Status: NTSTATUS; DomainOut: undefined } => ({
      Status,
      DomainOut: undefined,
    });
    if (DomainType === DomainTypeTranslateS1) return fail(STATUS_NOT_SUPPORTED);
    if (
      DomainType !== DomainTypeTranslate &&
      DomainType !== DomainTypePassThrough &&
      DomainType !== DomainTypeUnmanaged
    ) {
      return fail(STATUS_INVALID_PARAMETER_1);
    }
    if (Flags !== 0) return fail(STATUS_INVALID_PARAMETER_2);
    const width = allocatorWidth(LogicalAllocatorConfig);
    if (width === undefined || (width > 0 && DomainType !== DomainTypeTranslate))
      return fail(STATUS_INVALID_PARAMETER_3);
    const regions = reservedRegions(ReservedRegions, width);
    if (regions === undefined || (regions.length > 0 && DomainType !== DomainTypeTranslate)) {
      return fail(STATUS_INVALID_PARAMETER_4);
    }
    if (DomainType === DomainTypePassThrough && this.dmaGuardBlocking) return fail(STATUS_NOT_SUPPORTED);
    return this.newDomain(DomainType, width > 0 ? width : undefined, regions);
  }

  /** Deletes a domain that has no device attached and no reserved token left. */
  DeleteDomain(Domain: IOMMU_DMA_DOMAIN): NTSTATUS {
    checkIrql(this.scheduler.irql, "passive", "DeleteDomain");
    const domain = this.domain(Domain);
    if (domain === undefined) return STATUS_INVALID_PARAMETER_1;
    if (domain.devices.size > 0 || domain.tokens.size > 0) return STATUS_RESOURCE_IN_USE;
    if (domain.hardware !== undefined) this.iommu.destroyDomain(domain.hardware);
    domain.deleted = true;
    this.domains.delete(domain);
    this.counters.add("hal.iommu.domain.delete");
    return STATUS_SUCCESS;
  }

  /**
   * Unmanaged domains only (else STATUS_INVALID_PARAMETER_1). On this x64 machine an ARM64
   * configuration does not apply and an X64 one is reserved for the system: STATUS_NOT_SUPPORTED.
   */
  ConfigureDomain(Domain: IOMMU_DMA_DOMAIN, Configuration: DOMAIN_CONFIGURATION): NTSTATUS {
    checkIrql(this.scheduler.irql, "passive", "ConfigureDomain");
    const domain = this.domain(Domain);
    if (domain === undefined || domain.osManaged) return STATUS_INVALID_PARAMETER_1;
    const type = typeof Configuration === "object" && Configuration !== null ? Configuration.Type : undefined;
    if (type !== DomainConfigurationX64 && type !== DomainConfigurationArm64)
      return STATUS_INVALID_PARAMETER_2;
    return STATUS_NOT_SUPPORTED;
  }

  /** TLB flush of a caller-managed domain (domain-selective, on every unit it is attached to). */
  FlushDomain(Domain: IOMMU_DMA_DOMAIN): NTSTATUS {
    checkIrql(this.scheduler.irql, "at-most-dispatch", "FlushDomain");
    const domain = this.domain(Domain);
    if (domain === undefined || domain.osManaged) return STATUS_INVALID_PARAMETER_1;
    domain.flushAll();
    return STATUS_SUCCESS;
  }

  /** Page-selective flushes of the first `Number` addresses of VaList (caller-managed domains). */
  FlushDomainByVaList(
    Domain: IOMMU_DMA_DOMAIN,
    LastLevel: boolean,
    NumberOfAddresses: number,
    VaList: readonly number[],
  ): NTSTATUS {
    checkIrql(this.scheduler.irql, "at-most-dispatch", "FlushDomainByVaList");
    const domain = this.domain(Domain);
    if (domain === undefined || domain.osManaged) return STATUS_INVALID_PARAMETER_1;
    if (typeof LastLevel !== "boolean") return STATUS_INVALID_PARAMETER_2;
    if (
      !Array.isArray(VaList) ||
      !Number.isSafeInteger(NumberOfAddresses) ||
      NumberOfAddresses < 0 ||
      NumberOfAddresses > VaList.length
    ) {
      return STATUS_INVALID_PARAMETER_3;
    }
    const pages: number[] = [];
    for (let i = 0; i < NumberOfAddresses; i++) {
      const va = VaList[i]!;
      if (!isLogicalAddress(va)) return STATUS_INVALID_PARAMETER_4;
      pages.push(Math.floor(va / PAGE_SIZE));
    }
    for (const page of pages) domain.flushPage(page);
    return STATUS_SUCCESS;
  }

  // ------------------------------------------------------------------ devices

  /** V2: the IOMMU_DMA_DEVICE of a PDO. DeviceConfig must be absent on x64. */
  CreateDevice(
    PhysicalDeviceObject: DEVICE_OBJECT,
    DeviceConfig: unknown,
  ): { Status: NTSTATUS; DmaDeviceOut: IOMMU_DMA_DEVICE | undefined } {
    checkIrql(this.scheduler.irql, "passive", "CreateDevice");
    const found = this.requester(PhysicalDeviceObject);
    if (found === undefined) return { Status: STATUS_INVALID_PARAMETER, DmaDeviceOut: undefined };
    if (found === "not-behind-iommu") return { Status: STATUS_NOT_FOUND, DmaDeviceOut: undefined };
    if (DeviceConfig !== undefined) return { Status: STATUS_INVALID_PARAMETER_2, DmaDeviceOut: undefined };
    const device = new IommuDmaDevice(
      PhysicalDeviceObject,
      found,
      PhysicalDeviceObject.DeviceObjectExtension.external,
      false,
    );
    this.devices.add(device);
    return { Status: STATUS_SUCCESS, DmaDeviceOut: device };
  }

  /** STATUS_RESOURCE_IN_USE while the device is attached. */
  DeleteDevice(DmaDevice: IOMMU_DMA_DEVICE): NTSTATUS {
    checkIrql(this.scheduler.irql, "passive", "DeleteDevice");
    const device = this.device(DmaDevice);
    if (device === undefined) return STATUS_INVALID_PARAMETER_1;
    if (device.domain !== undefined) return STATUS_RESOURCE_IN_USE;
    device.deleted = true;
    device.stateCallback = undefined;
    this.devices.delete(device);
    return STATUS_SUCCESS;
  }

  /** V1: attaches the PDO's function; InputMappingIdBase 0 and MappingCount 1 outside ARM64 ACPI. */
  AttachDevice(
    Domain: IOMMU_DMA_DOMAIN,
    PhysicalDeviceObject: DEVICE_OBJECT,
    InputMappingIdBase: number,
    MappingCount: number,
  ): NTSTATUS {
    checkIrql(this.scheduler.irql, "passive", "AttachDevice");
    const domain = this.domain(Domain);
    if (domain === undefined || domain.type === DomainTypePassThrough) return STATUS_INVALID_PARAMETER_1;
    const rid = this.requester(PhysicalDeviceObject);
    if (typeof rid !== "number") return STATUS_INVALID_PARAMETER_2;
    if (InputMappingIdBase !== 0) return STATUS_INVALID_PARAMETER_3;
    if (MappingCount !== 1) return STATUS_INVALID_PARAMETER_4;
    const device = new IommuDmaDevice(
      PhysicalDeviceObject,
      rid,
      PhysicalDeviceObject.DeviceObjectExtension.external,
      true,
    );
    const status = this.attach(domain, device);
    if (status === STATUS_SUCCESS) this.devices.add(device);
    return status;
  }

  /** V1: detaches the PDO's function from Domain. */
  DetachDevice(
    Domain: IOMMU_DMA_DOMAIN,
    PhysicalDeviceObject: DEVICE_OBJECT,
    InputMappingId: number,
  ): NTSTATUS {
    checkIrql(this.scheduler.irql, "passive", "DetachDevice");
    const domain = this.domain(Domain);
    if (domain === undefined) return STATUS_INVALID_PARAMETER_1;
    const rid = this.requester(PhysicalDeviceObject);
    const device = typeof rid === "number" ? this.attached.get(rid) : undefined;
    if (device === undefined || device.domain !== domain) return STATUS_INVALID_PARAMETER_2;
    if (InputMappingId !== 0) return STATUS_INVALID_PARAMETER_3;
    this.detach(device);
    if (device.implicit) {
      device.deleted = true;
      this.devices.delete(device);
    }
    return STATUS_SUCCESS;
  }

  /** STATUS_INVALID_PARAMETER when already attached; STATUS_ACCESS_DENIED when the type is not available. */
  AttachDeviceEx(Domain: IOMMU_DMA_DOMAIN, DmaDevice: IOMMU_DMA_DEVICE): NTSTATUS {
    checkIrql(this.scheduler.irql, "passive", "AttachDeviceEx");
    const domain = this.domain(Domain);
    if (domain === undefined) return STATUS_INVALID_PARAMETER_1;
    const device = this.device(DmaDevice);
    if (device === undefined) return STATUS_INVALID_PARAMETER_2;
    return this.attach(domain, device);
  }

  /** STATUS_INVALID_PARAMETER_1 when the device is not attached to any domain. */
  DetachDeviceEx(DmaDevice: IOMMU_DMA_DEVICE): NTSTATUS {
    checkIrql(this.scheduler.irql, "passive", "DetachDeviceEx");
    const device = this.device(DmaDevice);
    if (device === undefined || device.domain === undefined) return STATUS_INVALID_PARAMETER_1;
    this.detach(device);
    return STATUS_SUCCESS;
  }

  /** Bit (1 << type) per domain type the device may attach to now. */
  QueryAvailableDomainTypes(DmaDevice: IOMMU_DMA_DEVICE): number {
    checkIrql(this.scheduler.irql, "passive", "QueryAvailableDomainTypes");
    const device = this.device(DmaDevice);
    return device === undefined ? 0 : this.availableTypes(device);
  }

  /** x64 PCI functions have one input mapping: their requester id (the stream ID of ARM64). */
  QueryInputMappings(
    PhysicalDeviceObject: DEVICE_OBJECT,
    Buffer: INPUT_MAPPING_ELEMENT[],
    BufferLength: number,
  ): { Status: NTSTATUS; ReturnLength: number } {
    checkIrql(this.scheduler.irql, "passive", "QueryInputMappings");
    const rid = this.requester(PhysicalDeviceObject);
    if (typeof rid !== "number") return { Status: STATUS_UNSUCCESSFUL, ReturnLength: 0 };
    if (!Array.isArray(Buffer)) return { Status: STATUS_INVALID_PARAMETER_2, ReturnLength: 0 };
    if (!Number.isSafeInteger(BufferLength) || BufferLength < INPUT_MAPPING_ELEMENT_SIZE) {
      return { Status: STATUS_BUFFER_TOO_SMALL, ReturnLength: INPUT_MAPPING_ELEMENT_SIZE };
    }
    Buffer[0] = { InputMappingId: rid };
    return { Status: STATUS_SUCCESS, ReturnLength: INPUT_MAPPING_ELEMENT_SIZE };
  }

  /**
   * V1 fault reporting of a device attached through the interface: the handler runs at
   * PASSIVE_LEVEL once per fault the device causes. FaultConfig is only read when enabling.
   */
  SetDeviceFaultReporting(
    PhysicalDeviceObject: DEVICE_OBJECT,
    InputMappingIdBase: number,
    Enable: boolean,
    FaultConfig: DEVICE_FAULT_CONFIGURATION | undefined,
  ): NTSTATUS {
    checkIrql(this.scheduler.irql, "passive", "SetDeviceFaultReporting");
    const rid = this.requester(PhysicalDeviceObject);
    const device = typeof rid === "number" ? this.attached.get(rid) : undefined;
    if (device === undefined || device.domain?.hardware === undefined) return STATUS_INVALID_PARAMETER_1;
    if (InputMappingIdBase !== 0) return STATUS_INVALID_PARAMETER_2;
    if (typeof Enable !== "boolean") return STATUS_INVALID_PARAMETER_3;
    if (!Enable) {
      this.faults.disable(device.requesterId);
      return STATUS_SUCCESS;
    }
    if (
      typeof FaultConfig !== "object" ||
      FaultConfig === null ||
      typeof FaultConfig.FaultHandler !== "function"
    ) {
      return STATUS_INVALID_PARAMETER_4;
    }
    this.faults.enable(
      device.requesterId,
      FaultConfig.FaultHandler,
      FaultConfig.FaultContext,
      () => device.domain,
    );
    return STATUS_SUCCESS;
  }

  /** One callback per device; it runs at once with the current state, then at every change. */
  RegisterInterfaceStateChangeCallback(
    StateChangeCallback: IOMMU_INTERFACE_STATE_CHANGE_CALLBACK,
    Context: unknown,
    DmaDevice: IOMMU_DMA_DEVICE,
    StateFields: IOMMU_INTERFACE_STATE_CHANGE_FIELDS,
  ): NTSTATUS {
    checkIrql(this.scheduler.irql, "passive", "RegisterInterfaceStateChangeCallback");
    if (typeof StateChangeCallback !== "function") return STATUS_INVALID_PARAMETER_1;
    const device = this.device(DmaDevice);
    if (device === undefined) return STATUS_INVALID_PARAMETER_3;
    if (
      typeof StateFields !== "object" ||
      StateFields === null ||
      StateFields.AvailableDomainTypes !== true
    ) {
      return STATUS_INVALID_PARAMETER_4;
    }
    if (device.stateCallback !== undefined) return STATUS_UNSUCCESSFUL;
    device.stateCallback = StateChangeCallback;
    device.stateContext = Context;
    StateChangeCallback(
      { PresentFields: { AvailableDomainTypes: true }, AvailableDomainTypes: this.availableTypes(device) },
      Context,
    );
    return STATUS_SUCCESS;
  }

  UnregisterInterfaceStateChangeCallback(
    StateChangeCallback: IOMMU_INTERFACE_STATE_CHANGE_CALLBACK,
    DmaDevice: IOMMU_DMA_DEVICE,
  ): NTSTATUS {
    checkIrql(this.scheduler.irql, "passive", "UnregisterInterfaceStateChangeCallback");
    const device = this.device(DmaDevice);
    if (device === undefined) return STATUS_INVALID_PARAMETER_2;
    if (device.stateCallback === undefined || device.stateCallback !== StateChangeCallback)
      return STATUS_UNSUCCESSFUL;
    device.stateCallback = undefined;
    device.stateContext = undefined;
    return STATUS_SUCCESS;
  }

  // ------------------------------------------------------------------ host side

  /**
   * DMA Guard blocking (the lock-screen policy of Kernel DMA Protection): while active, no device
   * is offered a pass-through domain. Registered state-change callbacks run at PASSIVE_LEVEL.
   */
  setDmaGuardBlocking(active: boolean): void {
    if (typeof active !== "boolean")
      throw new PlatformError("out-of-range", "DMA Guard blocking must be a boolean");
    if (active === this.dmaGuardBlocking) return;
    this.dmaGuardBlocking = active;
    for (const device of this.devices) {
      const callback = device.stateCallback;
      if (callback === undefined) continue;
      const context = device.stateContext;
      this.scheduler.schedule(
        0,
        () => {
          if (device.stateCallback !== callback) return;
          callback(
            {
              PresentFields: { AvailableDomainTypes: true },
              AvailableDomainTypes: this.availableTypes(device),
            },
            context,
          );
        },
        "IOMMU interface state change",
      );
    }
  }

  /** True when `requesterId` is attached to a domain of this interface (the HAL must not take it). */
  ownsRequester(requesterId: number): boolean {
    return this.attached.has(requesterId);
  }

  /** The IOMMU domain behind a handle (for inspection), undefined for pass-through or a bad handle. */
  hardwareDomain(Domain: IOMMU_DMA_DOMAIN): IommuDomain | undefined {
    return this.domain(Domain)?.hardware;
  }

  resources(): IommuInterfaceResources {
    let tokens = 0;
    let mappedPages = 0;
    for (const domain of this.domains) {
      tokens += domain.tokens.size;
      for (const range of domain.ranges.entries())
        if (range.value.kind !== "token") mappedPages += range.pages;
      for (const token of domain.tokens) mappedPages += token.segments.pages;
    }
    return {
      domains: this.domains.size,
      devices: this.devices.size,
      attachedDevices: this.attached.size,
      tokens,
      mappedPages,
      faultReporting: this.faults.reporting,
    };
  }

  // ------------------------------------------------------------------ internals

  private newDomain(
    type: number,
    allocatorWidthBits: number | undefined,
    regions: readonly IOMMU_DMA_RESERVED_REGION[] | undefined,
  ): { Status: NTSTATUS; DomainOut: IOMMU_DMA_DOMAIN | undefined } {
    let hardware: IommuDomain | undefined;
    try {
      if (type !== DomainTypePassThrough) hardware = this.iommu.createDomain();
    } catch (error) {
      return { Status: insufficient(error), DomainOut: undefined };
    }
    let allocator: BuddyAllocator | undefined;
    let lastPage = LAST_LOGICAL_PAGE;
    if (allocatorWidthBits !== undefined) {
      allocator = new BuddyAllocator(Math.min(allocatorWidthBits, LOGICAL_BITS) - 12);
      lastPage = 2 ** allocator.topOrder - 1;
      if (MSI_FIRST_PAGE + MSI_PAGES - 1 <= lastPage) allocator.reserve(MSI_FIRST_PAGE, MSI_PAGES);
    }
    const domain = new IommuDmaDomain(
      this.nextDomainId,
      type,
      hardware,
      allocator,
      lastPage,
      this.iommu,
      this.counters,
    );
    for (const region of regions ?? []) {
      const first = region.Base / PAGE_SIZE;
      const status = region.ShouldMap
        ? this.mappings.mapAt(
            domain,
            first,
            { runs: [{ pfn: first, pages: region.NumberOfPages }], pages: region.NumberOfPages },
            IoPermission.ReadWrite,
            "identity",
            undefined,
          )
        : STATUS_SUCCESS;
      if (
        status !== STATUS_SUCCESS ||
        (allocator !== undefined && !allocator.reserve(first, region.NumberOfPages))
      ) {
        if (hardware !== undefined) this.iommu.destroyDomain(hardware);
        return {
          Status: status === STATUS_SUCCESS ? STATUS_INVALID_PARAMETER_4 : status,
          DomainOut: undefined,
        };
      }
    }
    this.nextDomainId++;
    this.domains.add(domain);
    this.counters.add("hal.iommu.domain.create");
    return { Status: STATUS_SUCCESS, DomainOut: domain };
  }

  private attach(domain: IommuDmaDomain, device: IommuDmaDevice): NTSTATUS {
    const rid = device.requesterId;
    if (device.domain !== undefined || this.attached.has(rid) || this.iommu.attachment(rid) !== undefined) {
      return STATUS_INVALID_PARAMETER;
    }
    if ((this.availableTypes(device) & (1 << domain.type)) === 0) return STATUS_ACCESS_DENIED;
    try {
      if (domain.hardware === undefined) this.iommu.attachPassthrough(rid);
      else this.iommu.attach(rid, domain.hardware);
    } catch (error) {
      return insufficient(error);
    }
    device.domain = domain;
    domain.devices.add(device);
    this.attached.set(rid, device);
    this.counters.add("hal.iommu.attach");
    return STATUS_SUCCESS;
  }

  private detach(device: IommuDmaDevice): void {
    const domain = device.domain!;
    const rid = device.requesterId;
    const current = this.iommu.attachment(rid);
    if (current === (domain.hardware ?? "passthrough")) this.iommu.detach(rid);
    this.faults.disable(rid);
    domain.devices.delete(device);
    device.domain = undefined;
    this.attached.delete(rid);
    this.counters.add("hal.iommu.detach");
  }

  private availableTypes(device: IommuDmaDevice): number {
    if (!this.iommu.translationEnabled) return 0;
    const passThrough = this.dmaGuardBlocking || device.external ? 0 : 1 << DomainTypePassThrough;
    return (1 << DomainTypeTranslate) | (1 << DomainTypeUnmanaged) | passThrough;
  }

  /** A live domain of this interface, or undefined. */
  private domain(value: IOMMU_DMA_DOMAIN): IommuDmaDomain | undefined {
    return value instanceof IommuDmaDomain && this.domains.has(value) ? value : undefined;
  }

  /** A live domain whose table the HAL manages (Translate, or V1 OS-managed). */
  private translateDomain(value: IOMMU_DMA_DOMAIN): IommuDmaDomain | undefined {
    const domain = this.domain(value);
    return domain?.osManaged && domain.hardware !== undefined ? domain : undefined;
  }

  private device(value: IOMMU_DMA_DEVICE): IommuDmaDevice | undefined {
    return value instanceof IommuDmaDevice && this.devices.has(value) ? value : undefined;
  }

  /** A token of a live domain; a freed one only when `freed` is allowed (for its own status). */
  private token(value: IOMMU_DMA_LOGICAL_ADDRESS_TOKEN, freed = false): LogicalAddressToken | undefined {
    if (!(value instanceof LogicalAddressToken) || !this.domains.has(value.domain)) return undefined;
    return freed || !value.freed ? value : undefined;
  }

  /** The requester id of a PDO, "not-behind-iommu" when no unit covers it, undefined for no PDO. */
  private requester(pdo: DEVICE_OBJECT): number | "not-behind-iommu" | undefined {
    const rid =
      typeof pdo === "object" && pdo !== null && typeof pdo.DeviceObjectExtension === "object"
        ? pdo.DeviceObjectExtension.requesterId
        : undefined;
    if (rid === undefined) return undefined;
    try {
      this.iommu.unitFor(rid);
    } catch (error) {
      if (error instanceof PlatformError) return "not-behind-iommu";
      throw error;
    }
    return rid;
  }
}

/** The allocator's address width (0: none), undefined for a bad configuration. */
function allocatorWidth(config: IOMMU_DMA_LOGICAL_ALLOCATOR_CONFIG | undefined): number | undefined {
  if (config === undefined) return 0;
  if (typeof config !== "object" || config === null) return undefined;
  if (config.LogicalAllocatorType === IommuDmaLogicalAllocatorNone) return 0;
  if (config.LogicalAllocatorType !== IommuDmaLogicalAllocatorBuddy) return undefined;
  const width = config.BuddyAllocatorConfig?.AddressWidth;
  return Number.isInteger(width) && width >= 13 && width <= 63 ? width : undefined;
}

/** The RegionNext list as an array, undefined when a region is malformed or the list loops. */
function reservedRegions(
  head: IOMMU_DMA_RESERVED_REGION | undefined,
  width: number,
): IOMMU_DMA_RESERVED_REGION[] | undefined {
  const regions: IOMMU_DMA_RESERVED_REGION[] = [];
  const lastPage = width > 0 ? 2 ** (Math.min(width, LOGICAL_BITS) - 12) - 1 : LAST_LOGICAL_PAGE;
  for (let region = head; region !== undefined; region = region.RegionNext) {
    if (typeof region !== "object" || region === null || regions.length === MAX_RESERVED_REGIONS)
      return undefined;
    const { Base, NumberOfPages, ShouldMap } = region;
    if (!isPageAligned(Base) || !Number.isSafeInteger(NumberOfPages) || NumberOfPages < 1) return undefined;
    if (Base / PAGE_SIZE + NumberOfPages - 1 > lastPage || typeof ShouldMap !== "boolean") return undefined;
    regions.push(region);
  }
  return regions;
}
