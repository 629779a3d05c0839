/**
 * DMA_IOMMU_INTERFACE (deprecated, IoGetIommuInterface) and DMA_IOMMU_INTERFACE_EX with its V1 and
 * V2 routine tables (IoGetIommuInterfaceEx): the IOMMU domain routines of wdm.h, with their
 * structures and constants (shared/reference/windows-dma-ddi.md section 7; WDK pages
 * ns-wdm-dma_iommu_interface_v1/_v2 and the nc-wdm-iommu_* callbacks).
 *
 * The C-to-TypeScript conventions of dma-operations.ts apply: physical and logical addresses are
 * numbers, opaque handles are objects (NULL is `undefined`), optional pointer parameters are
 * `undefined` when absent, and a routine with out-parameters returns a record with `Status` and
 * each out-parameter under its WDK name (MapLogicalRangeEx -> { Status, LogicalAddressOut }).
 * Arrays a C caller passes as pointer and count (VaList, PageFrame) are arrays here, with the
 * count still passed where the C routine takes it.
 */
import type { DEVICE_OBJECT, MDL } from "./device-object.js";
import type { PHYSICAL_ADDRESS } from "./dma-operations.js";
import type { NTSTATUS } from "./ntstatus.js";

/** NTSTATUS values these routines return that src/hal/wdm/ntstatus.ts does not carry (ntstatus.h). */
export const STATUS_ACCESS_DENIED: NTSTATUS = 0xc0000022;
export const STATUS_NOT_FOUND: NTSTATUS = 0xc0000225;

/** IoGetIommuInterface's only version; IoGetIommuInterfaceEx's V1 (same routines) and V2. */
export const DMA_IOMMU_INTERFACE_VERSION_1 = 1;
export const DMA_IOMMU_INTERFACE_VERSION = DMA_IOMMU_INTERFACE_VERSION_1;
export const DMA_IOMMU_INTERFACE_EX_VERSION_1 = 1;
export const DMA_IOMMU_INTERFACE_EX_VERSION_2 = 2;
export const DMA_IOMMU_INTERFACE_EX_VERSION_MIN = DMA_IOMMU_INTERFACE_EX_VERSION_1;
export const DMA_IOMMU_INTERFACE_EX_VERSION_MAX = DMA_IOMMU_INTERFACE_EX_VERSION_2;

/** IOMMU_DMA_DOMAIN_TYPE. DomainTypeTranslateS1 is undocumented; this HAL refuses it. */
export const DomainTypeTranslate = 0;
export const DomainTypePassThrough = 1;
export const DomainTypeUnmanaged = 2;
export const DomainTypeTranslateS1 = 3;
export const DomainTypeMax = 4;
export type IOMMU_DMA_DOMAIN_TYPE = number;

/** IOMMU_DMA_LOGICAL_ALLOCATOR_TYPE: the Buddy allocator is the only one. */
export const IommuDmaLogicalAllocatorNone = 0;
export const IommuDmaLogicalAllocatorBuddy = 1;
export const IommuDmaLogicalAllocatorMax = 2;

/** IOMMU_MAP_PHYSICAL_ADDRESS_TYPE. */
export const MapPhysicalAddressTypeMdl = 0;
export const MapPhysicalAddressTypeContiguousRange = 1;
export const MapPhysicalAddressTypePfn = 2;
export const MapPhysicalAddressTypeMax = 3;

/**
 * The Permissions bit field of the map routines: bit 0 read, bit 1 write, bits 31:2 zero. wdm.h
 * gives the bits no names; these two are the simulator's.
 */
export const IOMMU_PERMISSION_READ = 0x1;
export const IOMMU_PERMISSION_WRITE = 0x2;

/** DOMAIN_CONFIGURATION_ARCH. X64 configurations are "reserved for system use only". */
export const DomainConfigurationArm64 = 0;
export const DomainConfigurationX64 = 1;
export const DomainConfigurationInvalid = 2;

/** FAULT_INFORMATION_ARCH. */
export const FaultInformationInvalid = 0;
export const FaultInformationArm64 = 1;
export const FaultInformationX64 = 2;

/** FAULT_INFORMATION_ARM64_TYPE, which wdm.h also names FAULT_INFORMATION_X64_TYPE. */
export const UnsupportedUpstreamTransaction = 0;
export const AddressSizeFault = 1;
export const TlbMatchConflict = 2;
export const ExternalFault = 3;
export const PermissionFault = 4;
export const AccessFlagFault = 5;
export const TranslationFault = 6;
export const MaxFaultType = 7;
export type FAULT_INFORMATION_X64_TYPE = number;

/** sizeof(INPUT_MAPPING_ELEMENT): QueryInputMappings' BufferLength counts bytes, as in C. */
export const INPUT_MAPPING_ELEMENT_SIZE = 4;

/** Opaque handles. Drivers only pass them back. */
export interface IOMMU_DMA_DOMAIN {
  readonly kind: "IOMMU_DMA_DOMAIN";
}
export interface IOMMU_DMA_DEVICE {
  readonly kind: "IOMMU_DMA_DEVICE";
}

export type IOMMU_DMA_LOGICAL_ADDRESS = number;

export interface IOMMU_DMA_LOGICAL_ALLOCATOR_CONFIG {
  LogicalAllocatorType: number;
  BuddyAllocatorConfig: { AddressWidth: number };
}

/** A list of regions reserved at domain creation (RegionNext links them, as in C). */
export interface IOMMU_DMA_RESERVED_REGION {
  RegionNext: IOMMU_DMA_RESERVED_REGION | undefined;
  Base: IOMMU_DMA_LOGICAL_ADDRESS;
  NumberOfPages: number;
  /** Identity-map the region (read and write); otherwise it is only kept out of the allocator. */
  ShouldMap: boolean;
}

/**
 * IOMMU_MAP_PHYSICAL_ADDRESS: whole, 4 KiB aligned pages described three ways. The C union is
 * three optional members here; MapType says which one is read.
 */
export interface IOMMU_MAP_PHYSICAL_ADDRESS {
  MapType: number;
  Mdl?: { Mdl: MDL };
  ContiguousRange?: { Base: PHYSICAL_ADDRESS; Size: number };
  PfnArray?: { PageFrame: readonly number[]; NumberOfPages: number };
}

/** A reserved logical range whose page tables exist before any of it is mapped. */
export interface IOMMU_DMA_LOGICAL_ADDRESS_TOKEN {
  readonly LogicalAddressBase: IOMMU_DMA_LOGICAL_ADDRESS;
  readonly Size: number;
}

/** A mapped part of a token, as MapReservedLogicalRange returns it. */
export interface IOMMU_DMA_LOGICAL_ADDRESS_TOKEN_MAPPED_SEGMENT {
  readonly OwningToken: IOMMU_DMA_LOGICAL_ADDRESS_TOKEN;
  readonly Offset: number;
  readonly Size: number;
}

export interface DOMAIN_CONFIGURATION {
  Type: number;
  Arm64?: {
    Ttbr0: PHYSICAL_ADDRESS;
    Ttbr1: PHYSICAL_ADDRESS;
    Mair0: number;
    Mair1: number;
    InputSize: number;
  };
  X64?: { FirstLevelPageTableRoot: PHYSICAL_ADDRESS; TranslationEnabled: boolean };
}

export interface INPUT_MAPPING_ELEMENT {
  InputMappingId: number;
}

/**
 * FAULT_INFORMATION_X64. wdm.h does not document the X64 flag bits; WriteNotRead and
 * FaultAddressValid mirror FAULT_INFORMATION_ARM64_FLAGS. IommuBaseAddress is the register base
 * of the remapping unit that recorded the fault.
 */
export interface FAULT_INFORMATION_X64 {
  readonly DomainHandle: IOMMU_DMA_DOMAIN | undefined;
  readonly FaultAddress: number;
  readonly Flags: { readonly WriteNotRead: boolean; readonly FaultAddressValid: boolean };
  readonly Type: FAULT_INFORMATION_X64_TYPE;
  readonly IommuBaseAddress: number;
  readonly PciSegment: number;
}

export interface FAULT_INFORMATION {
  readonly Type: number;
  readonly IsStage1: boolean;
  readonly X64: FAULT_INFORMATION_X64;
}

/** Runs at PASSIVE_LEVEL for every fault of the device it was registered for. */
export type IOMMU_DEVICE_FAULT_HANDLER = (Context: unknown, FaultInformation: FAULT_INFORMATION) => void;

export interface DEVICE_FAULT_CONFIGURATION {
  FaultHandler: IOMMU_DEVICE_FAULT_HANDLER;
  FaultContext: unknown;
}

/** IOMMU_INTERFACE_STATE_CHANGE_FIELDS: AvailableDomainTypes is the only field so far. */
export interface IOMMU_INTERFACE_STATE_CHANGE_FIELDS {
  AvailableDomainTypes: boolean;
}

export interface IOMMU_INTERFACE_STATE_CHANGE {
  readonly PresentFields: IOMMU_INTERFACE_STATE_CHANGE_FIELDS;
  /** Bit (1 << IOMMU_DMA_DOMAIN_TYPE) per available type. */
  readonly AvailableDomainTypes: number;
}

export type IOMMU_INTERFACE_STATE_CHANGE_CALLBACK = (
  StateChange: IOMMU_INTERFACE_STATE_CHANGE,
  Context: unknown,
) => void;

export interface StatusResult {
  readonly Status: NTSTATUS;
}

/** The routines of DMA_IOMMU_INTERFACE_V1 (and of the deprecated DMA_IOMMU_INTERFACE), wdm.h order. */
export interface DMA_IOMMU_INTERFACE_V1 {
  CreateDomain(OsManagedPageTable: boolean): { Status: NTSTATUS; DomainOut: IOMMU_DMA_DOMAIN | undefined };
  DeleteDomain(Domain: IOMMU_DMA_DOMAIN): NTSTATUS;
  AttachDevice(
    Domain: IOMMU_DMA_DOMAIN,
    PhysicalDeviceObject: DEVICE_OBJECT,
    InputMappingIdBase: number,
    MappingCount: number,
  ): NTSTATUS;
  DetachDevice(
    Domain: IOMMU_DMA_DOMAIN,
    PhysicalDeviceObject: DEVICE_OBJECT,
    InputMappingId: number,
  ): NTSTATUS;
  FlushDomain(Domain: IOMMU_DMA_DOMAIN): NTSTATUS;
  FlushDomainByVaList(
    Domain: IOMMU_DMA_DOMAIN,
    LastLevel: boolean,
    /** wdm.h's `Number` (a name TypeScript code cannot shadow): how many VaList entries to flush. */
    NumberOfAddresses: number,
    VaList: readonly IOMMU_DMA_LOGICAL_ADDRESS[],
  ): NTSTATUS;
  QueryInputMappings(
    PhysicalDeviceObject: DEVICE_OBJECT,
    Buffer: INPUT_MAPPING_ELEMENT[],
    BufferLength: number,
  ): { Status: NTSTATUS; ReturnLength: number };
  MapLogicalRange(
    Domain: IOMMU_DMA_DOMAIN,
    Permissions: number,
    Mdl: MDL,
    LogicalAddress: IOMMU_DMA_LOGICAL_ADDRESS,
  ): NTSTATUS;
  UnmapLogicalRange(
    Domain: IOMMU_DMA_DOMAIN,
    LogicalAddress: IOMMU_DMA_LOGICAL_ADDRESS,
    NumberOfPages: number,
  ): NTSTATUS;
  MapIdentityRange(Domain: IOMMU_DMA_DOMAIN, Permissions: number, Mdl: MDL): NTSTATUS;
  UnmapIdentityRange(Domain: IOMMU_DMA_DOMAIN, Mdl: MDL): NTSTATUS;
  SetDeviceFaultReporting(
    PhysicalDeviceObject: DEVICE_OBJECT,
    InputMappingIdBase: number,
    Enable: boolean,
    FaultConfig: DEVICE_FAULT_CONFIGURATION | undefined,
  ): NTSTATUS;
  ConfigureDomain(Domain: IOMMU_DMA_DOMAIN, Configuration: DOMAIN_CONFIGURATION): NTSTATUS;
}

/** The deprecated IoGetIommuInterface structure: a Version field, then the V1 routines. */
export interface DMA_IOMMU_INTERFACE extends DMA_IOMMU_INTERFACE_V1 {
  readonly Version: number;
}

/** The routines of DMA_IOMMU_INTERFACE_V2, wdm.h order. */
export interface DMA_IOMMU_INTERFACE_V2 {
  CreateDomainEx(
    DomainType: IOMMU_DMA_DOMAIN_TYPE,
    Flags: number,
    LogicalAllocatorConfig: IOMMU_DMA_LOGICAL_ALLOCATOR_CONFIG | undefined,
    ReservedRegions: IOMMU_DMA_RESERVED_REGION | undefined,
  ): { Status: NTSTATUS; DomainOut: IOMMU_DMA_DOMAIN | undefined };
  DeleteDomain(Domain: IOMMU_DMA_DOMAIN): NTSTATUS;
  AttachDeviceEx(Domain: IOMMU_DMA_DOMAIN, DmaDevice: IOMMU_DMA_DEVICE): NTSTATUS;
  DetachDeviceEx(DmaDevice: IOMMU_DMA_DEVICE): NTSTATUS;
  FlushDomain(Domain: IOMMU_DMA_DOMAIN): NTSTATUS;
  FlushDomainByVaList(
    Domain: IOMMU_DMA_DOMAIN,
    LastLevel: boolean,
    /** wdm.h's `Number` (a name TypeScript code cannot shadow): how many VaList entries to flush. */
    NumberOfAddresses: number,
    VaList: readonly IOMMU_DMA_LOGICAL_ADDRESS[],
  ): NTSTATUS;
  QueryInputMappings(
    PhysicalDeviceObject: DEVICE_OBJECT,
    Buffer: INPUT_MAPPING_ELEMENT[],
    BufferLength: number,
  ): { Status: NTSTATUS; ReturnLength: number };
  MapLogicalRangeEx(
    Domain: IOMMU_DMA_DOMAIN,
    Permissions: number,
    PhysicalAddressToMap: IOMMU_MAP_PHYSICAL_ADDRESS,
    ExplicitLogicalAddress: IOMMU_DMA_LOGICAL_ADDRESS | undefined,
    MinLogicalAddress: IOMMU_DMA_LOGICAL_ADDRESS | undefined,
    MaxLogicalAddress: IOMMU_DMA_LOGICAL_ADDRESS | undefined,
  ): { Status: NTSTATUS; LogicalAddressOut: IOMMU_DMA_LOGICAL_ADDRESS };
  UnmapLogicalRange(
    Domain: IOMMU_DMA_DOMAIN,
    LogicalAddress: IOMMU_DMA_LOGICAL_ADDRESS,
    NumberOfPages: number,
  ): NTSTATUS;
  MapIdentityRangeEx(
    Domain: IOMMU_DMA_DOMAIN,
    Permissions: number,
    PhysicalAddressToMap: IOMMU_MAP_PHYSICAL_ADDRESS,
  ): NTSTATUS;
  UnmapIdentityRangeEx(Domain: IOMMU_DMA_DOMAIN, MappedPhysicalAddress: IOMMU_MAP_PHYSICAL_ADDRESS): NTSTATUS;
  /** Always STATUS_NOT_IMPLEMENTED, as on Windows: use V1 SetDeviceFaultReporting. */
  SetDeviceFaultReportingEx(
    DmaDevice: IOMMU_DMA_DEVICE,
    InputMappingIdBase: number,
    Enable: boolean,
    FaultConfig: DEVICE_FAULT_CONFIGURATION | undefined,
  ): NTSTATUS;
  ConfigureDomain(Domain: IOMMU_DMA_DOMAIN, Configuration: DOMAIN_CONFIGURATION): NTSTATUS;
  /** Returns AvailableDomains: bit (1 << IOMMU_DMA_DOMAIN_TYPE) per type the device may attach to. */
  QueryAvailableDomainTypes(DmaDevice: IOMMU_DMA_DEVICE): number;
  RegisterInterfaceStateChangeCallback(
    StateChangeCallback: IOMMU_INTERFACE_STATE_CHANGE_CALLBACK,
    Context: unknown,
    DmaDevice: IOMMU_DMA_DEVICE,
    StateFields: IOMMU_INTERFACE_STATE_CHANGE_FIELDS,
  ): NTSTATUS;
  UnregisterInterfaceStateChangeCallback(
    StateChangeCallback: IOMMU_INTERFACE_STATE_CHANGE_CALLBACK,
    DmaDevice: IOMMU_DMA_DEVICE,
  ): NTSTATUS;
  ReserveLogicalAddressRange(
    Domain: IOMMU_DMA_DOMAIN,
    Size: number,
    ExplicitLogicalAddress: IOMMU_DMA_LOGICAL_ADDRESS | undefined,
    MinLogicalAddress: IOMMU_DMA_LOGICAL_ADDRESS | undefined,
    MaxLogicalAddress: IOMMU_DMA_LOGICAL_ADDRESS | undefined,
  ): { Status: NTSTATUS; LogicalAddressToken: IOMMU_DMA_LOGICAL_ADDRESS_TOKEN | undefined };
  FreeReservedLogicalAddressRange(LogicalAddressToken: IOMMU_DMA_LOGICAL_ADDRESS_TOKEN): NTSTATUS;
  MapReservedLogicalRange(
    LogicalAddressToken: IOMMU_DMA_LOGICAL_ADDRESS_TOKEN,
    Offset: number,
    Permissions: number,
    PhysicalAddressToMap: IOMMU_MAP_PHYSICAL_ADDRESS,
  ): { Status: NTSTATUS; MappedSegment: IOMMU_DMA_LOGICAL_ADDRESS_TOKEN_MAPPED_SEGMENT | undefined };
  UnmapReservedLogicalRange(MappedSegment: IOMMU_DMA_LOGICAL_ADDRESS_TOKEN_MAPPED_SEGMENT): NTSTATUS;
  CreateDevice(
    PhysicalDeviceObject: DEVICE_OBJECT,
    DeviceConfig: unknown,
  ): { Status: NTSTATUS; DmaDeviceOut: IOMMU_DMA_DEVICE | undefined };
  DeleteDevice(DmaDevice: IOMMU_DMA_DEVICE): NTSTATUS;
}

/** DMA_IOMMU_INTERFACE_EX: Size and Version, then the table of that version (the C union). */
export type DMA_IOMMU_INTERFACE_EX =
  | {
      readonly Size: number;
      readonly Version: typeof DMA_IOMMU_INTERFACE_EX_VERSION_1;
      readonly V1: DMA_IOMMU_INTERFACE_V1;
    }
  | {
      readonly Size: number;
      readonly Version: typeof DMA_IOMMU_INTERFACE_EX_VERSION_2;
      readonly V2: DMA_IOMMU_INTERFACE_V2;
    };

/** sizeof(DMA_IOMMU_INTERFACE_EX) on x64 for each version (Size + Version + the table). */
export const DMA_IOMMU_INTERFACE_EX_SIZE_V1 = 0x10 + 13 * 8;
export const DMA_IOMMU_INTERFACE_EX_SIZE_V2 = 0x10 + 22 * 8;
