/**
 * The DMA engine device model at the register level, as a driver would see it: rings, doorbells,
 * write-back, interrupts and halts. Remapping off (bus address = physical address); faults are
 * injected at the DMA port.
 */
import { describe, expect, it } from "vitest";
import { DmaEngineDevice } from "../../src/devices/dma-engine-device.js";
import {
  CHANNEL_BASE,
  CHANNEL_STRIDE,
  ChannelControl,
  ChannelRegister,
  ChannelStatus,
  DESCRIPTOR_ERROR_SHIFT,
  DESCRIPTOR_SIZE,
  Descriptor,
  DescriptorControl,
  DescriptorError,
  DescriptorStatus,
  DmaEngineRegister,
} from "../../src/devices/dma-engine-registers.js";
import { MiB } from "../../src/platform/page.js";
import { PlatformError } from "../../src/platform/platform-error.js";
import { type TestMachine, testBytes, testMachine } from "../../src/testing/index.js";

const RING = 0x10_0000;
const SOURCE = 0x20_0000;
const DESTINATION = 0x40_0000;

function rig(): TestMachine {
  return testMachine({ remapping: "off", memory: 64 * MiB });
}

function register(channel: number, offset: number): number {
  return CHANNEL_BASE + channel * CHANNEL_STRIDE + offset;
}

interface DescriptorSpec {
  readonly source: number;
  readonly destination: number;
  readonly length: number;
  readonly interrupt?: boolean;
}

function writeDescriptor(t: TestMachine, ring: number, index: number, spec: DescriptorSpec): void {
  const bytes = new Uint8Array(DESCRIPTOR_SIZE);
  const view = new DataView(bytes.buffer);
  view.setUint32(Descriptor.source, spec.source % 2 ** 32, true);
  view.setUint32(Descriptor.source + 4, Math.floor(spec.source / 2 ** 32), true);
  view.setUint32(Descriptor.destination, spec.destination % 2 ** 32, true);
  view.setUint32(Descriptor.destination + 4, Math.floor(spec.destination / 2 ** 32), true);
  view.setUint32(Descriptor.length, spec.length, true);
  view.setUint32(Descriptor.control, spec.interrupt === false ? 0 : DescriptorControl.interrupt, true);
  t.writePhysical(ring + index * DESCRIPTOR_SIZE, bytes);
}

function descriptorStatus(t: TestMachine, ring: number, index: number): number {
  const bytes = t.readPhysical(ring + index * DESCRIPTOR_SIZE + Descriptor.status, 4);
  return new DataView(bytes.buffer).getUint32(0, true);
}

function setUpChannel(
  t: TestMachine,
  engine: DmaEngineDevice,
  channel: number,
  ring: number,
  size = 8,
): void {
  t.mmioWrite(engine, register(channel, ChannelRegister.control), ChannelControl.reset);
  t.mmioWrite64(engine, register(channel, ChannelRegister.ringBaseLow), ring);
  t.mmioWrite(engine, register(channel, ChannelRegister.ringSize), size);
  t.mmioWrite(
    engine,
    register(channel, ChannelRegister.control),
    ChannelControl.enable | ChannelControl.interruptEnable,
  );
}

function countInterrupts(t: TestMachine, engine: DmaEngineDevice): { count: number } {
  const counter = { count: 0 };
  t.scheduler.connectInterrupt(engine.interruptLine, () => {
    counter.count++;
    t.mmioWrite(engine, DmaEngineRegister.interruptStatus, 0xffffffff);
    return true;
  });
  return counter;
}

describe("DmaEngineDevice", () => {
  it("reports its channels and transfer limit, and refuses impossible configurations", () => {
    const t = rig();
    const engine = t.plug(new DmaEngineDevice({ channels: 3, maxTransfer: 64 * 1024 }), { busMaster: true });
    expect(t.mmioRead(engine, DmaEngineRegister.channelCount)).toBe(3);
    expect(t.mmioRead(engine, DmaEngineRegister.maxTransfer)).toBe(64 * 1024);
    expect(() => new DmaEngineDevice({ channels: 0 })).toThrow(PlatformError);
    expect(() => new DmaEngineDevice({ channels: 9 })).toThrow(PlatformError);
    expect(() => new DmaEngineDevice({ maxTransfer: 0 })).toThrow(PlatformError);
    expect(() => engine.channelStats(3)).toThrow(PlatformError);
  });

  it("copies a descriptor's bytes, writes DONE back, advances HEAD and interrupts", () => {
    const t = rig();
    const engine = t.plug(new DmaEngineDevice({ channels: 2 }), { busMaster: true });
    const irq = countInterrupts(t, engine);
    const data = testBytes(200_000, 4);
    t.writePhysical(SOURCE, data);
    setUpChannel(t, engine, 1, RING);
    writeDescriptor(t, RING, 0, { source: SOURCE, destination: DESTINATION, length: data.length });
    t.mmioWrite(engine, register(1, ChannelRegister.tail), 1);
    expect(t.mmioRead(engine, register(1, ChannelRegister.status)) & ChannelStatus.active).toBe(
      ChannelStatus.active,
    );
    t.runUntilIdle();

    expect(t.readPhysical(DESTINATION, data.length)).toEqualBytes(data);
    expect(descriptorStatus(t, RING, 0)).toBe(DescriptorStatus.done);
    expect(t.mmioRead(engine, register(1, ChannelRegister.head))).toBe(1);
    expect(t.mmioRead(engine, register(1, ChannelRegister.completed))).toBe(1);
    expect(t.mmioRead(engine, register(1, ChannelRegister.status))).toBe(0);
    expect(irq.count).toBe(1);
    expect(engine.channelStats(1)).toMatchObject({ descriptors: 1, bytes: data.length, errors: 0 });
    // latency + bytes / 4 GB/s.
    expect(t.now).toBe(500 + Math.ceil((data.length * 1e9) / 4e9));
  });

  it("runs a chain in order, interrupts only where a descriptor asks, and wraps the ring", () => {
    const t = rig();
    const engine = t.plug(new DmaEngineDevice({ channels: 1 }), { busMaster: true });
    const irq = countInterrupts(t, engine);
    const data = testBytes(5 * 4096, 9);
    t.writePhysical(SOURCE, data);
    setUpChannel(t, engine, 0, RING, 4);
    const page = (i: number): DescriptorSpec => ({
      source: SOURCE + i * 4096,
      destination: DESTINATION + (4 - i) * 4096,
      length: 4096,
      interrupt: i === 2 || i === 4,
    });
    for (let i = 0; i < 3; i++) writeDescriptor(t, RING, i, page(i));
    t.mmioWrite(engine, register(0, ChannelRegister.tail), 3);
    t.runUntilIdle();
    expect(irq.count).toBe(1);
    expect(t.mmioRead(engine, register(0, ChannelRegister.head))).toBe(3);
    writeDescriptor(t, RING, 3, page(3));
    writeDescriptor(t, RING, 0, page(4));
    t.mmioWrite(engine, register(0, ChannelRegister.tail), 1);
    t.runUntilIdle();
    expect(irq.count).toBe(2);
    expect(t.mmioRead(engine, register(0, ChannelRegister.head))).toBe(1);
    expect(t.mmioRead(engine, register(0, ChannelRegister.completed))).toBe(5);
    for (let i = 0; i < 5; i++) {
      expect(t.readPhysical(DESTINATION + (4 - i) * 4096, 4096)).toEqualBytes(
        data.subarray(i * 4096, (i + 1) * 4096),
      );
    }
  });

  it("runs its channels in parallel", () => {
    const t = rig();
    const engine = t.plug(new DmaEngineDevice({ channels: 2 }), { busMaster: true });
    const done: number[] = [];
    t.scheduler.connectInterrupt(engine.interruptLine, () => {
      done.push(t.now);
      t.mmioWrite(engine, DmaEngineRegister.interruptStatus, 0xffffffff);
      return true;
    });
    for (const channel of [0, 1]) {
      setUpChannel(t, engine, channel, RING + channel * 4096);
      writeDescriptor(t, RING + channel * 4096, 0, {
        source: SOURCE,
        destination: DESTINATION + channel * MiB,
        length: 512 * 1024,
      });
      t.mmioWrite(engine, register(channel, ChannelRegister.tail), 1);
    }
    t.runUntilIdle();
    expect(done).toHaveLength(2);
    expect(done[0]).toBe(done[1]);
  });

  it("halts on a bad length, marking the descriptor, until RESET", () => {
    const t = rig();
    const engine = t.plug(new DmaEngineDevice({ channels: 1, maxTransfer: 4096 }), { busMaster: true });
    const irq = countInterrupts(t, engine);
    setUpChannel(t, engine, 0, RING);
    writeDescriptor(t, RING, 0, { source: SOURCE, destination: DESTINATION, length: 8192 });
    writeDescriptor(t, RING, 1, { source: SOURCE, destination: DESTINATION, length: 16 });
    t.mmioWrite(engine, register(0, ChannelRegister.tail), 2);
    t.runUntilIdle();
    const status = t.mmioRead(engine, register(0, ChannelRegister.status));
    expect(status).toBe(ChannelStatus.halted | ChannelStatus.descriptorError);
    expect(descriptorStatus(t, RING, 0)).toBe(
      DescriptorStatus.error | (DescriptorError.badLength << DESCRIPTOR_ERROR_SHIFT),
    );
    expect(descriptorStatus(t, RING, 1)).toBe(0);
    expect(irq.count).toBe(1);
    t.mmioWrite(engine, register(0, ChannelRegister.control), ChannelControl.reset | ChannelControl.enable);
    expect(t.mmioRead(engine, register(0, ChannelRegister.status))).toBe(0);
    expect(t.mmioRead(engine, register(0, ChannelRegister.head))).toBe(0);
  });

  it("halts on a DMA fault with the failing address, keeping what was copied before", () => {
    const t = rig();
    const engine = t.plug(new DmaEngineDevice({ channels: 1 }), { busMaster: true });
    countInterrupts(t, engine);
    const data = testBytes(256 * 1024, 2);
    t.writePhysical(SOURCE, data);
    t.injectDmaError({ requesterId: engine.requesterId, address: DESTINATION + 128 * 1024, access: "write" });
    setUpChannel(t, engine, 0, RING);
    writeDescriptor(t, RING, 0, { source: SOURCE, destination: DESTINATION, length: data.length });
    t.mmioWrite(engine, register(0, ChannelRegister.tail), 1);
    t.runUntilIdle();
    expect(t.mmioRead(engine, register(0, ChannelRegister.status))).toBe(
      ChannelStatus.halted | ChannelStatus.dmaError,
    );
    expect(t.mmioRead(engine, register(0, ChannelRegister.errorAddressLow))).toBe(DESTINATION + 128 * 1024);
    expect(t.mmioRead(engine, register(0, ChannelRegister.errorDescriptor))).toBe(0);
    expect(descriptorStatus(t, RING, 0) & DescriptorStatus.error).toBe(DescriptorStatus.error);
    expect(t.readPhysical(DESTINATION, 128 * 1024)).toEqualBytes(data.subarray(0, 128 * 1024));
    expect(engine.dmaErrors).toHaveLength(1);
    expect(engine.dmaErrors[0]!.during).toBe("ch0 destination write");
  });

  it("does nothing with a doorbell while disabled, or without bus mastering but a halt", () => {
    const t = rig();
    const engine = t.plug(new DmaEngineDevice({ channels: 1 }));
    countInterrupts(t, engine);
    t.mmioWrite64(engine, register(0, ChannelRegister.ringBaseLow), RING);
    t.mmioWrite(engine, register(0, ChannelRegister.ringSize), 8);
    writeDescriptor(t, RING, 0, { source: SOURCE, destination: DESTINATION, length: 16 });
    t.mmioWrite(engine, register(0, ChannelRegister.tail), 1);
    t.runUntilIdle();
    expect(t.mmioRead(engine, register(0, ChannelRegister.head))).toBe(0);
    t.mmioWrite(
      engine,
      register(0, ChannelRegister.control),
      ChannelControl.enable | ChannelControl.interruptEnable,
    );
    t.runUntilIdle();
    // Bus mastering is off: the descriptor fetch is refused and the channel halts.
    expect(t.mmioRead(engine, register(0, ChannelRegister.status))).toBe(
      ChannelStatus.halted | ChannelStatus.dmaError,
    );
    expect(engine.dmaErrors[0]!.result.kind).toBe("bus-master-disabled");
  });

  it("abandons work in flight when unplugged", () => {
    const t = rig();
    const engine = t.plug(new DmaEngineDevice({ channels: 1 }), { busMaster: true });
    setUpChannel(t, engine, 0, RING);
    writeDescriptor(t, RING, 0, { source: SOURCE, destination: DESTINATION, length: 4096 });
    t.mmioWrite(engine, register(0, ChannelRegister.tail), 1);
    t.pci.detach(engine.requesterId);
    t.runUntilIdle();
    expect(engine.stats.descriptors).toBe(0);
  });
});
