/**
 * One machine of the attack lab: the remapping mode and policies of a configuration, the attacknic
 * driver loaded, lab NICs plugged (behind an external port when the configuration says so), and
 * the host-side helpers the attacks need: I/O requests an application would send, kernel memory a
 * kernel component would allocate (pool blocks that share pages, whole pages whose frame can be
 * reused), and a meter over what the machine counted.
 *
 * The meter counts from the machine's bus and counters, never from an attack's own account:
 * bounce copies ("dma.bounce"), IOTLB invalidation commands the units executed ("iommu.invalidate"
 * of kind iotlb-*), IOTLB misses ("iommu.iotlb.miss"), transfer mappings ("hal.remap.map"), IOMMU
 * faults per requester ("iommu.fault"), the IOMMU's table frames, and virtual time.
 */
import { AttackNicDriver } from "../../drivers/attack-nic/attack-nic-driver.js";
import attackNicModule from "../../drivers/attack-nic/attack-nic-module.js";
import { IoManager } from "../../src/ddi/io-manager.js";
import type { Irp } from "../../src/ddi/irp.js";
import { Kernel } from "../../src/ddi/kernel.js";
import { NonPagedPool } from "../../src/ddi/pool-type.js";
import type { DEVICE_OBJECT, MDL } from "../../src/hal/wdm/device-object.js";
import { Machine } from "../../src/machine/machine.js";
import type { RemappingMode } from "../../src/machine/machine-options.js";
import { KernelMemory } from "../../src/platform/kernel-memory.js";
import { PAGE_SIZE } from "../../src/platform/page.js";
import { LabNic } from "./lab-nic.js";

export interface LabConfig {
  readonly mode: RemappingMode;
  readonly seed: number;
  /** Lab NICs to plug (default 1). */
  readonly nics?: number;
  /** The NICs sit behind an external (Thunderbolt-like) port: the HAL treats them as untrusted. */
  readonly external?: boolean;
  /** attacknic joins every NIC after the first into the first one's DMA domain. */
  readonly shareDomains?: boolean;
  /** Receive ring per NIC (a common buffer), bytes; 0 for none. */
  readonly ringBytes?: number;
}

/** What the machine counted between two points. */
export interface Measured {
  readonly bounces: number;
  readonly bounceBytes: number;
  readonly invalidations: number;
  readonly iotlbMisses: number;
  readonly mappings: number;
  readonly timeNs: number;
  /** Frames of the IOMMU's tables at the end (not a difference). */
  readonly tableFrames: number;
}

/** A kernel buffer an I/O request describes. */
export interface KernelBuffer {
  readonly va: number;
  readonly length: number;
  readonly physicalAddress: number;
  readonly mdl: MDL;
}

const TAG = "ALab";

export class AttackLab {
  readonly machine: Machine;
  readonly kernel: Kernel;
  readonly io: IoManager;
  readonly driver: AttackNicDriver;
  readonly nics: LabNic[] = [];
  readonly fdos: DEVICE_OBJECT[] = [];
  readonly #faults = new Map<number, number>();
  readonly #kernelMemory: KernelMemory;
  #bounces = 0;
  #bounceBytes = 0;
  #invalidations = 0;

  constructor(config: LabConfig) {
    this.machine = new Machine({ remapping: config.mode, seed: config.seed }, [attackNicModule]);
    this.kernel = this.machine.get(Kernel);
    this.io = this.machine.get(IoManager);
    this.#kernelMemory = this.machine.get(KernelMemory);
    this.driver = this.machine.get(AttackNicDriver);
    this.driver.shareDomains = config.shareDomains ?? false;
    this.driver.ringBytes = config.ringBytes ?? 0;
    const events = this.machine.events;
    events.on("dma.bounce", (event) => {
      this.#bounces++;
      this.#bounceBytes += event.bytes;
    });
    events.on("iommu.invalidate", (event) => {
      if (event.kind.startsWith("iotlb")) this.#invalidations++;
    });
    events.on("iommu.fault", (event) => {
      this.#faults.set(event.requesterId, (this.#faults.get(event.requesterId) ?? 0) + 1);
    });
    const count = config.nics ?? 1;
    for (let i = 0; i < count; i++) {
      const nic = new LabNic(`lab NIC ${i}`);
      this.machine.pci.attach(nic);
      this.nics.push(nic);
    }
    this.io.enumerate({ external: config.external === true ? this.nics.map((nic) => nic.requesterId) : [] });
    this.io.loadDrivers();
    for (const nic of this.nics) {
      const fdo = this.io.node(nic.requesterId).fdo;
      if (fdo === undefined) throw new Error(`attacknic did not start ${nic.name}`);
      this.fdos.push(fdo);
    }
  }

  /** IRP_MJ_WRITE on NIC `index`: the device reads `buffer`. */
  transmit(index: number, buffer: KernelBuffer): Irp {
    return this.io.sendWrite(this.fdos[index]!, buffer.mdl);
  }

  /** IRP_MJ_READ on NIC `index`: the device writes `buffer`. */
  receive(index: number, buffer: KernelBuffer): Irp {
    return this.io.sendRead(this.fdos[index]!, buffer.mdl);
  }

  /** Runs until `done` holds or `limitNs` of virtual time has passed. */
  runUntil(done: () => boolean, limitNs = 60_000_000_000): boolean {
    return this.machine.scheduler.runUntil(done, limitNs);
  }

  /** Runs until NIC `index` has been programmed `count` times (the driver handed it a transfer). */
  runUntilProgrammed(index: number, count: number): boolean {
    return this.runUntil(() => this.nics[index]!.programmed.length >= count);
  }

  /** ExAllocatePoolWithTag(NonPagedPool): blocks up to 2 KiB share pool pages with other allocations. */
  poolBuffer(length: number): KernelBuffer {
    const k = this.kernel;
    const va = k.ExAllocatePoolWithTag(NonPagedPool, length, TAG);
    if (va === 0) throw new Error(`no pool for ${length} bytes`);
    const mdl = k.IoAllocateMdl(va, length, false, false, undefined)!;
    k.MmBuildMdlForNonPagedPool(mdl);
    return { va, length, physicalAddress: k.MmGetPhysicalAddress(va), mdl };
  }

  freePoolBuffer(buffer: KernelBuffer): void {
    this.kernel.IoFreeMdl(buffer.mdl);
    this.kernel.ExFreePoolWithTag(buffer.va, TAG);
  }

  /** A kernel object of a component other than the driver, filled with `bytes`. */
  kernelObject(bytes: Uint8Array): { readonly va: number; readonly physicalAddress: number } {
    const va = this.kernel.ExAllocatePoolWithTag(NonPagedPool, bytes.length, "Kobj");
    if (va === 0) throw new Error(`no pool for a ${bytes.length}-byte object`);
    this.kernel.WriteMemory(va, bytes);
    return { va, physicalAddress: this.kernel.MmGetPhysicalAddress(va) };
  }

  /** A whole page of the nonpaged pool, described by an MDL. */
  pageBuffer(): KernelBuffer & { readonly pfn: number } {
    const buffer = this.poolBuffer(PAGE_SIZE);
    return { ...buffer, pfn: buffer.physicalAddress / PAGE_SIZE };
  }

  /** Frees the page and hands its frame to the next allocation: what a busy kernel does at once. */
  reusePage(buffer: KernelBuffer & { readonly pfn: number }, owner: string, bytes: Uint8Array): number {
    this.freePoolBuffer(buffer);
    const frames = this.machine.frames;
    const id = frames.registerOwner(owner);
    const pfns = frames.allocate(1, {
      owner: id,
      minAddress: buffer.pfn * PAGE_SIZE,
      maxAddress: buffer.pfn * PAGE_SIZE + PAGE_SIZE - 1,
    });
    const va = this.#kernelMemory.mapPages(pfns, id);
    this.kernel.WriteMemory(va, bytes);
    return va;
  }

  read(va: number, length: number): Uint8Array {
    return this.kernel.ReadMemory(va, length);
  }

  /** IOMMU faults NIC `index` caused so far. */
  faults(index: number): number {
    return this.#faults.get(this.nics[index]!.requesterId) ?? 0;
  }

  /** Starts measuring: `stop()` returns what was counted since. */
  measure(): { stop(): Measured } {
    const counters = this.machine.counters;
    const start = {
      bounces: this.#bounces,
      bounceBytes: this.#bounceBytes,
      invalidations: this.#invalidations,
      misses: counters.get("iommu.iotlb.miss"),
      maps: counters.get("hal.remap.map"),
      time: this.machine.scheduler.now,
    };
    return {
      stop: (): Measured => ({
        bounces: this.#bounces - start.bounces,
        bounceBytes: this.#bounceBytes - start.bounceBytes,
        invalidations: this.#invalidations - start.invalidations,
        iotlbMisses: counters.get("iommu.iotlb.miss") - start.misses,
        mappings: counters.get("hal.remap.map") - start.maps,
        timeNs: this.machine.scheduler.now - start.time,
        tableFrames: this.machine.frames.framesOwnedBy(this.machine.frames.registerOwner("iommu")),
      }),
    };
  }
}

/** Recognisable bytes: a 16-byte label, then a seeded xorshift stream. */
export function secretBytes(label: string, length: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(length);
  bytes.set(new TextEncoder().encode(label.padEnd(16, ".").slice(0, 16)));
  const words = new Uint32Array(Math.floor((length - 16) / 4));
  let x = (seed * 0x9e3779b1 + 0x7f4a7c15) >>> 0 || 1;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    words[i] = x;
  }
  bytes.set(new Uint8Array(words.buffer), 16);
  return bytes;
}

/** True when `haystack` contains `needle`. */
export function contains(haystack: Uint8Array, needle: Uint8Array): boolean {
  return Buffer.from(haystack.buffer, haystack.byteOffset, haystack.length).indexOf(needle) >= 0;
}
