/**
 * A machine with two remapping units (dmar0 covers bus 1, dmar1 the rest), two host-driven bus
 * masters (one behind each unit), the IOMMU interface module, and both PDOs enumerated.
 */
import { IoManager } from "../../src/ddi/io-manager.js";
import { Kernel } from "../../src/ddi/kernel.js";
import { RogueDevice } from "../../src/devices/rogue-device.js";
import { IommuInterface } from "../../src/hal/iommu-interface/iommu-interface.js";
import type { DEVICE_OBJECT } from "../../src/hal/wdm/device-object.js";
import type { DMA_IOMMU_INTERFACE_V1, DMA_IOMMU_INTERFACE_V2 } from "../../src/hal/wdm/iommu-interface.js";
import type { IommuInvalidateEvent } from "../../src/iommu/iommu-events.js";
import { Machine } from "../../src/machine/machine.js";
import type { RemappingMode } from "../../src/machine/machine-options.js";

export const BUS1_RID = 0x100;

export interface InterfaceFixture {
  readonly machine: Machine;
  readonly kernel: Kernel;
  readonly hal: IommuInterface;
  /** Behind dmar1 (bus 0). */
  readonly producer: RogueDevice;
  /** Behind dmar0 (bus 1). */
  readonly consumer: RogueDevice;
  readonly producerPdo: DEVICE_OBJECT;
  readonly consumerPdo: DEVICE_OBJECT;
  readonly v1: DMA_IOMMU_INTERFACE_V1;
  readonly v2: DMA_IOMMU_INTERFACE_V2;
  readonly invalidations: IommuInvalidateEvent[];
}

export function interfaceFixture(
  remapping: RemappingMode = "strict",
  external: readonly number[] = [],
): InterfaceFixture {
  const machine = new Machine({
    remapping,
    iommuUnits: [
      { name: "dmar0", requesters: [BUS1_RID] },
      { name: "dmar1", requesters: "rest" },
    ],
  });
  const producer = new RogueDevice({ name: "producer" });
  const consumer = new RogueDevice({ name: "consumer" });
  machine.pci.attach(producer, { busMaster: true });
  machine.pci.attach(consumer, { bus: 1, device: 0, busMaster: true });
  const io = machine.get(IoManager);
  io.enumerate({ external });
  const kernel = machine.get(Kernel);
  const invalidations: IommuInvalidateEvent[] = [];
  machine.events.on("iommu.invalidate", (event) => invalidations.push(event));
  const ex1 = kernel.IoGetIommuInterfaceEx(1, 0).InterfaceOut;
  const ex2 = kernel.IoGetIommuInterfaceEx(2, 0).InterfaceOut;
  if (ex1?.Version !== 1 || ex2?.Version !== 2) throw new Error("no IOMMU interface in this mode");
  return {
    machine,
    kernel,
    hal: machine.get(IommuInterface),
    producer,
    consumer,
    producerPdo: io.node(producer.requesterId).pdo,
    consumerPdo: io.node(consumer.requesterId).pdo,
    v1: ex1.V1,
    v2: ex2.V2,
    invalidations,
  };
}

/** `pages` frames the CPU never maps: device-only memory. */
export function deviceOnlyFrames(machine: Machine, pages: number): number[] {
  return machine.frames.allocate(pages, { owner: machine.frames.registerOwner("test.device-only") });
}

/** Frames of the IOMMU's own tables. */
export function tableFrames(machine: Machine): number {
  return machine.frames.framesOwnedBy(machine.frames.registerOwner("iommu"));
}
