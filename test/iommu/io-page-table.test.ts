import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { IoPermission } from "../../src/iommu/io-page-table.js";
import { GiB, HUGE_PAGE_SIZE, LARGE_PAGE_SIZE, MiB, PAGE_SIZE } from "../../src/platform/page.js";
import { PlatformError } from "../../src/platform/platform-error.js";
import { applyToModel, concreteOp, createRig, opArb, ReferenceMap, snapshotFrames } from "./iommu-fixture.js";

function errorCode(action: () => void): string | undefined {
  try {
    action();
    return undefined;
  } catch (error) {
    if (error instanceof PlatformError) return error.code;
    throw error;
  }
}

describe("IoPageTable", () => {
  it("agrees with a reference model over random map/unmap sequences, superpages included", () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 30 }), fc.boolean(), (ops, superpages) => {
        const rig = createRig();
        const domain = rig.iommu.createDomain({ superpages });
        const model = new ReferenceMap();
        for (const spec of ops) {
          const op = concreteOp(model, spec);
          if (op === undefined) continue;
          const expected = applyToModel(model, op);
          const actual = errorCode(() =>
            op.kind === "map"
              ? domain.map(op.iova, op.physical, op.size, op.permissions)
              : domain.unmap(op.iova, op.size),
          );
          expect(actual).toBe(expected);
          for (const address of model.probes()) {
            const want = model.find(address);
            const leaf = domain.lookup(address);
            if (want === undefined) {
              expect(leaf).toBeUndefined();
              continue;
            }
            expect(leaf).toBeDefined();
            expect(leaf!.physicalAddress + (address - leaf!.iova)).toBe(want.physical);
            expect(leaf!.permissions).toBe(want.permissions);
            if (!superpages) expect(leaf!.size).toBe(PAGE_SIZE);
            // The whole leaf is one linear run of the model with the same permissions.
            const last = model.find(leaf!.iova + leaf!.size - 1);
            expect(last?.physical).toBe(leaf!.physicalAddress + leaf!.size - 1);
            expect(last?.permissions).toBe(leaf!.permissions);
          }
        }
      }),
      { numRuns: 60 },
    );
  });

  it("uses 2 MiB and 1 GiB pages when IOVA, address and size allow, and 4 KiB pages otherwise", () => {
    const rig = createRig();
    const domain = rig.iommu.createDomain();
    domain.map(GiB, 4 * GiB, GiB + LARGE_PAGE_SIZE + PAGE_SIZE, IoPermission.ReadWrite);
    expect(domain.lookup(GiB + 5)?.size).toBe(HUGE_PAGE_SIZE);
    expect(domain.lookup(2 * GiB + 5)?.size).toBe(LARGE_PAGE_SIZE);
    expect(domain.lookup(2 * GiB + LARGE_PAGE_SIZE)?.size).toBe(PAGE_SIZE);
    // Misaligned physical address: no superpage possible.
    domain.map(8 * GiB, 4 * GiB + PAGE_SIZE, LARGE_PAGE_SIZE, IoPermission.Read);
    expect(domain.lookup(8 * GiB)?.size).toBe(PAGE_SIZE);
    const flat = rig.iommu.createDomain({ superpages: false });
    flat.map(GiB, 4 * GiB, LARGE_PAGE_SIZE, IoPermission.Read);
    expect(flat.lookup(GiB)?.size).toBe(PAGE_SIZE);
  });

  it("splits a superpage when part of it is unmapped, keeping the rest and its permissions", () => {
    const rig = createRig();
    const domain = rig.iommu.createDomain();
    domain.map(GiB, 4 * GiB, GiB, IoPermission.Write);
    domain.unmap(GiB + LARGE_PAGE_SIZE + 3 * PAGE_SIZE, PAGE_SIZE);
    expect(domain.lookup(GiB + LARGE_PAGE_SIZE + 3 * PAGE_SIZE)).toBeUndefined();
    expect(domain.lookup(GiB)).toEqual({
      iova: GiB,
      physicalAddress: 4 * GiB,
      size: LARGE_PAGE_SIZE,
      permissions: IoPermission.Write,
    });
    expect(domain.lookup(GiB + LARGE_PAGE_SIZE + 4 * PAGE_SIZE)).toEqual({
      iova: GiB + LARGE_PAGE_SIZE + 4 * PAGE_SIZE,
      physicalAddress: 4 * GiB + LARGE_PAGE_SIZE + 4 * PAGE_SIZE,
      size: PAGE_SIZE,
      permissions: IoPermission.Write,
    });
  });

  it("returns table frames to the allocator when an unmap covers a table's span, and all on destroy", () => {
    const rig = createRig();
    const owner = rig.frames.registerOwner("iommu");
    const before = rig.frames.framesOwnedBy(owner);
    const domain = rig.iommu.createDomain({ superpages: false });
    domain.map(GiB, 4 * GiB, LARGE_PAGE_SIZE, IoPermission.Read);
    // Root, level 3, level 2 and one level-1 table.
    expect(domain.pageTable.tableCount).toBe(4);
    expect(rig.frames.framesOwnedBy(owner)).toBe(before + 4);
    domain.unmap(GiB, PAGE_SIZE);
    expect(domain.pageTable.tableCount).toBe(4);
    domain.unmap(GiB + PAGE_SIZE, LARGE_PAGE_SIZE - PAGE_SIZE);
    // The partial unmaps never covered the whole level-1 span at once: Linux keeps the table.
    expect(domain.pageTable.tableCount).toBe(4);
    domain.map(GiB, 4 * GiB, LARGE_PAGE_SIZE, IoPermission.Read);
    domain.unmap(GiB, LARGE_PAGE_SIZE);
    expect(domain.pageTable.tableCount).toBe(3);
    expect(rig.frames.framesOwnedBy(owner)).toBe(before + 3);
    rig.iommu.destroyDomain(domain);
    expect(rig.frames.framesOwnedBy(owner)).toBe(before);
  });

  it("keeps its records in simulated RAM: the level-4 table bytes hold the entries", () => {
    const rig = createRig();
    const domain = rig.iommu.createDomain();
    domain.map(0, 4 * GiB, PAGE_SIZE, IoPermission.ReadWrite);
    const root = new Uint32Array(2);
    const bytes = new Uint8Array(root.buffer);
    rig.memory.read(domain.pageTable.rootAddress, bytes);
    // A non-leaf entry: R|W set, address of the level-3 table.
    expect(root[0]! & 3).toBe(3);
    expect(domain.pageTable.tableFrames()).toContain(root[1]! * 0x100000 + (root[0]! >>> 12));
  });

  it("rolls a map back completely when a table frame cannot be allocated", () => {
    const rig = createRig({}, [{ start: 0, end: 64 * MiB }]);
    const domain = rig.iommu.createDomain({ superpages: false });
    domain.map(GiB, 4 * GiB, PAGE_SIZE, IoPermission.Read);
    const hog = rig.frames.registerOwner("hog");
    // Leave two free frames: 6 MiB below 1 GiB need a new level-2 table and three level-1 tables.
    rig.frames.allocate(rig.frames.freeFrameCount() - 2, { owner: hog });
    const before = { frames: domain.pageTable.tableFrames(), free: rig.frames.freeFrameCount() };
    const bytes = snapshotFrames(rig, before.frames);
    expect(() =>
      domain.map(GiB - 3 * LARGE_PAGE_SIZE, 5 * GiB, 3 * LARGE_PAGE_SIZE, IoPermission.Read),
    ).toThrow(expect.objectContaining({ code: "no-memory" }));
    expect({ frames: domain.pageTable.tableFrames(), free: rig.frames.freeFrameCount() }).toEqual(before);
    expect(snapshotFrames(rig, before.frames)).toEqual(bytes);
    expect(domain.lookup(GiB - 3 * LARGE_PAGE_SIZE)).toBeUndefined();
    expect(domain.lookup(GiB)?.physicalAddress).toBe(4 * GiB);
  });
});
