import { describe, expect, it } from "vitest";
import { Hal } from "../../src/hal/hal.js";
import { description, deviceObject, BusMaster } from "../hal/support/hal-rig.js";
import { Machine } from "../../src/machine/machine.js";
import { verifierModule } from "../../src/verifier/verifier-module.js";
import { DmaVerifier } from "../../src/verifier/dma-verifier.js";
import { KernelMemory } from "../../src/platform/kernel-memory.js";
import { MemoryManager } from "../../src/platform/memory-manager.js";
import { DISPATCH_LEVEL } from "../../src/hal/wdm/irql.js";
import { formatDmaReport } from "../../src/verifier/dma-report.js";

describe("scratch", () => {
  it.each(["off", "strict"] as const)("works %s", (mode) => {
    const machine = new Machine({ remapping: mode }, [verifierModule({ mode: "log" })]);
    const hal = machine.get(Hal);
    const device = new BusMaster();
    machine.pci.attach(device, { busMaster: true });
    const pdo = deviceObject(device.requesterId);
    const { Adapter } = hal.getDmaAdapter(pdo, description());
    const ops = Adapter!.DmaOperations;
    const verifier = machine.get(DmaVerifier);
    expect(verifier.ledgerOf(Adapter)).toBeDefined();
    const kernel = machine.get(KernelMemory);
    const mm = machine.get(MemoryManager);
    const owner = machine.frames.registerOwner("t");
    const va = kernel.allocateNonPaged(8192, { owner, tag: "Test" });
    const mdl = mm.allocateMdl(va, 8192);
    mm.buildForNonPagedPool(mdl);
    machine.scheduler.runAtIrql(DISPATCH_LEVEL, () => {
      ops.GetScatterGatherList(Adapter!, pdo, mdl, va, 8192, (_d, _i, sgl) => {
        device.write(sgl.Elements[0]!.Address, new Uint8Array(100).fill(7));
        kernel.read(va, new Uint8Array(4));
        ops.PutScatterGatherList(Adapter!, sgl, true);
        ops.PutScatterGatherList(Adapter!, sgl, false);
      }, undefined, false);
    });
    const cb = ops.AllocateCommonBuffer(Adapter!, 100, true);
    kernel.write(cb.VirtualAddress + 100, new Uint8Array([1]));
    ops.FreeCommonBuffer(Adapter!, 100, cb.LogicalAddress, cb.VirtualAddress, true);
    ops.FreeCommonBuffer(Adapter!, 100, cb.LogicalAddress, cb.VirtualAddress, true);
    ops.PutDmaAdapter(Adapter!);
    console.log(verifier.violations.map((v) => `${v.parameters.map((p) => p.toString(16)).join(",")} ${v.explanation}`).join("\n"));
    console.log(formatDmaReport(verifier.report()));
    console.log(hal.resources());
  });
});
