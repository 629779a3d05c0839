import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { IoPermission } from "../../src/iommu/io-page-table.js";
import type { IommuDomain } from "../../src/iommu/iommu-domain.js";
import { createTranslation } from "../../src/platform/dma-remapper.js";
import { GiB, LARGE_PAGE_SIZE, PAGE_SIZE } from "../../src/platform/page.js";
import { requesterId } from "../../src/platform/pci-address.js";
import { PlatformError } from "../../src/platform/platform-error.js";
import { createRig, type Rig, snapshotFrames, translate } from "./iommu-fixture.js";

const NIC = requesterId(0, 2, 0);
const DISK = requesterId(0, 3, 0);

interface World {
  rig: Rig;
  domain: IommuDomain;
  idle: IommuDomain;
  dead: IommuDomain;
  foreign: IommuDomain;
}

function world(): World {
  const rig = createRig({
    units: [
      { name: "dmar0", requesters: [NIC, DISK] },
      { name: "dmar1", requesters: [requesterId(1, 0, 0)] },
    ],
  });
  const domain = rig.iommu.createDomain();
  domain.map(0x10_0000, 4 * GiB, 4 * PAGE_SIZE, IoPermission.ReadWrite);
  domain.map(0x40_0000, 5 * GiB, LARGE_PAGE_SIZE, IoPermission.Read);
  rig.iommu.attach(NIC, domain);
  translate(rig, NIC, 0x10_0000, "read");
  translate(rig, NIC, 0x99_0000, "read");
  const idle = rig.iommu.createDomain();
  const dead = rig.iommu.createDomain();
  rig.iommu.destroyDomain(dead);
  const foreign = createRig().iommu.createDomain();
  return { rig, domain, idle, dead, foreign };
}

/** Everything a caller could observe: table bytes, frames, lookups, caches, fault state. */
function observe({ rig, domain, idle }: World): unknown {
  const unit = rig.iommu.units[0]!;
  const owner = rig.frames.registerOwner("iommu");
  const rootPfn = unit.rootTableAddress / PAGE_SIZE;
  const tables = [...domain.pageTable.tableFrames(), ...idle.pageTable.tableFrames(), rootPfn];
  const probes = [0x10_0000, 0x10_3000, 0x10_4000, 0x40_0000, 0x5f_f000, 0x60_0000].map((a) =>
    domain.lookup(a),
  );
  return {
    tables: snapshotFrames(rig, tables),
    context: unit.readContextEntry(NIC),
    owned: rig.frames.framesOwnedBy(owner),
    free: rig.frames.freeFrameCount(),
    probes,
    iotlb: rig.iommu.units.map((u) => u.iotlbSize),
    faults: unit.faults.status,
    attachments: [NIC, DISK].map((rid) => {
      const attachment = rig.iommu.attachment(rid);
      return typeof attachment === "object" ? attachment.id : attachment;
    }),
    dids: [domain.domainId(0), domain.domainId(1), idle.domainId(0)],
    counters: rig.counters.snapshot("iommu.invalidate"),
  };
}

function expectRejected(w: World, action: () => void): void {
  const before = observe(w);
  expect(action).toThrow(PlatformError);
  expect(observe(w)).toEqual(before);
}

const badNumber = fc.constantFrom(-PAGE_SIZE, -1, 0.5, 4096.5, Number.NaN, Infinity, 2 ** 53, 2 ** 60, 123);
const badCount = fc.constantFrom(-1, 0, 0.5, Number.NaN, Infinity, 2 ** 53, 2 ** 60);

describe("bad input leaves every structure unchanged", () => {
  it("rejects malformed addresses and sizes for map, unmap and flushRange", () => {
    const w = world();
    fc.assert(
      fc.property(badNumber, badCount, fc.integer({ min: 0, max: 3 }), (bad, count, position) => {
        const args = [0x80_0000, 6 * GiB, PAGE_SIZE];
        args[Math.min(position, 2)] = bad;
        expectRejected(w, () => w.domain.map(args[0]!, args[1]!, args[2]!, IoPermission.Read));
        expectRejected(w, () =>
          w.domain.unmap(position % 2 === 0 ? bad : 0x10_0000, position % 2 === 0 ? PAGE_SIZE : bad),
        );
        expectRejected(w, () =>
          w.rig.iommu.flushRange(w.domain, position % 2 === 0 ? bad : 0, position % 2 === 0 ? 1 : count),
        );
      }),
      { numRuns: 40 },
    );
  });

  it("rejects semantic errors of the software interface", () => {
    const w = world();
    const { rig, domain, idle, dead, foreign } = w;
    const unit = rig.iommu.units[0]!;
    const cases: [string, () => void][] = [
      ["size 0", () => domain.map(0x80_0000, 6 * GiB, 0, IoPermission.Read)],
      [
        "IOVA range beyond 2^48",
        () => domain.map(2 ** 48 - PAGE_SIZE, 6 * GiB, 2 * PAGE_SIZE, IoPermission.Read),
      ],
      ["physical beyond 2^52", () => domain.map(0x80_0000, 2 ** 52, PAGE_SIZE, IoPermission.Read)],
      ["no permission", () => domain.map(0x80_0000, 6 * GiB, PAGE_SIZE, 0 as IoPermission)],
      ["bad permission", () => domain.map(0x80_0000, 6 * GiB, PAGE_SIZE, 7 as IoPermission)],
      ["map over a mapping", () => domain.map(0x10_2000, 6 * GiB, PAGE_SIZE, IoPermission.Read)],
      [
        "map over the tail of a range",
        () => domain.map(0x0f_e000, 6 * GiB, 4 * PAGE_SIZE, IoPermission.Read),
      ],
      ["map inside a superpage", () => domain.map(0x40_5000, 6 * GiB, PAGE_SIZE, IoPermission.Read)],
      ["map a superpage over pages", () => domain.map(0, 6 * GiB, LARGE_PAGE_SIZE, IoPermission.Read)],
      ["unmap a hole", () => domain.unmap(0x20_0000, PAGE_SIZE)],
      ["unmap past the end", () => domain.unmap(0x10_0000, 5 * PAGE_SIZE)],
      ["unmap a superpage and a hole", () => domain.unmap(0x5f_f000, 2 * PAGE_SIZE)],
      ["flush a foreign domain", () => rig.iommu.flushRange(foreign, 0, 1)],
      ["flush a destroyed domain", () => rig.iommu.flushDomain(dead)],
      ["flush 0 pages", () => rig.iommu.flushRange(domain, 0, 0)],
      ["attach a foreign domain", () => rig.iommu.attach(DISK, foreign)],
      ["attach a destroyed domain", () => rig.iommu.attach(DISK, dead)],
      ["attach twice", () => rig.iommu.attach(NIC, domain)],
      ["attach a negative requester", () => rig.iommu.attach(-1, idle)],
      ["attach a 17-bit requester", () => rig.iommu.attach(0x1_0000, idle)],
      ["attach a fractional requester", () => rig.iommu.attach(2.5, idle)],
      ["attach a requester no unit covers", () => rig.iommu.attach(requesterId(9, 0, 0), idle)],
      [
        "FPD not a boolean",
        () => rig.iommu.attach(DISK, idle, { faultProcessingDisable: 1 as unknown as boolean }),
      ],
      ["detach a detached device", () => rig.iommu.detach(DISK)],
      ["destroy an attached domain", () => rig.iommu.destroyDomain(domain)],
      ["destroy twice", () => rig.iommu.destroyDomain(dead)],
      ["map on a destroyed domain", () => dead.map(0, 6 * GiB, PAGE_SIZE, IoPermission.Read)],
      ["invalidate an unknown domain id", () => unit.invalidateIotlbDomain(77)],
      ["invalidate a domain id out of range", () => unit.invalidateIotlbDomain(0x1_0000)],
      ["page invalidation with a bad mask", () => unit.invalidateIotlbPages(domain.domainId(0), 0, 19)],
      [
        "page invalidation misaligned to its mask",
        () => unit.invalidateIotlbPages(domain.domainId(0), PAGE_SIZE, 1),
      ],
      ["page invalidation beyond MGAW", () => unit.invalidateIotlbPages(domain.domainId(0), 2 ** 48, 0)],
      ["context invalidation of a bad requester", () => unit.invalidateContextDevice(-5)],
      ["release a reserved domain id", () => unit.releaseDomainId(1)],
      ["translate for a bad requester", () => rig.iommu.translate(0x2_0000, 0, "read", createTranslation())],
      ["translate a negative address", () => rig.iommu.translate(NIC, -4096, "read", createTranslation())],
      ["translate a fractional address", () => rig.iommu.translate(NIC, 0.5, "write", createTranslation())],
      ["translate a bad access", () => rig.iommu.translate(NIC, 0, "exec" as "read", createTranslation())],
      ["read a fault record out of range", () => unit.faults.read(8)],
    ];
    for (const [name, action] of cases) {
      const before = observe(w);
      expect(action, name).toThrow(PlatformError);
      expect(observe(w), name).toEqual(before);
    }
  });

  it("leaves a multi-page map that hits a mapping halfway without any of its pages", () => {
    const { domain } = world();
    expect(() => domain.map(0x0f_0000, 6 * GiB, 0x20 * PAGE_SIZE, IoPermission.Read)).toThrow(
      /already mapped/,
    );
    expect(domain.lookup(0x0f_0000)).toBeUndefined();
    expect(domain.lookup(0x0f_f000)).toBeUndefined();
  });
});
