import { Container } from "inversify";
import { describe, expect, it } from "vitest";
import { Iommu } from "../../src/iommu/iommu.js";
import iommuModule from "../../src/iommu/iommu-module.js";
import type { IommuOptions as IommuOptionsShape } from "../../src/iommu/iommu-options.js";
import { IommuOptions } from "../../src/iommu/tokens.js";
import { createTranslation, type DmaRemapper as DmaRemapperShape } from "../../src/platform/dma-remapper.js";
import { FrameAllocator } from "../../src/platform/frame-allocator.js";
import { IdentityRemapper } from "../../src/platform/identity-remapper.js";
import { GiB } from "../../src/platform/page.js";
import { PhysicalMemory } from "../../src/platform/physical-memory.js";
import { PlatformError } from "../../src/platform/platform-error.js";
import { Random } from "../../src/platform/random.js";
import { DmaRemapper } from "../../src/platform/tokens.js";
import { Counters } from "../../src/trace/counters.js";
import { EventBus } from "../../src/trace/event-bus.js";

function container(options: IommuOptionsShape): Container {
  const c = new Container();
  c.bind(PhysicalMemory).toConstantValue(new PhysicalMemory([{ start: 0, end: 4 * GiB }]));
  c.bind(Random).toConstantValue(new Random(1));
  c.bind(FrameAllocator).toSelf().inSingletonScope();
  c.bind(EventBus).toSelf().inSingletonScope();
  c.bind(Counters).toSelf().inSingletonScope();
  c.bind(IdentityRemapper).toSelf().inSingletonScope();
  c.bind(DmaRemapper).toService(IdentityRemapper);
  c.bind(IommuOptions).toConstantValue(options);
  c.load(iommuModule);
  return c;
}

const OPTIONS: IommuOptionsShape = {
  translation: true,
  units: [{ name: "dmar0", requesters: "rest" }],
  iotlbEntries: 64,
  faultRecords: 8,
};

describe("iommu module", () => {
  it("binds one Iommu and makes it the platform's DmaRemapper", () => {
    const c = container(OPTIONS);
    const remapper = c.get<DmaRemapperShape>(DmaRemapper);
    expect(remapper).toBeInstanceOf(Iommu);
    expect(c.get(Iommu)).toBe(remapper);
    const out = createTranslation();
    expect(remapper.translate(0x10, 0x1000, "read", out)).toBe(false);
    expect(out.faultReason).toBe(1);
  });

  it("rejects inconsistent options with a PlatformError", () => {
    const bad: Partial<IommuOptionsShape>[] = [
      { units: [] },
      { iotlbEntries: 0 },
      { faultRecords: 257 },
      {
        units: [
          { name: "a", requesters: "rest" },
          { name: "b", requesters: "rest" },
        ],
      },
      {
        units: [
          { name: "a", requesters: [1] },
          { name: "a", requesters: [2] },
        ],
      },
      {
        units: [
          { name: "a", requesters: [1] },
          { name: "b", requesters: [1] },
        ],
      },
      { units: [{ name: "a", requesters: [0x10000] }] },
    ];
    for (const patch of bad) {
      expect(() => container({ ...OPTIONS, ...patch }).get(Iommu), JSON.stringify(patch)).toThrow(
        PlatformError,
      );
    }
  });
});
