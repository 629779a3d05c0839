/**
 * DEVICE_DESCRIPTION (wdm.h) and its enumerations. Field rules are in
 * shared/reference/windows-dma-ddi.md section 2; the HAL applies them in IoGetDmaAdapter.
 */
export const DEVICE_DESCRIPTION_VERSION = 0;
export const DEVICE_DESCRIPTION_VERSION1 = 1;
export const DEVICE_DESCRIPTION_VERSION2 = 2;
export const DEVICE_DESCRIPTION_VERSION3 = 3;

/** INTERFACE_TYPE, numbered by position as in wdm.h. */
export const InterfaceTypeUndefined = -1;
export const Internal = 0;
export const Isa = 1;
export const Eisa = 2;
export const MicroChannel = 3;
export const TurboChannel = 4;
export const PCIBus = 5;
export const PNPBus = 15;
export type INTERFACE_TYPE = number;

export const Width8Bits = 0;
export const Width16Bits = 1;
export const Width32Bits = 2;
export const Width64Bits = 3;
export type DMA_WIDTH = number;

export const Compatible = 0;
export const TypeA = 1;
export const TypeB = 2;
export const TypeC = 3;
export const TypeF = 4;
export type DMA_SPEED = number;

export interface DEVICE_DESCRIPTION {
  Version: number;
  Master: boolean;
  ScatterGather: boolean;
  DemandMode: boolean;
  AutoInitialize: boolean;
  Dma32BitAddresses: boolean;
  IgnoreCount: boolean;
  Reserved1: boolean;
  Dma64BitAddresses: boolean;
  BusNumber: number;
  DmaChannel: number;
  InterfaceType: INTERFACE_TYPE;
  DmaWidth: DMA_WIDTH;
  DmaSpeed: DMA_SPEED;
  MaximumLength: number;
  DmaPort: number;
  /** VERSION3 only: device address width in bits (1..64). */
  DmaAddressWidth: number;
  DmaControllerInstance: number;
  DmaRequestLine: number;
  DeviceAddress: number;
}

/** RtlZeroMemory(&desc, sizeof(desc)) — the docs require zeroing before filling. */
export function zeroedDeviceDescription(): DEVICE_DESCRIPTION {
  return {
    Version: 0,
    Master: false,
    ScatterGather: false,
    DemandMode: false,
    AutoInitialize: false,
    Dma32BitAddresses: false,
    IgnoreCount: false,
    Reserved1: false,
    Dma64BitAddresses: false,
    BusNumber: 0,
    DmaChannel: 0,
    InterfaceType: 0,
    DmaWidth: 0,
    DmaSpeed: 0,
    MaximumLength: 0,
    DmaPort: 0,
    DmaAddressWidth: 0,
    DmaControllerInstance: 0,
    DmaRequestLine: 0,
    DeviceAddress: 0,
  };
}
