/**
 * The type1 backend under random MAP_DMA / UNMAP_DMA sequences (fast-check): whatever the calls,
 * the mappings stay sorted and disjoint, the IOMMU domain translates exactly them to the
 * process's frames with their permissions, the pinned memory is exactly their pages, and a
 * refused call changes nothing.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { DmaEngineDevice } from "../../src/devices/dma-engine-device.js";
import { Machine } from "../../src/machine/machine.js";
import { MiB, PAGE_SIZE } from "../../src/platform/page.js";
import { ProcessManager } from "../../src/platform/process-manager.js";
import { Vfio } from "../../src/virt/vfio/vfio.js";
import { VFIO_DMA_MAP_FLAG_READ, VFIO_TYPE1v2_IOMMU } from "../../src/virt/vfio/vfio-constants.js";
import { VfioError } from "../../src/virt/vfio/vfio-error.js";
import type { VfioDmaMapping } from "../../src/virt/vfio/vfio-iommu-type1.js";
import { vfioModule } from "../../src/virt/vfio/vfio-module.js";

const IOVA_BASE = 0x4000_0000;
const IOVA_PAGES = 1024;

type Op =
  | {
      readonly kind: "map";
      readonly buffer: number;
      readonly page: number;
      readonly pages: number;
      readonly iovaPage: number;
      readonly flags: number;
    }
  | { readonly kind: "unmap"; readonly iovaPage: number; readonly pages: number }
  /** UNMAP_DMA over an existing mapping (the n-th, modulo their count), plus `extra` pages after it. */
  | { readonly kind: "unmapMapping"; readonly index: number; readonly extra: number };

const opArbitrary: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    kind: fc.constant("map" as const),
    buffer: fc.integer({ min: 0, max: 2 }),
    page: fc.integer({ min: 0, max: 600 }),
    pages: fc.oneof(fc.integer({ min: 0, max: 20 }), fc.constantFrom(512, 513)),
    iovaPage: fc.oneof(fc.integer({ min: 0, max: IOVA_PAGES - 1 }), fc.constantFrom(0, 512)),
    flags: fc.integer({ min: 0, max: 3 }),
  }),
  fc.record({
    kind: fc.constant("unmap" as const),
    iovaPage: fc.integer({ min: 0, max: IOVA_PAGES - 1 }),
    pages: fc.integer({ min: 0, max: 600 }),
  }),
  fc.record({
    kind: fc.constant("unmapMapping" as const),
    index: fc.nat(),
    extra: fc.integer({ min: 0, max: 40 }),
  }),
);

describe("VFIO type1 backend (property)", () => {
  it("keeps mappings, the domain and the pins consistent through any call sequence", () => {
    const seen = { maps: 0, unmapped: 0, refused: 0 };
    fc.assert(
      fc.property(fc.array(opArbitrary, { minLength: 1, maxLength: 30 }), (ops) => {
        const machine = new Machine({ remapping: "strict", memory: 256 * MiB }, [
          vfioModule({ dmaEntryLimit: 6 }),
        ]);
        const rid = machine.pci.attach(new DmaEngineDevice({ channels: 1 }));
        const process = machine.get(ProcessManager).create("app", { lockedMemoryLimit: 3 * MiB });
        // Small pages, 2 MiB pages, and small pages followed by a guard page.
        const buffers = [
          process.allocate(256 * 1024),
          process.allocate(4 * MiB, { largePages: true }),
          process.allocate(16 * 1024),
        ];
        const vfio = machine.get(Vfio);
        vfio.bind(rid);
        const container = vfio.openContainer(process);
        vfio.openGroup(vfio.groupOf(rid)).setContainer(container);
        container.setIommu(VFIO_TYPE1v2_IOMMU);
        const domain = container.domain!;

        for (const op of ops) {
          const before = [...container.mappings];
          const pinned = process.pinnedBytes;
          const target =
            op.kind === "unmapMapping" ? before[op.index % Math.max(1, before.length)] : undefined;
          const iova =
            op.kind === "unmapMapping" ? (target?.iova ?? IOVA_BASE) : IOVA_BASE + op.iovaPage * PAGE_SIZE;
          const size =
            op.kind === "unmapMapping"
              ? (target?.size ?? PAGE_SIZE) + op.extra * PAGE_SIZE
              : op.pages * PAGE_SIZE;
          let refused = false;
          try {
            if (op.kind === "map") {
              container.mapDma({
                vaddr: buffers[op.buffer]! + op.page * PAGE_SIZE,
                iova,
                size,
                flags: op.flags,
              });
              seen.maps++;
              expect(before.some((m) => m.iova < iova + size && iova < m.iova + m.size)).toBe(false);
            } else {
              const inside = before.filter((m) => m.iova >= iova && m.iova + m.size <= iova + size);
              expect(container.unmapDma({ iova, size })).toBe(inside.reduce((sum, m) => sum + m.size, 0));
              if (inside.length > 0) seen.unmapped++;
            }
          } catch (error) {
            if (!(error instanceof VfioError)) throw error;
            refused = true;
            seen.refused++;
          }
          if (refused) {
            expect(container.mappings).toEqual(before);
            expect(process.pinnedBytes).toBe(pinned);
          }
          checkConsistent(container.mappings, domain, process, IOVA_BASE, IOVA_PAGES);
        }
        container.close();
        expect(process.pinnedBytes).toBe(0);
        expect(machine.iommu.attachment(rid)).toBeUndefined();
      }),
      { numRuns: 100, seed: 3 },
    );
    // The runs were not vacuous: calls succeeded, removed mappings and were refused.
    expect(seen.maps).toBeGreaterThan(20);
    expect(seen.unmapped).toBeGreaterThan(10);
    expect(seen.refused).toBeGreaterThan(30);
  });
});

interface Translator {
  lookup(iova: number): { iova: number; physicalAddress: number; permissions: number } | undefined;
}

interface Frames {
  translate(va: number): number;
  readonly pinnedBytes: number;
}

function checkConsistent(
  mappings: readonly VfioDmaMapping[],
  domain: Translator,
  process: Frames,
  base: number,
  pages: number,
): void {
  for (let i = 1; i < mappings.length; i++) {
    expect(mappings[i - 1]!.iova + mappings[i - 1]!.size).toBeLessThanOrEqual(mappings[i]!.iova);
  }
  const pinnedPages = new Set<number>();
  for (const m of mappings) {
    for (let offset = 0; offset < m.size; offset += PAGE_SIZE) pinnedPages.add(m.vaddr + offset);
    for (const offset of [0, Math.floor(m.size / PAGE_SIZE / 2) * PAGE_SIZE, m.size - PAGE_SIZE]) {
      const leaf = domain.lookup(m.iova + offset);
      expect(leaf).toBeDefined();
      expect(leaf!.physicalAddress + (m.iova + offset - leaf!.iova)).toBe(
        process.translate(m.vaddr + offset),
      );
      const read = (m.flags & VFIO_DMA_MAP_FLAG_READ) !== 0;
      expect(leaf!.permissions).toBe((read ? 1 : 0) | (m.flags & 2));
    }
  }
  expect(process.pinnedBytes).toBe(pinnedPages.size * PAGE_SIZE);
  for (let page = 0; page < pages; page += 37) {
    const iova = base + page * PAGE_SIZE;
    const mapped = mappings.some((m) => iova >= m.iova && iova < m.iova + m.size);
    expect(domain.lookup(iova) !== undefined).toBe(mapped);
  }
}
