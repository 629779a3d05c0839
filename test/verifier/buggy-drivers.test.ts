/**
 * One buggy driver per violation class. For each: under the verifier in bug check mode the bug
 * stops the machine with 0xE6 and the exact four parameters; in log mode the same violation is
 * recorded first and the machine goes on; and without the verifier, what the bug does instead
 * (the HAL's own check, a leak, stale data, silent corruption).
 */
import { describe, expect, it } from "vitest";
import type { Kernel } from "../../src/ddi/kernel.js";
import { BugCheck, DRIVER_VERIFIER_DMA_VIOLATION } from "../../src/hal/wdm/bug-check.js";
import { FaultReason } from "../../src/iommu/fault-reason.js";
import type { MachineOptions } from "../../src/machine/machine-options.js";
import { PAGE_SIZE } from "../../src/platform/page.js";
import { testPattern } from "./dma-test-device.js";
import { AddressOutsideMdlDriver } from "./drivers/address-outside-mdl-driver.js";
import { BypassDriver } from "./drivers/bypass-driver.js";
import { CommonBufferOverrunDriver } from "./drivers/common-buffer-overrun-driver.js";
import { DeviceUnderrunDriver } from "./drivers/device-underrun-driver.js";
import { DirectionMismatchDriver } from "./drivers/direction-mismatch-driver.js";
import type { DmaTestDriver } from "./drivers/dma-test-driver.js";
import { DoubleFlushDriver } from "./drivers/double-flush-driver.js";
import { DoubleFreeChannelDriver } from "./drivers/double-free-channel-driver.js";
import { DoubleFreeCommonBufferDriver } from "./drivers/double-free-common-buffer-driver.js";
import { DoubleFreeMapRegistersDriver } from "./drivers/double-free-map-registers-driver.js";
import { DoubleMappingDriver } from "./drivers/double-mapping-driver.js";
import { DoublePutListDriver } from "./drivers/double-put-list-driver.js";
import { EarlyPutDriver } from "./drivers/early-put-driver.js";
import { FlushPastEndDriver } from "./drivers/flush-past-end-driver.js";
import { FreeMappedRegistersDriver } from "./drivers/free-mapped-registers-driver.js";
import { LeakAtUnloadDriver } from "./drivers/leak-at-unload-driver.js";
import { LeakedChannelDriver } from "./drivers/leaked-channel-driver.js";
import { LeakedCommonBufferDriver } from "./drivers/leaked-common-buffer-driver.js";
import { LeakedListDriver } from "./drivers/leaked-list-driver.js";
import { LeakedMapRegistersDriver } from "./drivers/leaked-map-registers-driver.js";
import { LengthPastMdlDriver } from "./drivers/length-past-mdl-driver.js";
import { NeverMappedFlushDriver } from "./drivers/never-mapped-flush-driver.js";
import { NotSystemMappedDriver } from "./drivers/not-system-mapped-driver.js";
import { NullAdapterDriver } from "./drivers/null-adapter-driver.js";
import { OverMaximumDriver } from "./drivers/over-maximum-driver.js";
import { PartialFlushDriver } from "./drivers/partial-flush-driver.js";
import { ReleasedAdapterDriver } from "./drivers/released-adapter-driver.js";
import { SecondChannelDriver } from "./drivers/second-channel-driver.js";
import { ShortGrantDriver } from "./drivers/short-grant-driver.js";
import { StaleReadDriver } from "./drivers/stale-read-driver.js";
import { UnalignedReceiveDriver } from "./drivers/unaligned-receive-driver.js";
import { UnflushedTransferDriver } from "./drivers/unflushed-transfer-driver.js";
import { UnknownVersionDriver } from "./drivers/unknown-version-driver.js";
import { UnlockedBufferDriver } from "./drivers/unlocked-buffer-driver.js";
import { VaBeforeMdlDriver } from "./drivers/va-before-mdl-driver.js";
import { WrongIrqlDriver } from "./drivers/wrong-irql-driver.js";
import { ZeroLengthMapDriver } from "./drivers/zero-length-map-driver.js";
import { type TestBuffer, VerifierRig } from "./verifier-rig.js";

type Parameters4 = readonly [number, number, number, number];

interface BugCase<D extends DmaTestDriver> {
  readonly name: string;
  readonly driver: new (kernel: Kernel) => D;
  readonly machine?: MachineOptions;
  /** Sets the rig up before the bug (buffers, driver knobs); returns what `act` and the checks need. */
  readonly setup?: (rig: VerifierRig<D>) => TestBuffer | undefined;
  /** Commits the bug. */
  readonly act: (rig: VerifierRig<D>, buffer: TestBuffer | undefined) => void;
  /** The exact bug check parameters. */
  readonly expected: (rig: VerifierRig<D>, buffer: TestBuffer | undefined) => Parameters4;
  /** Without the verifier: what the same bug does. */
  readonly without: (rig: VerifierRig<D>, buffer: TestBuffer | undefined, act: () => void) => void;
}

/** Builds a case with the driver's type carried through. */
function bug<D extends DmaTestDriver>(c: BugCase<D>): BugCase<DmaTestDriver> {
  return c as unknown as BugCase<DmaTestDriver>;
}

function bugCheckOf(act: () => void): BugCheck {
  try {
    act();
  } catch (error) {
    if (error instanceof BugCheck) return error;
    throw error;
  }
  throw new Error("expected a bug check");
}

function parametersOf(act: () => void): Parameters4 {
  const check = bugCheckOf(act);
  expect(check.code).toBe(DRIVER_VERIFIER_DMA_VIOLATION);
  return check.parameters;
}

const DIRECT: MachineOptions = { remapping: "off" };
const ADAPTER = 1;

const CASES: readonly BugCase<DmaTestDriver>[] = [
  bug({
    name: "0x03 common buffer freed twice",
    driver: DoubleFreeCommonBufferDriver,
    act: (rig) => rig.stop(),
    expected: (rig) => [0x03, 1, rig.driver.ring!.va, 0],
    without: (rig, _b, act) => expect(parametersOf(act)).toEqual([0x03, 1, rig.driver.ring!.va, 0]),
  }),
  bug({
    name: "0x04 adapter channel freed twice",
    driver: DoubleFreeChannelDriver,
    act: (rig) => rig.control(),
    expected: () => [0x04, 1, ADAPTER, 0],
    without: (_r, _b, act) => expect(parametersOf(act)).toEqual([0x04, 1, ADAPTER, 0]),
  }),
  bug({
    name: "0x05 map registers freed twice",
    driver: DoubleFreeMapRegistersDriver,
    act: (rig) => rig.control(),
    expected: () => [0x05, 2, ADAPTER, 0],
    without: (_r, _b, act) => expect(parametersOf(act)).toEqual([0x05, 2, ADAPTER, 0]),
  }),
  bug({
    name: "0x06 scatter/gather list put twice",
    driver: DoublePutListDriver,
    setup: (rig) => rig.buffer(4096),
    act: (rig, buffer) => rig.read(buffer!),
    expected: () => [0x06, 1, 2, 0],
    without: (_r, _b, act) => expect(parametersOf(act)).toEqual([0x06, 0, 1, 0]),
  }),
  bug({
    name: "0x07 adapter put with a common buffer outstanding",
    driver: LeakedCommonBufferDriver,
    act: (rig) => rig.stop(),
    expected: () => [0x07, ADAPTER, 1, 0],
    without: (rig, _b, act) => {
      act();
      expect(rig.hal.resources()).toMatchObject({ adaptersOpen: 0, commonBuffers: 1 });
    },
  }),
  bug({
    name: "0x08 adapter put with its channel held",
    driver: LeakedChannelDriver,
    act: (rig) => {
      rig.control();
      rig.stop();
    },
    expected: () => [0x08, ADAPTER, 1, 0],
    without: (rig, _b, act) => {
      act();
      expect(rig.hal.resources()).toMatchObject({ adaptersOpen: 0, channelsHeld: 1 });
    },
  }),
  bug({
    name: "0x09 adapter put with map registers held",
    driver: LeakedMapRegistersDriver,
    act: (rig) => {
      rig.control();
      rig.stop();
    },
    expected: () => [0x09, ADAPTER, 3, 0],
    without: (rig, _b, act) => {
      act();
      expect(rig.hal.resources()).toMatchObject({ adaptersOpen: 0, mapRegistersGranted: 3 });
    },
  }),
  bug({
    name: "0x0A adapter put with a scatter/gather list out",
    driver: LeakedListDriver,
    setup: (rig) => rig.buffer(4096),
    act: (rig, buffer) => {
      rig.read(buffer!);
      rig.stop();
    },
    expected: () => [0x0a, ADAPTER, 1, 0],
    without: (rig, _b, act) => {
      act();
      expect(rig.hal.resources()).toMatchObject({ adaptersOpen: 0, scatterGatherLists: 1 });
    },
  }),
  bug({
    name: "0x0B a second adapter channel while the first is held",
    driver: SecondChannelDriver,
    act: (rig) => rig.control(),
    expected: () => [0x0b, 1, ADAPTER, 0],
    without: (rig, _b, act) => {
      act();
      // The second request waits behind the first for ever: its AdapterControl never runs.
      expect(rig.driver.log).toEqual(["first channel"]);
      expect(rig.hal.resources().queuedRequests).toBe(1);
    },
  }),
  bug({
    name: "0x0C a transfer larger than its map registers",
    driver: ShortGrantDriver,
    machine: DIRECT,
    setup: (rig) => rig.buffer(3 * PAGE_SIZE),
    act: (rig, buffer) => rig.read(buffer!),
    expected: () => [0x0c, 3, 2, 0],
    // The HAL's own stop, out of map registers, says nothing of the driver's mistake.
    without: (_r, _b, act) => expect(parametersOf(act)).toEqual([0x00, 2, 3, 2]),
  }),
  bug({
    name: "0x0D a transfer mapped before the last one was flushed",
    driver: UnflushedTransferDriver,
    machine: DIRECT,
    act: (rig) => rig.control(),
    expected: () => [0x0d, 2 * PAGE_SIZE, PAGE_SIZE, 0],
    without: (_r, _b, act) => expect(parametersOf(act)).toEqual([0x00, 2, 1, 1]),
  }),
  bug({
    name: "0x0E DMA on an MDL that was never locked or built",
    driver: UnlockedBufferDriver,
    act: (rig) => rig.control(),
    expected: (rig) => [0x0e, rig.driver.buffers[0]!.mdl.id, 0, 0],
    without: (rig, _b, act) => expect(parametersOf(act)).toEqual([0x0e, rig.driver.buffers[0]!.mdl.id, 0, 0]),
  }),
  bug({
    name: "0x0F/2 the driver writes past its common buffer (DmaVrfy0 tag after)",
    driver: CommonBufferOverrunDriver,
    act: (rig) => {
      rig.control();
      rig.stop();
    },
    expected: (rig) => [0x0f, 2, CommonBufferOverrunDriver.bufferLength, rig.driver.buffer!.va],
    without: (rig) => {
      rig.control();
      // Nobody notices: the bytes after the buffer are simply overwritten, and the free goes through.
      expect(rig.kernel.ReadMemory(rig.driver.buffer!.va + 100, 4)).toEqual(new Uint8Array(4).fill(0xee));
      rig.stop();
    },
  }),
  bug({
    name: "0x0F/5 the driver writes beyond its common buffer (padding after)",
    driver: CommonBufferOverrunDriver,
    setup: (rig) => {
      rig.driver.at = 200;
      rig.driver.overrun = 8;
      return undefined;
    },
    act: (rig) => {
      rig.control();
      rig.stop();
    },
    expected: (rig) => [0x0f, 5, rig.driver.buffer!.va, rig.driver.buffer!.va + 200],
    without: (rig) => {
      rig.control();
      expect(rig.kernel.ReadMemory(rig.driver.buffer!.va + 200, 8)).toEqual(new Uint8Array(8).fill(0xee));
      rig.stop();
    },
  }),
  bug({
    name: "0x0F/4 the device writes before its common buffer (padding before)",
    driver: DeviceUnderrunDriver,
    machine: DIRECT,
    act: (rig) => rig.control(),
    expected: (rig) => [0x0f, 4, rig.driver.buffer!.va, rig.driver.buffer!.va - 9],
    without: (rig, _b, act) => {
      act();
      // The 8 bytes land in whatever precedes the buffer in physical memory.
      const before = new Uint8Array(8);
      rig.machine.memory.read(rig.driver.buffer!.la - 16, before);
      expect(before).toEqual(testPattern(0x40, 8));
    },
  }),
  bug({
    name: "0x0F/1 the device writes into the tag before its common buffer",
    driver: DeviceUnderrunDriver,
    machine: DIRECT,
    setup: (rig) => {
      rig.driver.before = 4;
      rig.driver.bytes = 4;
      return undefined;
    },
    act: (rig) => rig.control(),
    expected: (rig) => [0x0f, 1, PAGE_SIZE, rig.driver.buffer!.va],
    without: (rig, _b, act) => {
      act();
      const before = new Uint8Array(4);
      rig.machine.memory.read(rig.driver.buffer!.la - 4, before);
      expect(before).toEqual(testPattern(0x40, 4));
    },
  }),
  bug({
    name: "0x0F/3 the device writes a map register after the list was put back",
    driver: EarlyPutDriver,
    machine: DIRECT,
    setup: (rig) => rig.buffer(PAGE_SIZE, { above4G: true }),
    act: (rig, buffer) => rig.read(buffer!),
    expected: (rig) => [0x0f, 3, rig.driver.address, PAGE_SIZE],
    without: (rig, buffer, act) => {
      act();
      // The data went to a bounce page nobody copies back: the read "succeeds" with nothing in it.
      expect(rig.bytes(buffer!)).toEqual(new Uint8Array(PAGE_SIZE));
    },
  }),
  bug({
    name: "0x10 map registers freed while still mapped (no FlushAdapterBuffers)",
    driver: FreeMappedRegistersDriver,
    machine: DIRECT,
    setup: (rig) => rig.buffer(PAGE_SIZE, { above4G: true }),
    act: (rig, buffer) => rig.read(buffer!),
    expected: () => [0x10, 1, PAGE_SIZE, 0],
    without: (rig, buffer, act) => {
      act();
      // The device's data stayed in the bounce page: stale data in the driver's buffer.
      expect(rig.bytes(buffer!)).toEqual(new Uint8Array(PAGE_SIZE));
    },
  }),
  bug({
    name: "0x13 GetScatterGatherList at PASSIVE_LEVEL",
    driver: WrongIrqlDriver,
    setup: (rig) => rig.buffer(4096),
    act: (rig, buffer) => rig.read(buffer!),
    expected: () => [0x13, 1, 2, 0],
    without: (_r, _b, act) => expect(parametersOf(act)).toEqual([0x13, 1, 2, 0]),
  }),
  bug({
    name: "0x15 more map registers than IoGetDmaAdapter allowed",
    driver: OverMaximumDriver,
    act: (rig) => rig.control(),
    expected: (rig) => [0x15, rig.extension.numberOfMapRegisters + 1, rig.extension.numberOfMapRegisters, 0],
    without: (rig, _b, act) => {
      act();
      // STATUS_INSUFFICIENT_RESOURCES, ignored: the AdapterControl routine never runs.
      expect(rig.driver.log).toEqual(["status 0xc000009a"]);
    },
  }),
  bug({
    name: "0x16 a buffer flushed twice",
    driver: DoubleFlushDriver,
    machine: DIRECT,
    setup: (rig) => rig.buffer(1000),
    act: (rig, buffer) => rig.read(buffer!),
    expected: (_r, buffer) => [0x16, FIRST_FILE, buffer!.va, 1000],
    without: (rig, buffer, act) => {
      act();
      expect(rig.bytes(buffer!)).toEqual(testPattern(0x40, 1000));
    },
  }),
  bug({
    name: "0x18 an adapter used after PutDmaAdapter",
    driver: ReleasedAdapterDriver,
    act: (rig) => rig.control(),
    expected: () => [0x18, ADAPTER, 0, 0],
    without: (_r, _b, act) => expect(parametersOf(act)).toEqual([0x18, ADAPTER, 0, 0]),
  }),
  bug({
    name: "0x19 a NULL DMA_ADAPTER",
    driver: NullAdapterDriver,
    act: (rig) => rig.control(),
    expected: () => [0x19, 0, 0, 0],
    without: (_r, _b, act) => expect(parametersOf(act)).toEqual([0x19, 0, 0, 0]),
  }),
  bug({
    name: "0x1B CurrentVa outside the MDL",
    driver: AddressOutsideMdlDriver,
    setup: (rig) => rig.buffer(2048),
    act: (rig, buffer) => rig.read(buffer!),
    expected: (_r, buffer) => [0x1b, buffer!.va + 2048, buffer!.mdl.id, 0],
    without: (_r, buffer, act) =>
      expect(parametersOf(act)).toEqual([0x1b, buffer!.va + 2048, buffer!.mdl.id, 0]),
  }),
  bug({
    name: "0x1D a buffer mapped for the device twice at once",
    driver: DoubleMappingDriver,
    act: (rig) => rig.control(),
    expected: (rig) => {
      const { va } = rig.driver.buffers[0]!;
      return [0x1d, va, va + 2047, va];
    },
    without: (rig, _b, act) => {
      act();
      expect(rig.hal.resources().scatterGatherLists).toBe(0);
    },
  }),
  bug({
    name: "0x1F/1 CurrentVa before the first MDL",
    driver: VaBeforeMdlDriver,
    setup: (rig) => rig.buffer(512, { offset: 64 }),
    act: (rig, buffer) => rig.read(buffer!),
    expected: (_r, buffer) => [0x1f, 1, buffer!.va - 1, buffer!.mdl.id],
    without: (_r, buffer, act) =>
      expect(parametersOf(act)).toEqual([0x1b, buffer!.va - 1, buffer!.mdl.id, 0]),
  }),
  bug({
    name: "0x20 a flush of map registers never mapped",
    driver: NeverMappedFlushDriver,
    act: (rig) => rig.control(),
    expected: (rig) => [0x20, FIRST_FILE, rig.driver.buffers[0]!.va, rig.driver.buffers[0]!.mdl.id],
    without: (rig, _b, act) => {
      act();
      expect(rig.hal.resources().mapRegistersGranted).toBe(0);
    },
  }),
  bug({
    name: "0x21 a zero-length MapTransfer",
    driver: ZeroLengthMapDriver,
    setup: (rig) => rig.buffer(512),
    act: (rig, buffer) => rig.read(buffer!),
    expected: (_r, buffer) => [0x21, buffer!.mdl.id, 0, 0],
    without: (_r, buffer, act) => expect(parametersOf(act)).toEqual([0x21, buffer!.mdl.id, 0, 0]),
  }),
  bug({
    name: "0x22 CreateCommonBufferFromMdl on an MDL not mapped in system space",
    driver: NotSystemMappedDriver,
    act: (rig) => rig.control(),
    expected: (rig) => [0x22, rig.driver.buffers[0]!.mdl.id, 0, 0],
    without: (rig, _b, act) => {
      act();
      expect(rig.driver.log).toEqual(["status 0xc000000d"]);
    },
  }),
  bug({
    name: "0x24 a MapTransfer longer than the MDL",
    driver: LengthPastMdlDriver,
    setup: (rig) => rig.buffer(1024),
    act: (rig, buffer) => rig.read(buffer!),
    expected: (_r, buffer) => [0x24, 100, buffer!.mdl.id, 0],
    without: (_r, buffer, act) => expect(parametersOf(act)).toEqual([0x24, 100, buffer!.mdl.id, 0]),
  }),
  bug({
    name: "0x25 an unknown DEVICE_DESCRIPTION version",
    driver: UnknownVersionDriver,
    act: (rig) => rig.load(),
    expected: () => [0x25, 4, 3, 0],
    without: (rig, _b, act) => {
      act();
      // IoGetDmaAdapter returns NULL and START fails.
      expect(rig.node.state).toBe("failed");
      expect(rig.hal.resources().adaptersOpen).toBe(0);
    },
  }),
  bug({
    name: "0x26 the IOMMU blocks a device given a physical address",
    driver: BypassDriver,
    setup: (rig) => rig.buffer(512),
    act: (rig, buffer) => rig.read(buffer!),
    expected: (rig, buffer) => [
      0x26,
      rig.device.requesterId,
      rig.kernel.MmGetPhysicalAddress(buffer!.va),
      FaultReason.WriteNotPermitted,
    ],
    without: (rig, buffer, act) => {
      act();
      expect(rig.device.errors).toBe(1);
      expect(rig.bytes(buffer!)).toEqual(new Uint8Array(512));
      expect(rig.machine.iommu.serviceFaults()).toHaveLength(1);
    },
  }),
  bug({
    name: "0x00/1 a flush past the end of the MDL",
    driver: FlushPastEndDriver,
    machine: DIRECT,
    setup: (rig) => rig.buffer(1000),
    act: (rig, buffer) => rig.read(buffer!),
    expected: () => [0x00, 1, 1000, 1008],
    without: (_r, buffer, act) => expect(parametersOf(act)).toEqual([0x24, 8, buffer!.mdl.id, 0]),
  }),
  bug({
    name: "0x100 (dma-debug) a receive list put back as a send list",
    driver: DirectionMismatchDriver,
    machine: DIRECT,
    setup: (rig) => rig.buffer(PAGE_SIZE, { above4G: true }),
    act: (rig, buffer) => rig.read(buffer!),
    expected: (rig) => [0x100, 0, 1, rig.driver.address],
    without: (rig, buffer, act) => {
      act();
      // The bounce page is never copied back: the read completes with none of the device's data.
      expect(rig.bytes(buffer!)).toEqual(new Uint8Array(PAGE_SIZE));
    },
  }),
  bug({
    name: "0x101 (dma-debug) the CPU reads a buffer before PutScatterGatherList",
    driver: StaleReadDriver,
    machine: DIRECT,
    setup: (rig) => rig.buffer(PAGE_SIZE, { above4G: true }),
    act: (rig, buffer) => rig.read(buffer!),
    expected: (rig, buffer) => [0x101, rig.kernel.MmGetPhysicalAddress(buffer!.va), buffer!.mdl.id, 16],
    without: (rig, buffer, act) => {
      act();
      expect(rig.driver.seen).toEqual(new Uint8Array(16));
      expect(rig.bytes(buffer!)).toEqual(testPattern(0x40, PAGE_SIZE));
    },
  }),
  bug({
    name: "0x102 (dma-debug) a flush that covers only part of the mapping",
    driver: PartialFlushDriver,
    machine: DIRECT,
    setup: (rig) => rig.buffer(PAGE_SIZE, { above4G: true }),
    act: (rig, buffer) => rig.read(buffer!),
    expected: (_r, buffer) => [0x102, buffer!.va, PAGE_SIZE - 100, PAGE_SIZE - 100],
    without: (rig, buffer, act) => {
      act();
      // The last 100 bytes are never copied out of the bounce page.
      const bytes = rig.bytes(buffer!);
      expect(bytes.subarray(0, PAGE_SIZE - 100)).toEqual(testPattern(0x40, PAGE_SIZE - 100));
      expect(bytes.subarray(PAGE_SIZE - 100)).toEqual(new Uint8Array(100));
    },
  }),
  bug({
    name: "0x103 (dma-debug) the driver leaves the device with its adapter and a common buffer",
    driver: LeakAtUnloadDriver,
    act: (rig) => rig.remove(),
    expected: () => [0x103, ADAPTER, 1, 0],
    without: (rig, _b, act) => {
      act();
      expect(rig.hal.resources()).toMatchObject({ adaptersOpen: 1, commonBuffers: 1 });
    },
  }),
  bug({
    name: "0x1F/4 a receive buffer not on a cache line (non-coherent machine)",
    driver: UnalignedReceiveDriver,
    machine: { remapping: "strict", coherent: false },
    setup: (rig) => rig.buffer(512, { offset: 8 }),
    act: (rig, buffer) => rig.read(buffer!),
    expected: (_r, buffer) => [0x1f, 4, buffer!.va, buffer!.mdl.id],
    without: (rig, buffer, act) => {
      act();
      expect(rig.bytes(buffer!)).toEqual(testPattern(0x40, 512));
    },
  }),
  bug({
    name: "0x1F/5 a receive length not a whole number of cache lines (non-coherent machine)",
    driver: UnalignedReceiveDriver,
    machine: { remapping: "strict", coherent: false },
    setup: (rig) => rig.buffer(100),
    act: (rig, buffer) => rig.read(buffer!),
    expected: (_r, buffer) => [0x1f, 5, 100, buffer!.mdl.id],
    without: (rig, buffer, act) => {
      act();
      expect(rig.bytes(buffer!)).toEqual(testPattern(0x40, 100));
    },
  }),
];

/** The verifier numbers MapRegisterBases (and lists) from 1, in the order it sees them granted. */
const FIRST_FILE = 1;

describe("buggy drivers under the DMA verifier", () => {
  describe.each(CASES)("$name", (c) => {
    const load = c.driver !== UnknownVersionDriver;
    it("bug check mode: 0xE6 with the exact parameters", () => {
      const rig = new VerifierRig(c.driver, { machine: c.machine, load });
      const buffer = c.setup?.(rig);
      const check = bugCheckOf(() => c.act(rig, buffer));
      expect(check.code).toBe(DRIVER_VERIFIER_DMA_VIOLATION);
      expect(check.parameters).toEqual(c.expected(rig, buffer));
      expect(check.message).toMatch(/STOP 0xe6 DRIVER_VERIFIER_DMA_VIOLATION/);
    });

    it("log mode: recorded first, and the machine goes on", () => {
      const rig = new VerifierRig(c.driver, { machine: c.machine, load, verifier: { mode: "log" } });
      const buffer = c.setup?.(rig);
      c.act(rig, buffer);
      const first = rig.verifier!.violations[0];
      expect(first?.parameters).toEqual(c.expected(rig, buffer));
      if (first?.code !== 0x19) expect(first?.driver).toBe(rig.driver.serviceName);
    });

    it("without the verifier", () => {
      const rig = new VerifierRig(c.driver, { machine: c.machine, load, verifier: "off" });
      const buffer = c.setup?.(rig);
      c.without(rig, buffer, () => c.act(rig, buffer));
    });
  });
});
