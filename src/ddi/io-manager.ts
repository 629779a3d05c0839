/**
 * The I/O manager and the PnP manager, reduced to one PCI bus: device nodes and their PDOs, the
 * driver life cycle, IRP dispatch and the StartIo device queue.
 *
 * Host side (tests, samples; camelCase, PlatformError for misuse): `enumerate()` makes a PDO for
 * every function on the PciBus, `loadDriver()` runs DriverEntry, then AddDevice and START for
 * each matching PDO, `stopDevice`/`startDevice`/`removeDevice`/`unloadDriver` walk the rest of
 * the life cycle, and `sendRead`/`sendWrite`/`callDriver` send IRPs.
 *
 * The PDO's part (pci.sys in Windows) is played here and needs no forwarding: Bus Master Enable
 * is set before START reaches the driver and cleared after STOP or REMOVE completes. START
 * carries the BAR as CmResourceTypeMemory and the line as CmResourceTypeInterrupt (WDK
 * "IRP_MN_START_DEVICE": AllocatedResourcesTranslated).
 *
 * Driver side: the Kernel's Io* routines validate and check the IRQL, then call the methods at
 * the end of this class.
 */
import { inject, injectable } from "inversify";
import {
  type CM_PARTIAL_RESOURCE_DESCRIPTOR,
  type DEVICE_OBJECT,
  type DEVOBJ_EXTENSION,
  type IO_STACK_LOCATION,
  IRP_MJ_PNP,
  IRP_MJ_READ,
  IRP_MJ_WRITE,
  IRP_MN_REMOVE_DEVICE,
  IRP_MN_START_DEVICE,
  IRP_MN_STOP_DEVICE,
  type MDL,
} from "../hal/wdm/device-object.js";
import {
  NT_SUCCESS,
  type NTSTATUS,
  STATUS_DEVICE_NOT_READY,
  STATUS_IMAGE_ALREADY_LOADED,
  STATUS_INVALID_DEVICE_REQUEST,
  STATUS_NOT_SUPPORTED,
  STATUS_OBJECT_NAME_COLLISION,
  STATUS_PENDING,
  STATUS_SUCCESS,
} from "../hal/wdm/ntstatus.js";
import { Irql } from "../platform/irql.js";
import { Mdl } from "../platform/mdl.js";
import { checkLength } from "../platform/page.js";
import { formatRequesterId } from "../platform/pci-address.js";
import { PciBus } from "../platform/pci-bus.js";
import type { PciDevice } from "../platform/pci-device.js";
import { PlatformError } from "../platform/platform-error.js";
import { Scheduler } from "../platform/scheduler.js";
import { Counters } from "../trace/counters.js";
import { EventBus } from "../trace/event-bus.js";
import { bugCheck, DRIVER_VERIFIER_IOMANAGER_VIOLATION, IoRule } from "./bug-check-codes.js";
import { callDriverRoutine } from "./ddi-arguments.js";
import { DeviceNode, type DeviceNodeState } from "./device-node.js";
import { DeviceObject } from "./device-object.js";
import type { DriverContribution } from "./driver.js";
import { DriverObject } from "./driver-object.js";
import { DriverRegistry } from "./driver-registry.js";
import {
  DO_BUS_ENUMERATED_DEVICE,
  DO_DEVICE_INITIALIZING,
  DO_EXCLUSIVE,
  IRP_MN_SURPRISE_REMOVAL,
} from "./io-constants.js";
import { Irp } from "./irp.js";
import { pciDeviceIds } from "./pci-hardware-ids.js";
import "./ddi-events.js";

export interface IrpOptions {
  readonly minorFunction?: number;
  readonly parameters?: IO_STACK_LOCATION["Parameters"];
  readonly mdl?: MDL;
  /** IoStatus.Status before a driver sets it (PnP IRPs start as STATUS_NOT_SUPPORTED). */
  readonly initialStatus?: NTSTATUS;
}

export interface EnumerateOptions {
  /** Requester ids of functions behind an external (hot-plug) port: their PDOs say `external`. */
  readonly external?: readonly number[];
}

/** What loadDriver did. */
export interface DriverLoadResult {
  /** DriverEntry's status (STATUS_IMAGE_ALREADY_LOADED when the service was loaded already). */
  readonly status: NTSTATUS;
  /** undefined when DriverEntry failed. */
  readonly driverObject: DriverObject | undefined;
  /** The device nodes the driver was offered (AddDevice and START ran for each). */
  readonly nodes: readonly DeviceNode[];
}

const SERVICES_KEY = "\\Registry\\Machine\\System\\CurrentControlSet\\Services\\";

@injectable()
export class IoManager {
  readonly #pci: PciBus;
  readonly #scheduler: Scheduler;
  readonly #registry: DriverRegistry;
  readonly #events: EventBus;
  readonly #counters: Counters;
  /** The bus driver that owns every PDO. */
  readonly #pciDriver = new DriverObject("pci", undefined);
  readonly #nodes = new Map<number, DeviceNode>();
  /** The function each node was made for: a different device in the same slot is a new node. */
  readonly #functions = new Map<DeviceNode, PciDevice>();
  /** Loaded drivers by lower-cased service name. */
  readonly #drivers = new Map<string, DriverObject>();
  /** Named device objects by lower-cased name. */
  readonly #names = new Map<string, DeviceObject>();
  #nextDeviceId = 1;
  #nextIrpId = 1;

  constructor(
    @inject(PciBus) pci: PciBus,
    @inject(Scheduler) scheduler: Scheduler,
    @inject(DriverRegistry) registry: DriverRegistry,
    @inject(EventBus) events: EventBus,
    @inject(Counters) counters: Counters,
  ) {
    this.#pci = pci;
    this.#scheduler = scheduler;
    this.#registry = registry;
    this.#events = events;
    this.#counters = counters;
  }

  /** Device nodes of the functions present, by requester id. */
  get nodes(): readonly DeviceNode[] {
    return [...this.#nodes.values()].sort((a, b) => a.requesterId - b.requesterId);
  }

  get drivers(): readonly DriverObject[] {
    return [...this.#drivers.values()];
  }

  /** The node of a requester id or of any device object in its stack. */
  node(target: number | DEVICE_OBJECT): DeviceNode {
    const rid =
      typeof target === "number"
        ? target
        : this.#device(target, "node").stackBottom.DeviceObjectExtension.requesterId;
    const node = rid === undefined ? undefined : this.#nodes.get(rid);
    if (node === undefined) {
      throw new PlatformError(
        "bad-handle",
        `no device node for ${typeof target === "number" ? formatRequesterId(target) : String(target)}`,
      );
    }
    return node;
  }

  /** The loaded driver with this service name. */
  driver(serviceName: string): DriverObject | undefined {
    return this.#drivers.get(serviceName.toLowerCase());
  }

  /**
   * Bus enumeration (IRP_MN_QUERY_DEVICE_RELATIONS on the PCI bus): a PDO for every new function,
   * offered at once to a loaded driver that matches it; nodes of unplugged functions get
   * SURPRISE_REMOVAL and REMOVE and are deleted. Returns the new nodes.
   */
  enumerate(options: EnumerateOptions = {}): readonly DeviceNode[] {
    this.#requirePassive("enumerate");
    const external = new Set(options.external ?? []);
    for (const node of [...this.#nodes.values()]) {
      if (!this.#present(node)) this.#surpriseRemove(node);
    }
    const added: DeviceNode[] = [];
    for (const device of this.#pci.devices()) {
      const rid = device.requesterId;
      if (this.#nodes.has(rid)) continue;
      const extension: DEVOBJ_EXTENSION = { requesterId: rid, external: external.has(rid) };
      const pdo = this.#newDevice(this.#pciDriver, undefined, 0, 0, DO_BUS_ENUMERATED_DEVICE, extension);
      const ids = pciDeviceIds(device.config.identity);
      const node = new DeviceNode(pdo, rid, ids.hardwareIds, ids.compatibleIds);
      this.#nodes.set(rid, node);
      this.#functions.set(node, device);
      added.push(node);
      this.#counters.add("pnp.enumerated");
      this.#setState(node, "enumerated", STATUS_SUCCESS);
    }
    for (const node of added) {
      const driver = this.drivers.find(
        (d) => d.contribution !== undefined && node.matches(d.contribution.hardwareIds),
      );
      if (driver !== undefined) this.#addDevice(node, driver);
    }
    return added;
  }

  /**
   * Loads a driver package: DriverEntry, then AddDevice and START for every enumerated node it
   * matches that no driver has yet.
   */
  loadDriver(driver: DriverContribution): DriverLoadResult {
    this.#requirePassive("loadDriver");
    checkContribution(driver);
    const loaded = this.driver(driver.serviceName);
    if (loaded !== undefined) return { status: STATUS_IMAGE_ALREADY_LOADED, driverObject: loaded, nodes: [] };
    const driverObject = new DriverObject(driver.serviceName, driver);
    const status = callDriverRoutine(this.#scheduler, "DriverEntry", () =>
      driver.DriverEntry(driverObject, SERVICES_KEY + driver.serviceName),
    );
    if (!NT_SUCCESS(status)) {
      driverObject.loaded = false;
      return { status, driverObject: undefined, nodes: [] };
    }
    this.#drivers.set(driver.serviceName.toLowerCase(), driverObject);
    this.#counters.add("pnp.driver.load");
    const nodes = this.nodes.filter(
      (node) => node.driver === undefined && node.state === "enumerated" && node.matches(driver.hardwareIds),
    );
    for (const node of nodes) this.#addDevice(node, driverObject);
    return { status, driverObject, nodes };
  }

  /** Loads every driver package bound in the container that is not loaded yet. */
  loadDrivers(): readonly DriverLoadResult[] {
    return this.#registry.drivers
      .filter((d) => this.driver(d.serviceName) === undefined)
      .map((d) => this.loadDriver(d));
  }

  /** Sends START again to a stopped device (after stopDevice). Returns the START IRP. */
  startDevice(node: DeviceNode): Irp {
    this.#requirePassive("startDevice");
    this.#requireState(node, "startDevice", ["stopped", "added"]);
    if (!this.#present(node)) {
      throw new PlatformError(
        "bad-state",
        `startDevice: ${formatRequesterId(node.requesterId)} left the bus; enumerate() first`,
      );
    }
    return this.#start(node);
  }

  /** IRP_MN_STOP_DEVICE: the driver releases its hardware resources; bus mastering goes off after. */
  stopDevice(node: DeviceNode): Irp {
    this.#requirePassive("stopDevice");
    this.#requireState(node, "stopDevice", ["started"]);
    return this.#sendPnp(node, IRP_MN_STOP_DEVICE, undefined, (irp) => {
      if (!NT_SUCCESS(irp.IoStatus.Status)) return;
      this.#setBusMaster(node, false);
      this.#setState(node, "stopped", irp.IoStatus.Status);
    });
  }

  /**
   * IRP_MN_REMOVE_DEVICE: the driver detaches and deletes its device object; the node goes back
   * to "enumerated" with its PDO, free for another driver.
   */
  removeDevice(node: DeviceNode): Irp {
    this.#requirePassive("removeDevice");
    if (node.driver === undefined || node.state === "deleted") {
      throw new PlatformError(
        "bad-state",
        `removeDevice: no driver has ${formatRequesterId(node.requesterId)}`,
      );
    }
    return this.#remove(node);
  }

  /**
   * Unloads a driver: REMOVE for each of its devices, then DriverUnload. A driver without an
   * Unload routine cannot be unloaded (STATUS_INVALID_DEVICE_REQUEST, as ZwUnloadDriver says).
   */
  unloadDriver(driverObject: DriverObject): NTSTATUS {
    this.#requirePassive("unloadDriver");
    if (
      !(driverObject instanceof DriverObject) ||
      !driverObject.loaded ||
      driverObject.contribution === undefined
    ) {
      throw new PlatformError("bad-handle", "unloadDriver: not a loaded driver object");
    }
    if (driverObject.DriverUnload === undefined) return STATUS_INVALID_DEVICE_REQUEST;
    for (const node of this.nodes) if (node.driver === driverObject) this.#remove(node);
    const unload = driverObject.DriverUnload;
    callDriverRoutine(this.#scheduler, "DriverUnload routine", () => unload(driverObject));
    const left = driverObject.DeviceObject;
    if (left instanceof DeviceObject) {
      throw bugCheck(
        DRIVER_VERIFIER_IOMANAGER_VIOLATION,
        [IoRule.unloadWithDevices, left.id, 0, 0],
        `${driverObject.DriverName} unloaded with ${left} still existing: IoDeleteDevice every device object first`,
      );
    }
    driverObject.loaded = false;
    this.#drivers.delete(driverObject.contribution.serviceName.toLowerCase());
    this.#counters.add("pnp.driver.unload");
    return STATUS_SUCCESS;
  }

  /** An IRP with one stack location, as IoAllocateIrp + IoGetNextIrpStackLocation would set it up. */
  createIrp(majorFunction: number, options: IrpOptions = {}): Irp {
    const { minorFunction = 0, parameters = {}, mdl, initialStatus = STATUS_SUCCESS } = options;
    checkLength(majorFunction, "IRP major function", 0xff);
    checkLength(minorFunction, "IRP minor function", 0xff);
    if (mdl !== undefined && !(mdl instanceof Mdl))
      throw new PlatformError("bad-handle", "createIrp: not an MDL");
    const stack: IO_STACK_LOCATION = {
      MajorFunction: majorFunction,
      MinorFunction: minorFunction,
      DeviceObject: undefined,
      Parameters: parameters,
    };
    const irp = new Irp(this.#nextIrpId++, stack, mdl, initialStatus);
    irp.onCompleted((done) => {
      this.#counters.add("io.irp.complete");
      if (this.#events.hasListeners("irp.complete")) {
        this.#events.emit("irp.complete", {
          irp: done.id,
          majorFunction: done.majorFunction,
          minorFunction: done.minorFunction,
          status: done.IoStatus.Status,
          information: done.IoStatus.Information,
        });
      }
    });
    return irp;
  }

  /**
   * IoCallDriver from the host: runs the device's dispatch routine at PASSIVE_LEVEL and returns
   * the IRP, whose `dispatchStatus` is what the routine returned (STATUS_PENDING: it completes
   * later, from a DPC, once the machine runs).
   */
  callDriver(deviceObject: DEVICE_OBJECT, irp: Irp): Irp {
    this.#requirePassive("callDriver");
    const device = this.#device(deviceObject, "callDriver");
    if (!(irp instanceof Irp) || irp.completed || irp.CurrentStackLocation.DeviceObject !== undefined) {
      throw new PlatformError("bad-handle", "callDriver: the IRP was already sent or completed");
    }
    if ((device.Flags & DO_DEVICE_INITIALIZING) !== 0) {
      irp.CurrentStackLocation.DeviceObject = device;
      irp.IoStatus.Status = STATUS_DEVICE_NOT_READY;
      irp.complete();
      irp.dispatchStatus = STATUS_DEVICE_NOT_READY;
      return irp;
    }
    irp.dispatchStatus = this.#dispatch(device, irp);
    return irp;
  }

  /** An IRP_MJ_READ of the MDL's bytes from `byteOffset` on the device (DO_DIRECT_IO style). */
  sendRead(deviceObject: DEVICE_OBJECT, mdl: MDL, byteOffset = 0): Irp {
    return this.#transfer(IRP_MJ_READ, deviceObject, mdl, byteOffset);
  }

  /** An IRP_MJ_WRITE of the MDL's bytes to `byteOffset` on the device. */
  sendWrite(deviceObject: DEVICE_OBJECT, mdl: MDL, byteOffset = 0): Irp {
    return this.#transfer(IRP_MJ_WRITE, deviceObject, mdl, byteOffset);
  }

  // ---- Driver side: called by the Kernel's Io* routines once they validated their input ----

  /** IoCreateDevice. */
  createDevice(
    driver: DriverObject,
    name: string | undefined,
    deviceType: number,
    characteristics: number,
    exclusive: boolean,
  ): { readonly status: NTSTATUS; readonly device: DeviceObject | undefined } {
    if (name !== undefined && this.#names.has(name.toLowerCase())) {
      return { status: STATUS_OBJECT_NAME_COLLISION, device: undefined };
    }
    const flags = DO_DEVICE_INITIALIZING | (exclusive ? DO_EXCLUSIVE : 0);
    const device = this.#newDevice(driver, name, deviceType, characteristics, flags, {
      requesterId: undefined,
      external: false,
    });
    if (name !== undefined) this.#names.set(name.toLowerCase(), device);
    return { status: STATUS_SUCCESS, device };
  }

  /** IoDeleteDevice: the device must be detached from its stack first. */
  deleteDevice(device: DeviceObject): void {
    if (device.lowerDevice !== undefined || device.AttachedDevice !== undefined) {
      throw bugCheck(
        DRIVER_VERIFIER_IOMANAGER_VIOLATION,
        [IoRule.deleteAttached, device.id, 0, 0],
        `IoDeleteDevice of ${device} while it is still attached in a stack: call IoDetachDevice first`,
      );
    }
    const driver = device.DriverObject;
    if (driver.DeviceObject === device) {
      driver.DeviceObject = device.NextDevice;
    } else {
      let previous = driver.DeviceObject;
      while (previous !== undefined && previous.NextDevice !== device) previous = previous.NextDevice;
      if (previous !== undefined) previous.NextDevice = device.NextDevice;
    }
    device.NextDevice = undefined;
    if (device.name !== undefined) this.#names.delete(device.name.toLowerCase());
    device.deleted = true;
  }

  /** IoAttachDeviceToDeviceStack: returns the device attached to, or undefined. */
  attachDevice(source: DeviceObject, target: DeviceObject): DeviceObject | undefined {
    if (source.lowerDevice !== undefined || source.AttachedDevice !== undefined || source === target.stackTop)
      return undefined;
    const top = target.stackTop;
    if (top.deleted || !top.DriverObject.loaded) return undefined;
    top.AttachedDevice = source;
    source.lowerDevice = top;
    source.AlignmentRequirement = Math.max(source.AlignmentRequirement, top.AlignmentRequirement);
    return top;
  }

  /** IoDetachDevice(TargetDevice): detaches whatever is attached on top of it. */
  detachDevice(target: DeviceObject): void {
    const above = target.AttachedDevice;
    if (!(above instanceof DeviceObject)) return;
    above.lowerDevice = undefined;
    target.AttachedDevice = undefined;
  }

  /**
   * IoStartPacket: StartIo now (at DISPATCH_LEVEL) if the device is idle, else into the device
   * queue, in Key order when a key is given (KeInsertByKeyDeviceQueue), arrival order otherwise.
   */
  startPacket(device: DeviceObject, irp: Irp, key: number | undefined): void {
    if (device.CurrentIrp !== undefined) {
      irp.sortKey = key;
      const queue = device.deviceQueue;
      const at =
        key === undefined ? queue.length : queue.findIndex((q) => q.sortKey !== undefined && q.sortKey > key);
      queue.splice(at < 0 ? queue.length : at, 0, irp);
      return;
    }
    this.#scheduler.runAtIrql(Irql.dispatch, () =>
      callDriverRoutine(this.#scheduler, "StartIo routine", () => this.#startIo(device, irp)),
    );
  }

  /** IoStartNextPacket, at DISPATCH_LEVEL: the next queued IRP becomes CurrentIrp and goes to StartIo. */
  startNextPacket(device: DeviceObject): void {
    const next = device.deviceQueue.shift();
    device.CurrentIrp = undefined;
    if (next !== undefined) this.#startIo(device, next);
  }

  #startIo(device: DeviceObject, irp: Irp): void {
    const startIo = device.DriverObject.DriverStartIo;
    if (startIo === undefined) {
      throw bugCheck(
        DRIVER_VERIFIER_IOMANAGER_VIOLATION,
        [IoRule.startPacketWithoutStartIo, device.id, irp.id, 0],
        `IoStartPacket on ${device}, whose driver has no DriverStartIo routine`,
      );
    }
    device.CurrentIrp = irp;
    startIo(device, irp);
  }

  #transfer(majorFunction: number, deviceObject: DEVICE_OBJECT, mdl: MDL, byteOffset: number): Irp {
    if (!(mdl instanceof Mdl)) throw new PlatformError("bad-handle", "send: not an MDL");
    checkLength(byteOffset, "byte offset");
    const parameters = { Length: mdl.byteCount, ByteOffset: byteOffset };
    const irp = this.createIrp(majorFunction, {
      parameters: majorFunction === IRP_MJ_READ ? { Read: parameters } : { Write: parameters },
      mdl,
    });
    return this.callDriver(deviceObject, irp);
  }

  #dispatch(device: DeviceObject, irp: Irp): NTSTATUS {
    irp.CurrentStackLocation.DeviceObject = device;
    const routine = device.DriverObject.MajorFunction[irp.majorFunction];
    if (routine === undefined) {
      irp.IoStatus.Status = STATUS_INVALID_DEVICE_REQUEST;
      irp.complete();
      return STATUS_INVALID_DEVICE_REQUEST;
    }
    return callDriverRoutine(this.#scheduler, "dispatch routine", () => routine(device, irp));
  }

  #addDevice(node: DeviceNode, driver: DriverObject): void {
    const addDevice = driver.DriverExtension.AddDevice;
    node.driver = driver;
    if (addDevice === undefined) {
      this.#fail(node, STATUS_NOT_SUPPORTED);
      return;
    }
    const status = callDriverRoutine(this.#scheduler, "AddDevice routine", () => addDevice(driver, node.pdo));
    if (!NT_SUCCESS(status)) {
      this.#fail(node, status);
      return;
    }
    this.#setState(node, "added", status);
    this.#start(node);
  }

  #start(node: DeviceNode): Irp {
    const device = this.#functions.get(node)!;
    const resources: CM_PARTIAL_RESOURCE_DESCRIPTOR[] = [
      { Type: "CmResourceTypeMemory", Start: device.barAddress, Length: device.barSize },
      { Type: "CmResourceTypeInterrupt", Vector: device.interruptLine, Level: Irql.device },
    ];
    this.#setBusMaster(node, true);
    this.#setState(node, "starting", STATUS_PENDING);
    return this.#sendPnp(node, IRP_MN_START_DEVICE, { AllocatedResourcesTranslated: resources }, (irp) => {
      const status = irp.IoStatus.Status;
      if (NT_SUCCESS(status)) {
        this.#setState(node, "started", status);
      } else {
        this.#setBusMaster(node, false);
        this.#atPassive(() => this.#fail(node, status));
      }
    });
  }

  /** REMOVE to the node's stack; once it completes the node is `after` and has no driver. */
  #remove(node: DeviceNode, after: "enumerated" | "failed" | "deleted" = "enumerated"): Irp {
    const problem = node.problem;
    return this.#sendPnp(node, IRP_MN_REMOVE_DEVICE, undefined, (irp) => {
      this.#setBusMaster(node, false);
      const stale = node.fdo;
      if (stale !== undefined) {
        throw bugCheck(
          DRIVER_VERIFIER_IOMANAGER_VIOLATION,
          [IoRule.removeWithoutDetach, stale.id, irp.id, 0],
          `${stale} is still attached after IRP_MN_REMOVE_DEVICE: detach and delete it when handling REMOVE`,
        );
      }
      node.driver = undefined;
      node.problem = after === "failed" ? problem : undefined;
      if (after === "deleted") this.deleteDevice(node.pdo);
      this.#setState(
        node,
        after,
        after === "failed" && problem !== undefined ? problem : irp.IoStatus.Status,
      );
    });
  }

  #surpriseRemove(node: DeviceNode): void {
    this.#nodes.delete(node.requesterId);
    if (node.driver !== undefined && node.fdo !== undefined) {
      if (node.state === "started") this.#sendPnp(node, IRP_MN_SURPRISE_REMOVAL, undefined, () => {});
      this.#remove(node, "deleted");
    } else {
      node.driver = undefined;
      this.deleteDevice(node.pdo);
      this.#setState(node, "deleted", STATUS_SUCCESS);
    }
    this.#functions.delete(node);
  }

  /**
   * Runs PnP work that sends IRPs now if at PASSIVE_LEVEL, else as a passive event: a START a
   * driver completed from its DPC is followed up in a worker, as the PnP manager does.
   */
  #atPassive(work: () => void): void {
    if (this.#scheduler.irql === Irql.passive) work();
    else this.#scheduler.schedule(0, work, "pnp");
  }

  /** True while the function the node was made for is still on the bus. */
  #present(node: DeviceNode): boolean {
    return (
      this.#pci.has(node.requesterId) && this.#pci.device(node.requesterId) === this.#functions.get(node)
    );
  }

  /** The PDO's part of START / STOP / REMOVE (pci.sys): Bus Master Enable, if the device is still there. */
  #setBusMaster(node: DeviceNode, enabled: boolean): void {
    if (this.#present(node)) this.#pci.setBusMaster(node.requesterId, enabled);
  }

  /** A failed node keeps no stack: what the driver attached gets REMOVE. */
  #fail(node: DeviceNode, status: NTSTATUS): void {
    node.problem = status;
    if (node.fdo !== undefined) {
      this.#remove(node, "failed");
      return;
    }
    node.driver = undefined;
    this.#setState(node, "failed", status);
  }

  /** Sends a PnP IRP to the top of the node's stack; `done` runs when it completes. */
  #sendPnp(
    node: DeviceNode,
    minorFunction: number,
    startDevice: IO_STACK_LOCATION["Parameters"]["StartDevice"],
    done: (irp: Irp) => void,
  ): Irp {
    const irp = this.createIrp(IRP_MJ_PNP, {
      minorFunction,
      parameters: startDevice === undefined ? {} : { StartDevice: startDevice },
      initialStatus: STATUS_NOT_SUPPORTED,
    });
    irp.onCompleted(done);
    const top = node.pdo.stackTop;
    if (top === node.pdo) {
      irp.CurrentStackLocation.DeviceObject = top;
      irp.IoStatus.Status = STATUS_SUCCESS;
      irp.complete();
      irp.dispatchStatus = STATUS_SUCCESS;
      return irp;
    }
    irp.dispatchStatus = this.#dispatch(top, irp);
    return irp;
  }

  #newDevice(
    driver: DriverObject,
    name: string | undefined,
    deviceType: number,
    characteristics: number,
    flags: number,
    extension: DEVOBJ_EXTENSION,
  ): DeviceObject {
    const device = new DeviceObject({
      id: this.#nextDeviceId++,
      driverObject: driver,
      name,
      deviceType,
      characteristics,
      flags,
      extension,
    });
    device.NextDevice = driver.DeviceObject;
    driver.DeviceObject = device;
    return device;
  }

  #setState(node: DeviceNode, state: DeviceNodeState, status: NTSTATUS): void {
    node.state = state;
    this.#counters.add(`pnp.state.${state}`);
    if (this.#events.hasListeners("pnp.state")) {
      this.#events.emit("pnp.state", {
        requesterId: node.requesterId,
        driver: node.driver?.DriverName ?? "",
        state,
        status,
      });
    }
  }

  #device(target: DEVICE_OBJECT, what: string): DeviceObject {
    if (!(target instanceof DeviceObject) || target.deleted) {
      throw new PlatformError("bad-handle", `${what}: not a live device object`);
    }
    return target;
  }

  #requireState(node: DeviceNode, what: string, states: readonly DeviceNodeState[]): void {
    if (!(node instanceof DeviceNode)) throw new PlatformError("bad-handle", `${what}: not a device node`);
    if (!states.includes(node.state)) {
      throw new PlatformError(
        "bad-state",
        `${what}: ${formatRequesterId(node.requesterId)} is ${node.state}, not ${states.join(" or ")}`,
      );
    }
  }

  #requirePassive(what: string): void {
    if (this.#scheduler.irql !== Irql.passive) {
      throw new PlatformError(
        "bad-state",
        `${what} runs at PASSIVE_LEVEL, not at IRQL ${this.#scheduler.irql}`,
      );
    }
  }
}

function checkContribution(driver: DriverContribution): void {
  const ok =
    typeof driver === "object" &&
    driver !== null &&
    typeof driver.serviceName === "string" &&
    /^[A-Za-z0-9_.-]+$/.test(driver.serviceName) &&
    Array.isArray(driver.hardwareIds) &&
    driver.hardwareIds.every((id) => typeof id === "string") &&
    typeof driver.DriverEntry === "function";
  if (!ok) {
    throw new PlatformError(
      "bad-handle",
      "loadDriver: a driver needs a serviceName (letters, digits, _ . -), hardwareIds and DriverEntry",
    );
  }
}
