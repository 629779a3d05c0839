import fc from "fast-check";
import { describe, expect, it } from "vitest";
import legacyModule from "../../drivers/legacy/legacy-module.js";
import nicModule from "../../drivers/nic/nic-module.js";
import { HostMemory, patternBytes, sameBytes } from "../../samples/host-memory.js";
import { LegacyDmaDevice } from "../../src/devices/legacy-dma-device.js";
import { DirectMapping } from "../../src/hal/direct-mapping.js";
import { GiB, MiB, PAGE_SIZE } from "../../src/platform/page.js";
import type { Guest } from "../../src/virt/guest.js";
import type { Hypercalls as HypercallsShape } from "../../src/virt/hypercalls.js";
import { HOST_BOUNCE_OWNER, placeAperture } from "../../src/virt/paravirtual-host.js";
import { ParavirtualMapping } from "../../src/virt/paravirtual-mapping.js";
import { RegionAllocator } from "../../src/virt/region-allocator.js";
import { Hypercalls } from "../../src/virt/tokens.js";
import {
  assignNic,
  assignRogue,
  DmaLanding,
  errorCode,
  guest,
  host,
  legacyTraffic,
  nicTraffic,
  startGuest,
} from "./virt-fixture.js";

const MSI_START = 0xfee0_0000;
const MSI_END = 0xfef0_0000;
const REGION = 2 * MiB;

function strategy(vm: Guest): ParavirtualMapping {
  return vm.machine.get(DirectMapping) as ParavirtualMapping;
}

function hypercalls(vm: Guest): HypercallsShape {
  return vm.machine.get<HypercallsShape>(Hypercalls);
}

describe("paravirtual IOMMU with a hardware IOMMU on the host", () => {
  it("maps the region once per device and serves everything from it, without further hypercalls", () => {
    const vh = host();
    const vm = guest(vh, {
      dmaInterface: "paravirtual",
      regionBytes: REGION,
      modules: [nicModule, legacyModule],
    });
    const { nic, assignment } = assignNic(vh, vm);
    const chip = new LegacyDmaDevice();
    vh.host.pci.attach(chip);
    const chipAssignment = vh.hypervisor.assignDevice(vm, chip.requesterId);
    const landings = [assignment, chipAssignment].map((a) => new DmaLanding(vh.host, vm, a));
    const common: number[] = [];
    vm.machine.events.on("dma.map", (e) => {
      if (e.kind === "common-buffer") common.push(e.iova);
    });
    startGuest(vm);
    expect(nicTraffic(vh.host, vm, assignment.guestRequesterId, nic.mac, 5).intact).toBe(true);
    expect(legacyTraffic(vh.host, vm, chipAssignment.guestRequesterId, chip, 5).intact).toBe(true);
    expect(vm.hypercalls.hypercalls).toBe(2);
    expect(vm.counters.get("virt.hypercall.pv-attach")).toBe(2);
    expect(vm.counters.get("virt.pv.bounce.bytes")).toBeGreaterThan(0);
    for (const [i, a] of [assignment, chipAssignment].entries()) {
      const aperture = a.aperture!;
      expect(aperture.pages).toBe(REGION / PAGE_SIZE);
      expect(landings[i]!.foreign).toBe(0);
      expect(landings[i]!.lowestBusAddress).toBeGreaterThanOrEqual(aperture.base);
      expect(landings[i]!.highestBusAddress).toBeLessThan(aperture.base + REGION);
    }
    expect(common.length).toBeGreaterThan(0);
    const aperture = assignment.aperture!;
    expect(common.every((iova) => iova >= aperture.base && iova < aperture.base + REGION)).toBe(true);
    expect(strategy(vm).attachmentOf(assignment.guestRequesterId)?.kind).toBe("aperture");
  });

  it("lets the device reach the region and nothing else of the guest", () => {
    const vh = host();
    const vm = guest(vh, { dmaInterface: "paravirtual", regionBytes: REGION });
    const { rogue, assignment } = assignRogue(vh, vm);
    const outside = new HostMemory(vm.machine).allocate(64);
    expect(rogue.read(outside.physicalAddress, 64).outcome).toBe("blocked");
    const pv = strategy(vm);
    const attached = hypercalls(vm).pvAttach(
      assignment.guestRequesterId,
      pv.regionFirstPfn,
      pv.region.pages,
      GiB - 1,
    );
    expect(attached).toEqual({ kind: "aperture", base: GiB - REGION, pages: pv.region.pages });
    const data = patternBytes(128, 4);
    vm.memory.write(pv.regionFirstPfn * PAGE_SIZE + PAGE_SIZE, data);
    expect(sameBytes(rogue.read(GiB - REGION + PAGE_SIZE, 128).bytes, data)).toBe(true);
    expect(rogue.read(outside.physicalAddress, 64).outcome).toBe("blocked");
    expect(rogue.read(GiB, 16).outcome).toBe("blocked");
    // A narrower device moves the aperture down; the old window is gone.
    const lower = hypercalls(vm).pvAttach(
      assignment.guestRequesterId,
      pv.regionFirstPfn,
      pv.region.pages,
      16 * MiB - 1,
    );
    expect(lower.kind === "aperture" && lower.base).toBe(14 * MiB);
    expect(rogue.read(GiB - REGION + PAGE_SIZE, 16).outcome).toBe("blocked");
    expect(sameBytes(rogue.read(14 * MiB + PAGE_SIZE, 128).bytes, data)).toBe(true);
  });

  it("places every aperture below the device's reach, below 4 GiB, clear of the MSI window (property)", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 16_384 }),
        fc.oneof(
          fc.constantFrom(2 ** 24 - 1, 2 ** 32 - 1, 2 ** 64 - 1),
          fc.integer({ min: 2 ** 26, max: 2 ** 40 }),
        ),
        (pages, limit) => {
          const size = pages * PAGE_SIZE;
          const top = Math.min(limit, 4 * GiB - 1);
          if (size > top - PAGE_SIZE - 2 * MiB) return;
          const base = placeAperture(pages, limit);
          expect(base % PAGE_SIZE).toBe(0);
          expect(base).toBeGreaterThanOrEqual(PAGE_SIZE);
          expect(base + size - 1).toBeLessThanOrEqual(top);
          expect(base + size <= MSI_START || base >= MSI_END).toBe(true);
        },
      ),
    );
    expect(errorCode(() => placeAperture(4096, 16 * MiB - 1))).toBe("no-memory");
  });

  it("refuses hypercalls with frames that are not the guest's, or for devices it was not given", () => {
    const vh = host();
    const vm = guest(vh, { dmaInterface: "paravirtual", regionBytes: REGION });
    const { assignment } = assignRogue(vh, vm);
    const calls = hypercalls(vm);
    const rid = assignment.guestRequesterId;
    expect(errorCode(() => calls.pvAttach(rid, vm.memory.limit / PAGE_SIZE - 1, 4, GiB))).toBe(
      "out-of-range",
    );
    expect(calls.pvAttach(0x0f8, 1, 1, GiB)).toEqual({ kind: "native" });
    expect(errorCode(() => calls.pvMap(0x0f8, { pfns: [1], offset: 0, length: 8 }, true, GiB))).toBe(
      "bad-handle",
    );
    expect(errorCode(() => calls.pvSync(rid, 0x1234_5000, { pfns: [1], offset: 0, length: 8 }, true))).toBe(
      "bad-handle",
    );
    expect(errorCode(() => calls.pvCoherent(rid, 10, 1, GiB))).toBe("bad-state");
    expect(vm.hypercalls.hypercalls).toBe(1);
  });
});

describe("paravirtual IOMMU on a host without an IOMMU: host bouncing", () => {
  it("bounces each transfer below the device's reach, a hypercall at each map and each sync", () => {
    const vh = host("off", {}, 8 * GiB);
    const vm = guest(vh, {
      dmaInterface: "paravirtual",
      regionBytes: REGION,
      modules: [nicModule, legacyModule],
    });
    const { nic, assignment } = assignNic(vh, vm);
    const chip = new LegacyDmaDevice();
    vh.host.pci.attach(chip);
    const chipAssignment = vh.hypervisor.assignDevice(vm, chip.requesterId);
    expect(chipAssignment.mode).toBe("unprotected");
    const landings = [assignment, chipAssignment].map(
      (a) => new DmaLanding(vh.host, vm, a, [HOST_BOUNCE_OWNER]),
    );
    startGuest(vm);
    expect(nicTraffic(vh.host, vm, assignment.guestRequesterId, nic.mac, 6).intact).toBe(true);
    expect(legacyTraffic(vh.host, vm, chipAssignment.guestRequesterId, chip, 6).intact).toBe(true);
    const maps = vm.counters.get("virt.hypercall.pv-map");
    expect(maps).toBeGreaterThan(0);
    expect(vm.counters.get("virt.hypercall.pv-sync")).toBe(maps);
    expect(vm.counters.get("virt.hypercall.pv-coherent")).toBeGreaterThan(0);
    expect(vh.hypervisor.liveBounceBuffers).toBe(0);
    expect(vh.host.frames.framesOwnedBy(vh.host.frames.registerOwner(HOST_BOUNCE_OWNER))).toBe(0);
    expect(landings.every((l) => l.foreign === 0 && l.pages > 0)).toBe(true);
    expect(landings[1]!.highestBusAddress).toBeLessThan(4 * GiB);
    let above = 0;
    vm.memory.forEachBacking((_pfn, hostPfn) => {
      if (hostPfn * PAGE_SIZE >= 4 * GiB) above++;
    });
    expect(above).toBeGreaterThan(0);
  });
});

describe("RegionAllocator", () => {
  it("hands out disjoint aligned runs inside the region and takes them back (property)", () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ count: fc.integer({ min: 1, max: 20 }), alignment: fc.constantFrom(1, 2, 8) }), {
          maxLength: 40,
        }),
        fc.array(fc.boolean(), { maxLength: 40 }),
        (requests, frees) => {
          const region = new RegionAllocator(64);
          const used = new Uint8Array(64);
          const live: [number, number][] = [];
          requests.forEach(({ count, alignment }, i) => {
            const first = region.allocate(count, alignment);
            if (first !== undefined) {
              expect(first % alignment).toBe(0);
              expect(first + count).toBeLessThanOrEqual(64);
              expect(used.subarray(first, first + count).every((u) => u === 0)).toBe(true);
              used.fill(1, first, first + count);
              live.push([first, count]);
            }
            if (frees[i] && live.length > 0) {
              const [at, n] = live.shift()!;
              region.free(at, n);
              used.fill(0, at, at + n);
            }
            expect(region.pagesInUse).toBe(used.reduce((a, b) => a + b, 0));
          });
        },
      ),
    );
  });

  it("refuses bad requests and double frees, changing nothing", () => {
    const region = new RegionAllocator(8);
    const first = region.allocate(4)!;
    expect(errorCode(() => region.free(first + 4, 2))).toBe("double-free");
    expect(errorCode(() => region.free(6, 4))).toBe("out-of-range");
    expect(errorCode(() => region.allocate(0))).toBe("bad-length");
    expect(region.allocate(5)).toBeUndefined();
    expect(region.pagesInUse).toBe(4);
    expect(errorCode(() => new RegionAllocator(0))).toBe("bad-length");
  });
});
