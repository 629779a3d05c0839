/**
 * VFIO as a user-space driver uses it: binding, groups, containers, the type1 backend, device
 * handles, noiommu, and the naive pagemap path it replaces (seed 003). Errors are checked by
 * errno, and every refused call must leave the container and the process's pinned memory as
 * they were.
 */
import { describe, expect, it } from "vitest";
import legacyModule from "../../drivers/legacy/legacy-module.js";
import { IOVA, runNaive, runVfio } from "../../samples/user-dma-sample.js";
import { IoManager } from "../../src/ddi/io-manager.js";
import { DmaEngineDevice } from "../../src/devices/dma-engine-device.js";
import {
  CHANNEL_BASE,
  ChannelControl,
  ChannelRegister,
  DmaEngineRegister,
} from "../../src/devices/dma-engine-registers.js";
import { LegacyDmaDevice } from "../../src/devices/legacy-dma-device.js";
import { FaultReason } from "../../src/iommu/fault-reason.js";
import { Machine } from "../../src/machine/machine.js";
import type { MachineOptions, RemappingMode } from "../../src/machine/machine-options.js";
import { MiB, PAGE_SIZE } from "../../src/platform/page.js";
import { PciConfigOffset } from "../../src/platform/pci-config-space.js";
import type { ProcessAddressSpace } from "../../src/platform/process-address-space.js";
import { ProcessManager } from "../../src/platform/process-manager.js";
import { forEachMode } from "../../src/testing/index.js";
import { Pagemap } from "../../src/virt/vfio/pagemap.js";
import { UioPciGeneric } from "../../src/virt/vfio/uio-device.js";
import type { VfioOptions } from "../../src/virt/vfio/vfio.js";
import { Vfio } from "../../src/virt/vfio/vfio.js";
import {
  VFIO_DMA_MAP_FLAG_READ,
  VFIO_DMA_MAP_FLAG_WRITE,
  VFIO_GROUP_FLAGS_CONTAINER_SET,
  VFIO_GROUP_FLAGS_VIABLE,
  VFIO_NOIOMMU_IOMMU,
  VFIO_PCI_BAR0_REGION_INDEX,
  VFIO_PCI_CONFIG_REGION_INDEX,
  VFIO_TYPE1_IOMMU,
  VFIO_TYPE1v2_IOMMU,
} from "../../src/virt/vfio/vfio-constants.js";
import type { VfioContainer } from "../../src/virt/vfio/vfio-container.js";
import { type Errno, VfioError } from "../../src/virt/vfio/vfio-error.js";
import { deviceName, type VfioGroup } from "../../src/virt/vfio/vfio-group.js";
import { vfioModule } from "../../src/virt/vfio/vfio-module.js";

const RW = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE;

interface Rig {
  readonly machine: Machine;
  readonly vfio: Vfio;
  readonly process: ProcessAddressSpace;
  readonly rid: number;
  readonly engine: DmaEngineDevice;
}

function rig(options: MachineOptions = {}, vfioOptions: VfioOptions = {}, lockedMemoryLimit = 16 * MiB): Rig {
  const machine = new Machine({ remapping: "strict", memory: 512 * MiB, ...options }, [
    vfioModule(vfioOptions),
  ]);
  const engine = new DmaEngineDevice({ channels: 1 });
  const rid = machine.pci.attach(engine);
  const process = machine.get(ProcessManager).create("app", { lockedMemoryLimit });
  return { machine, vfio: machine.get(Vfio), process, rid, engine };
}

/** bind, container, group in it, type1v2: the documented sequence up to MAP_DMA. */
function ready(r: Rig): VfioContainer {
  return readyGroup(r).container!;
}

function readyGroup(r: Rig): VfioGroup {
  r.vfio.bind(r.rid);
  const container = r.vfio.openContainer(r.process);
  const group = r.vfio.openGroup(r.vfio.groupOf(r.rid));
  group.setContainer(container);
  container.setIommu(VFIO_TYPE1v2_IOMMU);
  return group;
}

function errnoOf(call: () => unknown): Errno | "none" {
  try {
    call();
  } catch (error) {
    if (error instanceof VfioError) return error.code;
    throw error;
  }
  return "none";
}

describe("user DMA through VFIO (seed 003)", () => {
  forEachMode((mode) => {
    const remapped = mode === "strict" || mode === "lazy";
    it(`the pagemap path ${remapped ? "faults" : "works"}, and VFIO works`, () => {
      const naive = runNaive(mode, 3);
      if (remapped) {
        expect(naive.intact).toBe(false);
        expect(naive.halted).toBe(true);
        expect(naive.faults[0]).toMatchObject({
          requesterId: naive.requesterId,
          address: naive.ringAddress,
          access: "read",
          reason: FaultReason.ReadNotPermitted,
        });
      } else {
        expect(naive.intact).toBe(true);
        expect(naive.faults).toEqual([]);
      }
      const vfio = runVfio(mode, 3);
      expect(vfio.intact).toBe(true);
      expect(vfio.faults).toEqual([]);
      expect(vfio.path).toBe(mode === "off" ? "noiommu" : "vfio");
      if (mode !== "off") {
        expect(vfio.ringAddress).toBe(IOVA.ring);
        expect(vfio.superpages).toBe(2);
        expect(vfio.revoked).toBe(true);
        expect(vfio.pinnedAfterClose).toBe(0);
      }
    });
  });
});

describe("VFIO containers and the type1 backend", () => {
  it("follows the documented sequence: status, info, map, device regions", () => {
    const r = rig();
    r.vfio.bind(r.rid);
    const container = r.vfio.openContainer(r.process);
    expect(container.getApiVersion()).toBe(0);
    expect(container.checkExtension(VFIO_TYPE1v2_IOMMU)).toBe(1);
    expect(container.checkExtension(VFIO_NOIOMMU_IOMMU)).toBe(1);
    expect(container.checkExtension(99)).toBe(0);
    const group = r.vfio.openGroup(r.vfio.groupOf(r.rid));
    expect(group.getStatus()).toEqual({ flags: VFIO_GROUP_FLAGS_VIABLE, viable: true, containerSet: false });
    group.setContainer(container);
    expect(group.getStatus().flags).toBe(VFIO_GROUP_FLAGS_VIABLE | VFIO_GROUP_FLAGS_CONTAINER_SET);
    expect(errnoOf(() => group.getDevice(deviceName(r.rid)))).toBe("EINVAL");
    container.setIommu(VFIO_TYPE1_IOMMU);
    const info = container.getInfo();
    expect(info.iovaPgsizes & (2 * MiB)).toBe(2 * MiB);
    expect(info.iovaRanges).toEqual([
      { start: 0, end: 0xfedf_ffff },
      { start: 0xfef0_0000, end: 2 ** 48 - 1 },
    ]);
    expect(info.dmaAvail).toBe(65535);
    const buffer = r.process.allocate(64 * 1024);
    container.mapDma({ vaddr: buffer, iova: 0x10_0000, size: 64 * 1024, flags: RW });
    expect(container.getInfo().dmaAvail).toBe(65534);
    expect(r.process.pinnedBytes).toBe(64 * 1024);
    const domain = container.domain!;
    expect(r.machine.iommu.attachment(r.rid)).toBe(domain);
    for (let offset = 0; offset < 64 * 1024; offset += PAGE_SIZE) {
      expect(domain.lookup(0x10_0000 + offset)?.physicalAddress).toBe(r.process.translate(buffer + offset));
    }
    const device = group.getDevice(deviceName(r.rid));
    expect(device.getRegionInfo(VFIO_PCI_BAR0_REGION_INDEX).size).toBe(4096);
    expect(device.regionRead32(VFIO_PCI_BAR0_REGION_INDEX, DmaEngineRegister.channelCount)).toBe(1);
    const command = device.regionRead32(VFIO_PCI_CONFIG_REGION_INDEX, PciConfigOffset.command);
    device.regionWrite32(VFIO_PCI_CONFIG_REGION_INDEX, PciConfigOffset.command, command | 4);
    expect(r.engine.config.busMasterEnabled).toBe(true);
    expect(errnoOf(() => device.regionRead32(VFIO_PCI_BAR0_REGION_INDEX, 4096))).toBe("EINVAL");
    expect(errnoOf(() => device.regionRead32(3, 0))).toBe("EINVAL");
    expect(errnoOf(() => group.getDevice(deviceName(r.rid)))).toBe("EBUSY");
    expect(errnoOf(() => group.unsetContainer())).toBe("EBUSY");
    device.close();
    expect(errnoOf(() => device.getInfo())).toBe("EBADF");
    group.close();
    // The last group left: the mappings, the pins and the device's domain are gone.
    expect(r.process.pinnedBytes).toBe(0);
    expect(container.mappings).toEqual([]);
    expect(r.machine.iommu.attachment(r.rid)).toBeUndefined();
    expect(domain.destroyed).toBe(true);
    expect(errnoOf(() => container.mapDma({ vaddr: buffer, iova: 0, size: PAGE_SIZE, flags: RW }))).toBe(
      "EINVAL",
    );
  });

  it("maps 2 MiB pages as 2 MiB superpages and counts pinned pages once per page", () => {
    const r = rig();
    const container = ready(r);
    const huge = r.process.allocate(4 * MiB, { largePages: true });
    container.mapDma({ vaddr: huge, iova: 0x4000_0000, size: 4 * MiB, flags: RW });
    container.mapDma({ vaddr: huge, iova: 0x8000_0000, size: 2 * MiB, flags: VFIO_DMA_MAP_FLAG_READ });
    const domain = container.domain!;
    expect(domain.lookup(0x4000_0000)).toMatchObject({ size: 2 * MiB, permissions: 3 });
    expect(domain.lookup(0x4020_0000)?.size).toBe(2 * MiB);
    expect(domain.lookup(0x8000_0000)).toMatchObject({ size: 2 * MiB, permissions: 1 });
    expect(r.process.pinnedBytes).toBe(4 * MiB);
    expect(container.unmapDma({ iova: 0x8000_0000, size: 2 * MiB })).toBe(2 * MiB);
    expect(r.process.pinnedBytes).toBe(4 * MiB);
    expect(container.unmapDma({ iova: 0, size: 2 ** 40 })).toBe(4 * MiB);
    expect(r.process.pinnedBytes).toBe(0);
    expect(domain.lookup(0x4000_0000)).toBeUndefined();
  });

  it("unmaps like type1v2: whole mappings only, the bytes removed, 0 for an empty range", () => {
    const r = rig();
    const container = ready(r);
    const buffer = r.process.allocate(3 * 16 * 1024);
    for (let i = 0; i < 3; i++) {
      container.mapDma({
        vaddr: buffer + i * 16 * 1024,
        iova: 0x100_0000 + i * 0x10_0000,
        size: 16 * 1024,
        flags: RW,
      });
    }
    expect(errnoOf(() => container.unmapDma({ iova: 0x100_0000, size: 8 * 1024 }))).toBe("EINVAL");
    expect(errnoOf(() => container.unmapDma({ iova: 0x100_1000, size: 0x20_0000 }))).toBe("EINVAL");
    expect(errnoOf(() => container.unmapDma({ iova: 0x100_0000, size: PAGE_SIZE, flags: 1 }))).toBe("EINVAL");
    expect(errnoOf(() => container.unmapDma({ iova: 0x100_0000, size: 0 }))).toBe("EINVAL");
    expect(container.mappings).toHaveLength(3);
    expect(container.unmapDma({ iova: 0x50_0000, size: 0x10_0000 })).toBe(0);
    expect(container.unmapDma({ iova: 0x100_0000, size: 0x20_0000 })).toBe(32 * 1024);
    expect(container.mappings.map((m) => m.iova)).toEqual([0x120_0000]);
    expect(r.process.pinnedBytes).toBe(16 * 1024);
  });

  it("refuses bad MAP_DMA input with VFIO's errno, changing nothing", () => {
    const r = rig({}, { dmaEntryLimit: 2 }, 1 * MiB);
    const container = ready(r);
    const buffer = r.process.allocate(512 * 1024);
    const big = r.process.allocate(2 * MiB);
    container.mapDma({ vaddr: buffer, iova: 0x10_0000, size: 64 * 1024, flags: RW });
    const cases: [Errno, () => unknown][] = [
      ["EINVAL", () => container.mapDma({ vaddr: buffer, iova: 0x20_0000, size: 0, flags: RW })],
      ["EINVAL", () => container.mapDma({ vaddr: buffer + 1, iova: 0x20_0000, size: PAGE_SIZE, flags: RW })],
      ["EINVAL", () => container.mapDma({ vaddr: buffer, iova: 0x20_0800, size: PAGE_SIZE, flags: RW })],
      ["EINVAL", () => container.mapDma({ vaddr: buffer, iova: 0x20_0000, size: PAGE_SIZE + 1, flags: RW })],
      ["EINVAL", () => container.mapDma({ vaddr: buffer, iova: 0x20_0000, size: PAGE_SIZE, flags: 4 })],
      [
        "EINVAL",
        () => container.mapDma({ vaddr: buffer, iova: 0xfeef_f000, size: 2 * PAGE_SIZE, flags: RW }),
      ],
      [
        "EINVAL",
        () => container.mapDma({ vaddr: buffer, iova: 2 ** 48 - PAGE_SIZE, size: 2 * PAGE_SIZE, flags: RW }),
      ],
      ["EINVAL", () => container.mapDma({ vaddr: -PAGE_SIZE, iova: 0x20_0000, size: PAGE_SIZE, flags: RW })],
      ["EEXIST", () => container.mapDma({ vaddr: buffer, iova: 0xf_0000, size: 0x2_0000, flags: RW })],
      ["EEXIST", () => container.mapDma({ vaddr: buffer, iova: 0x10_f000, size: PAGE_SIZE, flags: RW })],
      [
        "EFAULT",
        () => container.mapDma({ vaddr: buffer + 256 * 1024, iova: 0x20_0000, size: 512 * 1024, flags: RW }),
      ],
      [
        "EFAULT",
        () => container.mapDma({ vaddr: 0x7fff_ffff_f000, iova: 0x20_0000, size: 2 * PAGE_SIZE, flags: RW }),
      ],
      ["ENOMEM", () => container.mapDma({ vaddr: big, iova: 0x4000_0000, size: 2 * MiB, flags: RW })],
    ];
    for (const [expected, call] of cases) {
      const mappings = [...container.mappings];
      const pinned = r.process.pinnedBytes;
      expect(errnoOf(call)).toBe(expected);
      expect(container.mappings).toEqual(mappings);
      expect(r.process.pinnedBytes).toBe(pinned);
    }
    container.mapDma({
      vaddr: buffer + 64 * 1024,
      iova: 0x20_0000,
      size: PAGE_SIZE,
      flags: VFIO_DMA_MAP_FLAG_WRITE,
    });
    expect(
      errnoOf(() => container.mapDma({ vaddr: buffer, iova: 0x30_0000, size: PAGE_SIZE, flags: RW })),
    ).toBe("ENOSPC");
    const error = (() => {
      try {
        container.mapDma({ vaddr: big, iova: 0x4000_0000, size: 2 * MiB, flags: RW });
      } catch (e) {
        return e as VfioError;
      }
      return undefined;
    })();
    expect(error?.errno).toBe(-28);
    expect(error?.operation).toBe("VFIO_IOMMU_MAP_DMA");
  });

  it("refuses bad setup calls with VFIO's errno", () => {
    const r = rig();
    expect(errnoOf(() => r.vfio.openGroup(r.vfio.groupOf(r.rid)))).toBe("ENOENT");
    expect(errnoOf(() => r.vfio.bind(0x0708))).toBe("ENODEV");
    r.vfio.bind(r.rid);
    expect(errnoOf(() => r.vfio.bind(r.rid))).toBe("EBUSY");
    const container = r.vfio.openContainer(r.process);
    expect(errnoOf(() => container.setIommu(VFIO_TYPE1v2_IOMMU))).toBe("EINVAL");
    const group = r.vfio.openGroup(r.vfio.groupOf(r.rid));
    expect(errnoOf(() => r.vfio.openGroup(r.vfio.groupOf(r.rid)))).toBe("EBUSY");
    expect(errnoOf(() => r.vfio.unbind(r.rid))).toBe("EBUSY");
    expect(errnoOf(() => group.unsetContainer())).toBe("EINVAL");
    group.setContainer(container);
    expect(errnoOf(() => group.setContainer(r.vfio.openContainer(r.process)))).toBe("EINVAL");
    expect(errnoOf(() => container.setIommu(VFIO_NOIOMMU_IOMMU))).toBe("ENODEV");
    expect(errnoOf(() => container.setIommu(42))).toBe("ENODEV");
    container.setIommu(VFIO_TYPE1v2_IOMMU);
    expect(errnoOf(() => container.setIommu(VFIO_TYPE1v2_IOMMU))).toBe("EINVAL");
    expect(errnoOf(() => group.getDevice("0000:00:1f.7"))).toBe("ENODEV");
    expect(errnoOf(() => group.getDevice("not a device"))).toBe("ENODEV");
    container.close();
    expect(errnoOf(() => container.getInfo())).toBe("EBADF");
    expect(errnoOf(() => group.setContainer(container))).toBe("EBADF");
    expect(group.container).toBeUndefined();
  });

  it("keeps a device whose DMA a kernel driver owns away from user space (EBUSY)", () => {
    const machine = new Machine({ remapping: "strict", memory: 512 * MiB }, [vfioModule(), legacyModule]);
    const rid = machine.pci.attach(new LegacyDmaDevice());
    const io = machine.get(IoManager);
    io.enumerate();
    io.loadDrivers();
    expect(errnoOf(() => machine.get(Vfio).bind(rid))).toBe("EBUSY");
    expect(errnoOf(() => machine.get(UioPciGeneric).bind(rid))).toBe("EBUSY");
  });

  it("groups the functions of one slot: the group is viable only when all are bound", () => {
    const r = rig();
    const second = r.machine.pci.attach(new DmaEngineDevice({ channels: 1 }), { device: 1, function: 1 });
    const other = r.machine.pci.attach(new DmaEngineDevice({ channels: 1 }), { device: 2 });
    expect(r.vfio.groupOf(second)).toBe(r.vfio.groupOf(r.rid));
    expect(r.vfio.groupOf(other)).not.toBe(r.vfio.groupOf(r.rid));
    r.vfio.bind(r.rid);
    const container = r.vfio.openContainer(r.process);
    const group = r.vfio.openGroup(r.vfio.groupOf(r.rid));
    expect(group.devices).toEqual([r.rid, second]);
    expect(group.getStatus().viable).toBe(false);
    expect(errnoOf(() => group.setContainer(container))).toBe("EBUSY");
    r.vfio.bind(second);
    group.setContainer(container);
    r.vfio.bind(other);
    const otherGroup = r.vfio.openGroup(r.vfio.groupOf(other));
    otherGroup.setContainer(container);
    container.setIommu(VFIO_TYPE1v2_IOMMU);
    // One container, one domain: all three functions translate through it.
    const domain = container.domain!;
    for (const rid of [r.rid, second, other]) expect(r.machine.iommu.attachment(rid)).toBe(domain);
    otherGroup.unsetContainer();
    expect(r.machine.iommu.attachment(other)).toBeUndefined();
    expect(r.machine.iommu.attachment(r.rid)).toBe(domain);
  });

  it("has no IOMMU groups without remapping, unless the unsafe noiommu mode is on", () => {
    const off = rig({ remapping: "off" });
    expect(errnoOf(() => off.vfio.bind(off.rid))).toBe("EINVAL");
    const r = rig({ remapping: "off" }, { enableUnsafeNoiommuMode: true });
    expect(r.vfio.noiommu).toBe(true);
    r.vfio.bind(r.rid);
    const container = r.vfio.openContainer(r.process);
    expect(container.checkExtension(VFIO_TYPE1v2_IOMMU)).toBe(0);
    const group = r.vfio.openGroup(r.vfio.groupOf(r.rid));
    expect(group.path).toBe(`/dev/vfio/noiommu-${r.vfio.groupOf(r.rid)}`);
    group.setContainer(container);
    expect(errnoOf(() => container.setIommu(VFIO_TYPE1v2_IOMMU))).toBe("ENODEV");
    container.setIommu(VFIO_NOIOMMU_IOMMU);
    const buffer = r.process.allocate(PAGE_SIZE);
    expect(errnoOf(() => container.mapDma({ vaddr: buffer, iova: 0, size: PAGE_SIZE, flags: RW }))).toBe(
      "ENOTTY",
    );
    expect(group.getDevice(deviceName(r.rid)).getInfo().numRegions).toBe(9);
  });

  it("signals the device's interrupts to the handle's trigger", () => {
    const r = rig();
    const device = readyGroup(r).getDevice(deviceName(r.rid));
    const counts: number[] = [];
    device.setIrqs((count) => {
      counts.push(count);
      device.regionWrite32(VFIO_PCI_BAR0_REGION_INDEX, DmaEngineRegister.interruptStatus, 0xffffffff);
    });
    // A doorbell with no ring set up halts the channel, which interrupts.
    const control = CHANNEL_BASE + ChannelRegister.control;
    device.regionWrite32(
      VFIO_PCI_BAR0_REGION_INDEX,
      control,
      ChannelControl.enable | ChannelControl.interruptEnable,
    );
    device.regionWrite32(VFIO_PCI_BAR0_REGION_INDEX, CHANNEL_BASE + ChannelRegister.tail, 1);
    r.machine.runUntilIdle();
    expect(counts).toEqual([1]);
    expect(device.interrupts).toBe(1);
    device.setIrqs(undefined);
    device.regionWrite32(VFIO_PCI_BAR0_REGION_INDEX, control, ChannelControl.reset);
    device.regionWrite32(
      VFIO_PCI_BAR0_REGION_INDEX,
      control,
      ChannelControl.enable | ChannelControl.interruptEnable,
    );
    device.regionWrite32(VFIO_PCI_BAR0_REGION_INDEX, CHANNEL_BASE + ChannelRegister.tail, 1);
    r.machine.runUntilIdle();
    expect(counts).toEqual([1]);
    expect(errnoOf(() => device.setIrqs(5 as never))).toBe("EINVAL");
  });
});

describe("pagemap and uio_pci_generic", () => {
  it("reads present pages and their frames, 4 KiB and 2 MiB alike", () => {
    const r = rig();
    const small = r.process.allocate(PAGE_SIZE);
    const huge = r.process.allocate(2 * MiB, { largePages: true });
    const pagemap = new Pagemap(r.process);
    expect(pagemap.entry(small)).toEqual({ present: true, pfn: r.process.translate(small) / PAGE_SIZE });
    expect(pagemap.physicalAddress(huge + 5 * PAGE_SIZE + 7)).toBe(
      r.process.translate(huge) + 5 * PAGE_SIZE + 7,
    );
    expect(pagemap.word(small)).toBe((2n ** 63n) | BigInt(r.process.translate(small) / PAGE_SIZE));
    expect(pagemap.entry(small + PAGE_SIZE)).toEqual({ present: false, pfn: 0 });
    expect(pagemap.word(small + PAGE_SIZE)).toBe(0n);
    expect(() => pagemap.physicalAddress(small + PAGE_SIZE)).toThrow(/not present/);
  });

  it.each<[RemappingMode, string]>([
    ["off", "none"],
    ["passthrough", "identity"],
    ["strict", "dma"],
    ["lazy", "dma"],
  ])("leaves the device in its default domain with remapping %s (%s), and gives it back", (mode, kind) => {
    const r = rig({ remapping: mode });
    const uio = r.machine.get(UioPciGeneric).bind(r.rid);
    expect(uio.defaultDomain).toBe(kind);
    const attachment = r.machine.iommu.attachment(r.rid);
    if (kind === "identity") expect(attachment).toBe("passthrough");
    else if (kind === "dma") expect(attachment).toBeDefined();
    else expect(attachment).toBeUndefined();
    expect(uio.read32(DmaEngineRegister.channelCount)).toBe(1);
    expect(errnoOf(() => r.vfio.bind(r.rid))).toBe(mode === "off" ? "EINVAL" : "EBUSY");
    uio.unbind();
    expect(r.machine.iommu.attachment(r.rid)).toBeUndefined();
    expect(errnoOf(() => uio.read32(0))).toBe("EBADF");
    if (mode !== "off") r.vfio.bind(r.rid);
  });
});
