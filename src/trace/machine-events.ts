/**
 * The typed event map of a machine's bus: event name -> listener arguments. Each layer adds its
 * own events by declaration merging, in a file of its own:
 *
 *   declare module "../trace/machine-events.js" {
 *     interface MachineEvents { "iommu.fault": [IommuFaultEvent] }
 *   }
 *
 * Payloads are plain data (numbers, strings), so exporters need no knowledge of the layers.
 */
// biome-ignore lint/suspicious/noEmptyInterface: filled by declaration merging in each layer.
export interface MachineEvents {}
