/** IO_ALLOCATION_ACTION: what an AdapterControl routine asks the HAL to keep (wdm.h values). */
export const KeepObject = 1;
export const DeallocateObject = 2;
export const DeallocateObjectKeepRegisters = 3;
export type IO_ALLOCATION_ACTION =
  | typeof KeepObject
  | typeof DeallocateObject
  | typeof DeallocateObjectKeepRegisters;
