/**
 * A VFIO group (an open /dev/vfio/<number>, or /dev/vfio/noiommu-<number>): the unit of
 * ownership. It is viable when every device in its IOMMU group is bound to vfio-pci; only a
 * viable group may join a container, and only a group in a container with a backend hands out
 * device handles (iommu-anchors §8).
 */
import { formatRequesterId, parseRequesterId } from "../../platform/pci-address.js";
import { VFIO_GROUP_FLAGS_CONTAINER_SET, VFIO_GROUP_FLAGS_VIABLE } from "./vfio-constants.js";
import { VfioContainer } from "./vfio-container.js";
import type { VfioContext } from "./vfio-context.js";
import { VfioDevice } from "./vfio-device.js";
import { VfioError } from "./vfio-error.js";

/** vfio_group_status. */
export interface VfioGroupStatus {
  readonly flags: number;
  readonly viable: boolean;
  readonly containerSet: boolean;
}

export class VfioGroup {
  readonly number: number;
  /** A group of the unsafe noiommu mode: no translation, no protection. */
  readonly noiommu: boolean;
  readonly #context: VfioContext;
  readonly #onClose: (group: VfioGroup) => void;
  readonly #devices = new Map<number, VfioDevice>();
  #container: VfioContainer | undefined;
  #closed = false;

  constructor(number: number, noiommu: boolean, context: VfioContext, onClose: (group: VfioGroup) => void) {
    this.number = number;
    this.noiommu = noiommu;
    this.#context = context;
    this.#onClose = onClose;
  }

  /** "/dev/vfio/5" or "/dev/vfio/noiommu-5". */
  get path(): string {
    return `/dev/vfio/${this.noiommu ? "noiommu-" : ""}${this.number}`;
  }

  get closed(): boolean {
    return this.#closed;
  }

  get container(): VfioContainer | undefined {
    return this.#container;
  }

  /** Requester ids of the group's devices. */
  get devices(): readonly number[] {
    return this.#context.groups.devicesIn(this.number);
  }

  /** Device handles open now. */
  get openDevices(): readonly VfioDevice[] {
    return [...this.#devices.values()];
  }

  /** VFIO_GROUP_GET_STATUS. */
  getStatus(): VfioGroupStatus {
    this.#open("VFIO_GROUP_GET_STATUS");
    const viable = this.#viable();
    const containerSet = this.#container !== undefined;
    return {
      flags: (viable ? VFIO_GROUP_FLAGS_VIABLE : 0) | (containerSet ? VFIO_GROUP_FLAGS_CONTAINER_SET : 0),
      viable,
      containerSet,
    };
  }

  /**
   * VFIO_GROUP_SET_CONTAINER. EBADF for a closed or foreign container, EINVAL if the group is in
   * a container already, EBUSY if a device of the group is not bound to vfio-pci (someone else
   * drives its DMA), EPERM when mixing noiommu and IOMMU groups.
   */
  setContainer(container: VfioContainer): void {
    const operation = "VFIO_GROUP_SET_CONTAINER";
    this.#open(operation);
    if (!(container instanceof VfioContainer) || container.closed) {
      throw new VfioError("EBADF", operation, "not an open VFIO container");
    }
    if (this.#container !== undefined) {
      throw new VfioError("EINVAL", operation, `${this.path} is already in container ${this.#container.id}`);
    }
    if (!this.#viable()) {
      const owners = this.devices
        .filter((rid) => this.#context.ownership.driverOf(rid) !== "vfio-pci")
        .map(
          (rid) =>
            `${formatRequesterId(rid)} (${this.#context.ownership.driverOf(rid) ?? "not bound to vfio-pci"})`,
        );
      throw new VfioError("EBUSY", operation, `${this.path} is not viable: ${owners.join(", ")}`);
    }
    container.addGroup(this, operation);
    this.#container = container;
  }

  /** VFIO_GROUP_UNSET_CONTAINER: EINVAL if not in one, EBUSY while device handles are open. */
  unsetContainer(): void {
    const operation = "VFIO_GROUP_UNSET_CONTAINER";
    this.#open(operation);
    const container = this.#container;
    if (container === undefined) throw new VfioError("EINVAL", operation, `${this.path} is in no container`);
    if (this.#devices.size > 0) {
      throw new VfioError(
        "EBUSY",
        operation,
        `${this.path} still has ${this.#devices.size} device handle(s) open`,
      );
    }
    container.removeGroup(this);
    this.#container = undefined;
  }

  /**
   * VFIO_GROUP_GET_DEVICE_FD("0000:BB:DD.F"): EINVAL before the container has a backend, ENODEV
   * for a device that is not a vfio-pci device of this group, EBUSY if its handle is open.
   */
  getDevice(name: string): VfioDevice {
    const operation = "VFIO_GROUP_GET_DEVICE_FD";
    this.#open(operation);
    if (this.#container?.iommuType === undefined) {
      throw new VfioError("EINVAL", operation, `${this.path} needs a container with an IOMMU backend first`);
    }
    const rid = deviceRequesterId(name);
    if (
      rid === undefined ||
      !this.devices.includes(rid) ||
      this.#context.ownership.driverOf(rid) !== "vfio-pci"
    ) {
      throw new VfioError("ENODEV", operation, `no vfio-pci device "${String(name)}" in ${this.path}`);
    }
    if (this.#devices.has(rid)) throw new VfioError("EBUSY", operation, `${name} is already open`);
    const device = new VfioDevice(rid, this.#context, (closed) => this.#devices.delete(closed.requesterId));
    this.#devices.set(rid, device);
    return device;
  }

  /** close(): closes the device handles, leaves the container, frees the group node. */
  close(): void {
    this.#open("close");
    for (const device of [...this.#devices.values()]) device.close();
    if (this.#container !== undefined) this.unsetContainer();
    this.#closed = true;
    this.#onClose(this);
  }

  #viable(): boolean {
    const devices = this.devices;
    return devices.length > 0 && devices.every((rid) => this.#context.ownership.driverOf(rid) === "vfio-pci");
  }

  #open(operation: string): void {
    if (this.#closed) throw new VfioError("EBADF", operation, `${this.path} was closed`);
  }
}

/** "0000:00:03.0" (sysfs name, PCI domain 0) to a requester id, undefined if malformed. */
export function deviceRequesterId(name: string): number | undefined {
  if (typeof name !== "string" || !name.startsWith("0000:")) return undefined;
  try {
    return parseRequesterId(name.slice(5));
  } catch {
    return undefined;
  }
}

/** The sysfs name of a requester id: "0000:00:03.0". */
export function deviceName(rid: number): string {
  return `0000:${formatRequesterId(rid)}`;
}
