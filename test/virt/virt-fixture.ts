/**
 * Hosts with a hypervisor, guests and assigned devices for the virtualization tests. The
 * workloads (drivers moving data inside a guest) are the samples' own.
 */
import nicModule from "../../drivers/nic/nic-module.js";
import { type VirtHost, virtHost } from "../../samples/device-assignment-sample.js";
import { LoopbackWire } from "../../src/devices/loopback-wire.js";
import { NicDevice } from "../../src/devices/nic-device.js";
import { RogueDevice } from "../../src/devices/rogue-device.js";
import type { RemappingMode } from "../../src/machine/machine-options.js";
import { MiB } from "../../src/platform/page.js";
import { PlatformError } from "../../src/platform/platform-error.js";
import type { DeviceAssignment } from "../../src/virt/device-assignment.js";
import type { Guest } from "../../src/virt/guest.js";
import type { GuestOptions, HypervisorOptions } from "../../src/virt/virt-options.js";

export {
  DmaLanding,
  diskTraffic,
  faultsOf,
  fdoOf,
  legacyTraffic,
  nicTraffic,
  startGuest,
} from "../../samples/device-assignment-sample.js";

export const GUEST_MEMORY = 32 * MiB;

export function host(
  remapping: RemappingMode = "strict",
  hypervisor: Partial<HypervisorOptions> = {},
  memory = 512 * MiB,
): VirtHost {
  return virtHost({ memory, remapping, seed: 11 }, hypervisor);
}

export function guest(vh: VirtHost, options: Partial<GuestOptions> & { name?: string } = {}): Guest {
  return vh.hypervisor.createGuest({ name: "vm", memory: GUEST_MEMORY, modules: [nicModule], ...options });
}

/** A NIC on the host's bus with a loopback cable, assigned to `to`. */
export function assignNic(vh: VirtHost, to: Guest): { nic: NicDevice; assignment: DeviceAssignment } {
  const nic = new NicDevice();
  vh.host.pci.attach(nic);
  new LoopbackWire().plug(nic);
  return { nic, assignment: vh.hypervisor.assignDevice(to, nic.requesterId) };
}

/** A malicious bus master assigned to `to`, bus mastering enabled by the guest. */
export function assignRogue(vh: VirtHost, to: Guest): { rogue: RogueDevice; assignment: DeviceAssignment } {
  const rogue = new RogueDevice();
  vh.host.pci.attach(rogue);
  const assignment = vh.hypervisor.assignDevice(to, rogue.requesterId);
  to.machine.pci.setBusMaster(assignment.guestRequesterId, true);
  assignment.guestFunction.syncCommand();
  return { rogue, assignment };
}

/** The PlatformError code `action` throws, or "none". */
export function errorCode(action: () => unknown): string {
  try {
    action();
  } catch (error) {
    if (error instanceof PlatformError) return error.code;
    throw error;
  }
  return "none";
}
