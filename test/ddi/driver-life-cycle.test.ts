import { describe, expect, it } from "vitest";
import type { PnpStateEvent } from "../../src/ddi/ddi-events.js";
import { DriverRegistry } from "../../src/ddi/driver-registry.js";
import { DO_DEVICE_INITIALIZING } from "../../src/ddi/io-constants.js";
import { DISPATCH_LEVEL } from "../../src/hal/wdm/irql.js";
import {
  STATUS_DEVICE_NOT_READY,
  STATUS_IMAGE_ALREADY_LOADED,
  STATUS_PENDING,
  STATUS_SUCCESS,
  STATUS_UNSUCCESSFUL,
} from "../../src/hal/wdm/ntstatus.js";
import type { RemappingMode } from "../../src/machine/machine-options.js";
import { Irql } from "../../src/platform/irql.js";
import { ddiFixture, pattern, poolBuffer } from "./ddi-fixture.js";
import { TinyDevice } from "./tiny-device.js";

describe("driver life cycle", () => {
  it("collects the driver package through the registry", () => {
    const { machine, driver } = ddiFixture();
    const registry = machine.get(DriverRegistry);
    expect(registry.drivers).toEqual([driver]);
    expect(registry.find("TINY")).toBe(driver);
    expect(registry.find("nic")).toBeUndefined();
  });

  it("enumerates a PDO per PCI function, carrying the requester id and hardware ids", () => {
    const { io, device } = ddiFixture();
    const [node] = io.enumerate({ external: [device.requesterId] });
    expect(node!.requesterId).toBe(device.requesterId);
    expect(node!.pdo.DeviceObjectExtension).toEqual({ requesterId: device.requesterId, external: true });
    expect(node!.pdo.DriverObject.DriverName).toBe("\\Driver\\pci");
    expect(node!.hardwareIds[0]).toBe("PCI\\VEN_1AF4&DEV_10F0&SUBSYS_00000000&REV_01");
    expect(node!.compatibleIds).toContain("PCI\\VEN_1AF4&DEV_10F0");
    expect(node!.state).toBe("enumerated");
    expect(io.enumerate()).toEqual([]);
  });

  it.each<RemappingMode>(["off", "passthrough", "strict", "lazy"])(
    "DriverEntry, AddDevice, START, a read completed from the DPC, STOP and unload (remapping %s)",
    async (remapping) => {
      const { machine, io, kernel, driver, device } = ddiFixture({ remapping });
      const states: string[] = [];
      machine.events.on("pnp.state", (event: PnpStateEvent) => states.push(event.state));
      io.enumerate();

      const [loaded] = io.loadDrivers();
      expect(loaded!.status).toBe(STATUS_SUCCESS);
      const node = io.node(device.requesterId);
      expect(loaded!.nodes).toEqual([node]);
      expect(node.state).toBe("started");
      expect(node.driver).toBe(loaded!.driverObject);
      expect(driver.log.slice(0, 4)).toEqual([
        "DriverEntry \\Registry\\Machine\\System\\CurrentControlSet\\Services\\tiny",
        "AddDevice \\Device\\Tiny0",
        "START",
        "started registers=true adapter=1",
      ]);
      expect(driver.resources).toEqual([
        { Type: "CmResourceTypeMemory", Start: device.barAddress, Length: 4096 },
        { Type: "CmResourceTypeInterrupt", Vector: device.interruptLine, Level: Irql.device },
      ]);
      expect(device.config.busMasterEnabled).toBe(true);
      const fdo = node.fdo!;
      expect(fdo.Flags & DO_DEVICE_INITIALIZING).toBe(0);
      expect(fdo.AttachedDevice).toBeUndefined();
      expect(node.pdo.AttachedDevice).toBe(fdo);

      const { va, mdl } = poolBuffer(kernel, 512, 100);
      const irp = io.sendRead(fdo, mdl, 0);
      expect(irp.dispatchStatus).toBe(STATUS_PENDING);
      expect(irp.completed).toBe(false);
      machine.runUntilIdle();
      expect(irp.completed).toBe(true);
      expect(irp.IoStatus).toEqual({ Status: STATUS_SUCCESS, Information: 512 });
      expect(irp.PendingReturned).toBe(true);
      await expect(irp.completion).resolves.toEqual({ Status: STATUS_SUCCESS, Information: 512 });
      expect(kernel.ReadMemory(va, 512)).toEqual(pattern(0x40, 512));
      expect(driver.dpcIrql).toBe(DISPATCH_LEVEL);
      expect(driver.isrIrql).toBe(Irql.device);

      expect(io.stopDevice(node).IoStatus.Status).toBe(STATUS_SUCCESS);
      expect(node.state).toBe("stopped");
      expect(device.config.busMasterEnabled).toBe(false);
      expect(machine.scheduler.isConnected(device.interruptLine)).toBe(false);

      expect(io.unloadDriver(loaded!.driverObject!)).toBe(STATUS_SUCCESS);
      expect(driver.log.slice(4)).toEqual(["read done 0", "STOP", "REMOVE", "DriverUnload"]);
      expect(node.state).toBe("enumerated");
      expect(node.pdo.AttachedDevice).toBeUndefined();
      expect(loaded!.driverObject!.DeviceObject).toBeUndefined();
      expect(io.drivers).toEqual([]);
      expect(states).toEqual(["enumerated", "added", "starting", "started", "stopped", "enumerated"]);
    },
  );

  it("queues a second read behind the first through StartIo and completes both in order", () => {
    const { machine, io, kernel, device } = ddiFixture();
    io.enumerate();
    io.loadDrivers();
    const fdo = io.node(device.requesterId).fdo!;
    const first = poolBuffer(kernel, 256);
    const second = poolBuffer(kernel, 256);
    const irp1 = io.sendRead(fdo, first.mdl);
    const irp2 = io.sendRead(fdo, second.mdl);
    expect(fdo.CurrentIrp).toBe(irp1);
    expect(device.commands).toBe(1);
    const order: number[] = [];
    irp1.onCompleted(() => order.push(1));
    irp2.onCompleted(() => order.push(2));
    machine.runUntilIdle();
    expect(order).toEqual([1, 2]);
    expect(device.commands).toBe(2);
    expect(fdo.CurrentIrp).toBeUndefined();
    expect(kernel.ReadMemory(first.va, 256)).toEqual(pattern(0x40, 256));
    expect(kernel.ReadMemory(second.va, 256)).toEqual(pattern(0x41, 256));
  });

  it("restarts a stopped device with its resources", () => {
    const { machine, io, kernel, driver, device } = ddiFixture();
    io.enumerate();
    io.loadDrivers();
    const node = io.node(device.requesterId);
    io.stopDevice(node);
    expect(io.startDevice(node).IoStatus.Status).toBe(STATUS_SUCCESS);
    expect(node.state).toBe("started");
    expect(driver.log.filter((line) => line === "START")).toHaveLength(2);
    const { va, mdl } = poolBuffer(kernel, 64);
    const irp = io.sendRead(node.fdo!, mdl);
    machine.runUntilIdle();
    expect(irp.IoStatus.Status).toBe(STATUS_SUCCESS);
    expect(kernel.ReadMemory(va, 64)).toEqual(pattern(0x40, 64));
  });

  it("offers a device plugged in after the driver loaded, and surprise-removes an unplugged one", () => {
    const { machine, io, driver } = ddiFixture({}, false);
    io.enumerate();
    expect(io.loadDrivers()[0]!.nodes).toEqual([]);
    const device = new TinyDevice();
    machine.pci.attach(device);
    const [node] = io.enumerate();
    expect(node!.state).toBe("started");
    machine.pci.detach(device.requesterId);
    io.enumerate();
    expect(node!.state).toBe("deleted");
    expect(node!.pdo.deleted).toBe(true);
    expect(io.nodes).toEqual([]);
    expect(driver.log.slice(-2)).toEqual(["SURPRISE_REMOVAL", "REMOVE"]);
  });

  it("a different device in a slot is a new node: the old one is surprise-removed", () => {
    const { machine, io, driver, device } = ddiFixture();
    io.enumerate();
    io.loadDrivers();
    const old = io.node(device.requesterId);
    const rid = device.requesterId;
    machine.pci.detach(rid);
    const replacement = new TinyDevice();
    machine.pci.attach(replacement, { device: (rid >> 3) & 0x1f });
    const [fresh] = io.enumerate();
    expect(old.state).toBe("deleted");
    expect(fresh!.requesterId).toBe(rid);
    expect(fresh!.state).toBe("started");
    expect(replacement.config.busMasterEnabled).toBe(true);
    expect(driver.log.filter((line) => line === "START")).toHaveLength(2);
  });

  it("a failing START leaves the node failed and the stack removed", () => {
    const { io, driver, device } = ddiFixture();
    driver.failStart = true;
    io.enumerate();
    io.loadDrivers();
    const node = io.node(device.requesterId);
    expect(node.state).toBe("failed");
    expect(node.problem).toBe(STATUS_UNSUCCESSFUL);
    expect(node.driver).toBeUndefined();
    expect(node.pdo.AttachedDevice).toBeUndefined();
    expect(device.config.busMasterEnabled).toBe(false);
    expect(driver.log.slice(-2)).toEqual(["START", "REMOVE"]);
  });

  it.each([false, true])(
    "a START pended and finished from a DPC (failing: %s) is followed up at PASSIVE_LEVEL",
    (fail) => {
      const { machine, io, driver, device } = ddiFixture();
      driver.startFromDpc = true;
      driver.failStart = fail;
      io.enumerate();
      const [loaded] = io.loadDrivers();
      const node = io.node(device.requesterId);
      expect(node.state).toBe("starting");
      expect(device.config.busMasterEnabled).toBe(true);
      machine.runUntilIdle();
      expect(node.state).toBe(fail ? "failed" : "started");
      expect(device.config.busMasterEnabled).toBe(!fail);
      expect(driver.log.at(-1)).toBe(fail ? "REMOVE" : "START");
      if (!fail) {
        io.removeDevice(node);
        expect(io.unloadDriver(loaded!.driverObject!)).toBe(STATUS_SUCCESS);
      }
    },
  );

  it("loads a service once, and refuses reads on a device still initializing", () => {
    const { io, kernel, driver, device } = ddiFixture();
    io.enumerate();
    const [first] = io.loadDrivers();
    expect(io.loadDriver(driver).status).toBe(STATUS_IMAGE_ALREADY_LOADED);
    expect(io.loadDrivers()).toEqual([]);
    const fdo = io.node(device.requesterId).fdo!;
    fdo.Flags |= DO_DEVICE_INITIALIZING;
    const irp = io.sendRead(fdo, poolBuffer(kernel, 16).mdl);
    expect(irp.IoStatus.Status).toBe(STATUS_DEVICE_NOT_READY);
    expect(first!.driverObject!.loaded).toBe(true);
  });
});
