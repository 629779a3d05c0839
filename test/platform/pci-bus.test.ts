import { Container } from "inversify";
import { describe, expect, it } from "vitest";
import { DMA_OK, type DmaResult } from "../../src/platform/dma-result.js";
import { IdentityRemapper } from "../../src/platform/identity-remapper.js";
import { Irql } from "../../src/platform/irql.js";
import { GiB, MiB, PAGE_SIZE } from "../../src/platform/page.js";
import { formatRequesterId, parseRequesterId, requesterId } from "../../src/platform/pci-address.js";
import { APIC_BASE, PciBus } from "../../src/platform/pci-bus.js";
import { PciCommand, PciConfigOffset } from "../../src/platform/pci-config-space.js";
import { PciDevice } from "../../src/platform/pci-device.js";
import { PhysicalMemory, type RamRange } from "../../src/platform/physical-memory.js";
import { PlatformError } from "../../src/platform/platform-error.js";
import type { PciMmioEvent } from "../../src/platform/platform-events.js";
import { Scheduler } from "../../src/platform/scheduler.js";
import { DmaRemapper } from "../../src/platform/tokens.js";
import { Counters } from "../../src/trace/counters.js";
import { EventBus } from "../../src/trace/event-bus.js";
import traceModule from "../../src/trace/trace-module.js";

/** A memory-to-memory copy engine: program source, destination, length; ring the doorbell. */
const Reg = { src: 0x00, dst: 0x08, length: 0x10, doorbell: 0x14, status: 0x18 } as const;
const Status = { idle: 0, busy: 1, done: 2, error: 3 } as const;

class CopyEngine extends PciDevice {
  readonly #regs = new Uint32Array(8);
  lastResult: DmaResult | undefined;

  constructor(name = "copy engine", latencyNs = 2_000) {
    super(
      { name, vendorId: 0x1234, deviceId: 0x5678, classCode: 0x088000 },
      { barSize: 64, latencyNs, bandwidth: 1e9 },
    );
  }

  protected registerValue(offset: number): number {
    return this.#regs[offset / 4] ?? 0;
  }

  protected onRegisterWrite(offset: number, value: number): void {
    if (offset === Reg.doorbell) {
      this.#start();
      return;
    }
    this.#regs[offset / 4] = value;
  }

  #start(): void {
    const length = this.#regs[Reg.length / 4]!;
    this.#regs[Reg.status / 4] = Status.busy;
    this.afterTransfer(length, () => {
      const buffer = new Uint8Array(length);
      const read = this.port.read(this.#regs[Reg.src / 4]!, buffer);
      this.lastResult = read.ok ? this.port.write(this.#regs[Reg.dst / 4]!, buffer) : read;
      this.#regs[Reg.status / 4] = this.lastResult.ok ? Status.done : Status.error;
      this.raiseInterrupt();
    });
  }
}

const EIGHT_GIB: readonly RamRange[] = [
  { start: 0, end: 3 * GiB },
  { start: 4 * GiB, end: 9 * GiB },
];

function machine(ranges: readonly RamRange[] = EIGHT_GIB): {
  bus: PciBus;
  memory: PhysicalMemory;
  scheduler: Scheduler;
  events: EventBus;
} {
  const events = new EventBus();
  const counters = new Counters();
  const memory = new PhysicalMemory(ranges);
  const scheduler = new Scheduler(events, counters);
  return {
    bus: new PciBus(memory, new IdentityRemapper(), scheduler, events, counters),
    memory,
    scheduler,
    events,
  };
}

function code(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    if (error instanceof PlatformError) return error.code;
    throw error;
  }
  return undefined;
}

describe("PCI addresses", () => {
  it("packs, formats and parses requester ids", () => {
    expect(requesterId(0, 2, 0)).toBe(0x10);
    expect(requesterId(0x80, 0x14, 3)).toBe(0x80a3);
    expect(formatRequesterId(0x80a3)).toBe("80:14.3");
    expect(parseRequesterId("00:02.0")).toBe(0x10);
    expect(parseRequesterId("ff:1f.7")).toBe(0xffff);
    expect(code(() => requesterId(0, 32, 0))).toBe("out-of-range");
    expect(code(() => requesterId(256, 0, 0))).toBe("out-of-range");
    expect(code(() => requesterId(0, 0, 1.5))).toBe("out-of-range");
    expect(code(() => parseRequesterId("0:2"))).toBe("out-of-range");
    expect(code(() => parseRequesterId("00:20.0"))).toBe("out-of-range");
  });
});

describe("PciBus", () => {
  it("assigns distinct requester ids, BARs and interrupt lines", () => {
    const { bus } = machine();
    const a = new CopyEngine("a");
    const b = new CopyEngine("b");
    const c = new CopyEngine("c");
    expect(bus.attach(a)).toBe(requesterId(0, 1, 0));
    expect(bus.attach(b)).toBe(requesterId(0, 2, 0));
    expect(bus.attach(c, { bus: 0, device: 7, function: 1 })).toBe(requesterId(0, 7, 1));
    expect(bus.devices()).toEqual([a, b, c]);
    const bars = [a, b, c].map((d) => d.barAddress);
    expect(new Set(bars).size).toBe(3);
    for (const bar of bars) {
      expect(bar % PAGE_SIZE).toBe(0);
      expect(bar).toBeGreaterThanOrEqual(3 * GiB);
      expect(bar + 64).toBeLessThanOrEqual(APIC_BASE);
      expect(bus.deviceAt(bar + 60)).toBe([a, b, c][bars.indexOf(bar)]);
    }
    expect(new Set([a, b, c].map((d) => d.interruptLine)).size).toBe(3);
    expect(bus.mmioWindow).toEqual({ start: 3 * GiB, end: APIC_BASE });
  });

  it("refuses a taken slot or a second attach, changing nothing", () => {
    const { bus } = machine();
    const a = new CopyEngine("a");
    bus.attach(a, { device: 2 });
    const b = new CopyEngine("b");
    expect(code(() => bus.attach(b, { device: 2 }))).toBe("bad-state");
    expect(code(() => bus.attach(a))).toBe("bad-state");
    expect(code(() => bus.attach(b, { device: 40 }))).toBe("out-of-range");
    expect(b.attached).toBe(false);
    expect(bus.devices()).toEqual([a]);
    expect(bus.attach(b)).toBe(requesterId(0, 1, 0));
  });

  it("places BARs above RAM when there is no hole below 4 GiB", () => {
    const { bus } = machine([{ start: 0, end: 4 * GiB }]);
    const a = new CopyEngine();
    bus.attach(a);
    expect(a.barAddress).toBeGreaterThanOrEqual(4 * GiB);
    expect(bus.configRead32(a.requesterId, PciConfigOffset.bar1)).toBe(a.barAddress / 2 ** 32);
  });

  it("routes MMIO to the register of the device whose BAR holds the address", () => {
    const { bus, events } = machine();
    const a = new CopyEngine("a");
    const b = new CopyEngine("b");
    bus.attach(a);
    bus.attach(b);
    const mmio: PciMmioEvent[] = [];
    events.on("pci.mmio", (e) => mmio.push(e));
    bus.mmioWrite32(b.barAddress + Reg.length, 0xdeadbeef);
    expect(bus.mmioRead32(b.barAddress + Reg.length)).toBe(0xdeadbeef);
    expect(bus.mmioRead32(a.barAddress + Reg.length)).toBe(0);
    expect(mmio[0]).toEqual({
      requesterId: b.requesterId,
      offset: Reg.length,
      value: 0xdeadbeef,
      access: "write",
    });
    expect(code(() => bus.mmioRead32(b.barAddress + 64))).toBe("bad-address");
    expect(code(() => bus.mmioRead32(b.barAddress + 2))).toBe("bad-address");
    expect(code(() => bus.mmioRead32(0x1000))).toBe("bad-address");
    expect(code(() => bus.mmioWrite32(a.barAddress, 2 ** 32))).toBe("out-of-range");
    expect(code(() => bus.mmioWrite32(a.barAddress, -1))).toBe("out-of-range");
    expect(bus.mmioRead32(a.barAddress)).toBe(0);
  });

  it("exposes identity and command register through configuration space", () => {
    const { bus } = machine();
    const a = new CopyEngine();
    const rid = bus.attach(a);
    expect(bus.configRead32(rid, PciConfigOffset.id)).toBe(0x56781234);
    expect(bus.configRead32(rid, PciConfigOffset.classRevision)).toBe(0x08800000);
    expect(bus.configRead32(rid, PciConfigOffset.bar0)).toBe(a.barAddress);
    expect(bus.configRead32(rid, PciConfigOffset.interrupt) & 0xff).toBe(a.interruptLine);
    expect(bus.configRead32(rid, PciConfigOffset.command)).toBe(PciCommand.memorySpace);
    bus.setBusMaster(rid, true);
    expect(a.config.busMasterEnabled).toBe(true);
    bus.configWrite32(rid, PciConfigOffset.command, 0);
    expect(a.config.busMasterEnabled).toBe(false);
    expect(code(() => bus.mmioRead32(a.barAddress))).toBe("bad-state");
    expect(code(() => bus.configRead32(rid, 3))).toBe("bad-address");
    expect(code(() => bus.configRead32(0x4242, 0))).toBe("bad-handle");
  });

  it("runs a device transfer after virtual time and interrupts the ISR at device IRQL", () => {
    const { bus, memory, scheduler } = machine();
    const engine = new CopyEngine();
    const rid = bus.attach(engine, { busMaster: true });
    const log: string[] = [];
    scheduler.connectInterrupt(engine.interruptLine, () => {
      log.push(`isr irql=${scheduler.irql} t=${scheduler.now}`);
      scheduler.queueDpc(() => log.push(`dpc irql=${scheduler.irql}`));
      return true;
    });
    const payload = new Uint8Array(8192).map((_, i) => i % 251);
    memory.write(64 * MiB - 100, payload);
    bus.mmioWrite32(engine.barAddress + Reg.src, 64 * MiB - 100);
    bus.mmioWrite32(engine.barAddress + Reg.dst, 128 * MiB + 3);
    bus.mmioWrite32(engine.barAddress + Reg.length, payload.length);
    bus.mmioWrite32(engine.barAddress + Reg.doorbell, 1);
    expect(bus.mmioRead32(engine.barAddress + Reg.status)).toBe(Status.busy);
    scheduler.runUntilIdle();
    expect(log).toEqual([`isr irql=${Irql.device} t=${2_000 + 8192}`, `dpc irql=${Irql.dispatch}`]);
    expect(engine.lastResult).toBe(DMA_OK);
    expect(bus.mmioRead32(engine.barAddress + Reg.status)).toBe(Status.done);
    const copied = new Uint8Array(payload.length);
    memory.read(128 * MiB + 3, copied);
    expect(Buffer.from(copied).equals(payload)).toBe(true);
    expect(bus.portFor(rid).requesterId).toBe(rid);
  });

  it("refuses the device's DMA while bus mastering is off", () => {
    const { bus, scheduler } = machine();
    const engine = new CopyEngine();
    bus.attach(engine);
    bus.mmioWrite32(engine.barAddress + Reg.length, 16);
    bus.mmioWrite32(engine.barAddress + Reg.doorbell, 1);
    scheduler.runUntilIdle();
    expect(engine.lastResult).toMatchObject({ ok: false, kind: "bus-master-disabled" });
    expect(bus.mmioRead32(engine.barAddress + Reg.status)).toBe(Status.error);
  });

  it("detaches a device: pending work is cancelled, resources are freed", () => {
    const { bus, scheduler } = machine();
    const engine = new CopyEngine();
    const rid = bus.attach(engine, { busMaster: true });
    const port = bus.portFor(rid);
    bus.mmioWrite32(engine.barAddress + Reg.length, 16);
    bus.mmioWrite32(engine.barAddress + Reg.doorbell, 1);
    expect(scheduler.pending).toBe(1);
    const bar = engine.barAddress;
    bus.detach(rid);
    expect(scheduler.pending).toBe(0);
    expect(engine.attached).toBe(false);
    expect(bus.has(rid)).toBe(false);
    expect(code(() => bus.device(rid))).toBe("bad-handle");
    expect(code(() => bus.detach(rid))).toBe("bad-handle");
    expect(code(() => bus.mmioRead32(bar))).toBe("bad-address");
    expect(code(() => engine.requesterId)).toBe("bad-state");
    expect(port.read(0, new Uint8Array(4))).toMatchObject({ ok: false, kind: "bus-master-disabled" });
    const again = new CopyEngine("again");
    expect(bus.attach(again)).toBe(rid);
    expect(again.barAddress).toBe(bar);
  });

  it("does not deliver interrupts while Interrupt Disable is set", () => {
    const { bus, scheduler } = machine();
    const engine = new CopyEngine();
    const rid = bus.attach(engine, { busMaster: true });
    let interrupts = 0;
    scheduler.connectInterrupt(engine.interruptLine, () => ++interrupts > 0);
    bus.configWrite32(
      rid,
      PciConfigOffset.command,
      PciCommand.memorySpace | PciCommand.busMaster | PciCommand.interruptDisable,
    );
    bus.mmioWrite32(engine.barAddress + Reg.doorbell, 1);
    scheduler.runUntilIdle();
    expect(interrupts).toBe(0);
    expect(engine.lastResult).toBe(DMA_OK);
  });

  it("rejects impossible device models", () => {
    class Odd extends CopyEngine {}
    expect(() => new Odd()).not.toThrow();
    const make = (barSize: number): unknown =>
      new (class extends PciDevice {
        constructor() {
          super({ name: "bad", vendorId: 1, deviceId: 1, classCode: 0 }, { barSize });
        }
        protected registerValue(): number {
          return 0;
        }
        protected onRegisterWrite(): void {}
      })();
    expect(code(() => make(100))).toBe("bad-length");
    expect(code(() => make(8))).toBe("bad-length");
    expect(code(() => new (class extends CopyEngine {})("x", -1))).toBe("bad-length");
  });

  it("resolves from a container with explicit injection tokens", () => {
    const container = new Container();
    container.load(traceModule);
    container.bind(PhysicalMemory).toConstantValue(new PhysicalMemory(EIGHT_GIB));
    container.bind(IdentityRemapper).toSelf().inSingletonScope();
    container.bind(DmaRemapper).toService(IdentityRemapper);
    container.bind(Scheduler).toSelf().inSingletonScope();
    container.bind(PciBus).toSelf().inSingletonScope();
    const bus = container.get(PciBus);
    const rid = bus.attach(new CopyEngine());
    expect(bus.portFor(rid).requesterId).toBe(rid);
    expect(container.get(Scheduler).pending).toBe(0);
  });
});
