/**
 * A VFIO container (an open /dev/vfio/vfio, iommu-anchors §8): the IOMMU context that groups
 * share. The order of use is the kernel's: add a group (VfioGroup.setContainer), choose the
 * backend (setIommu), then map user memory (mapDma) and unmap it (unmapDma).
 *
 * - type1 / type1v2 need DMA remapping: one IOMMU domain for the whole container, made when the
 *   backend is set, with every group's devices attached (vfio-iommu-type1.ts).
 * - noiommu (enable_unsafe_noiommu_mode, remapping off) has no MAP_DMA: user space gives the
 *   device physical addresses it found itself (pagemap.ts), with no protection at all.
 * When the last group leaves, the backend goes with it (its mappings are removed) and the
 * container is as new. Calls on a closed container fail with EBADF.
 */
import type { IommuDomain } from "../../iommu/iommu-domain.js";
import type { ProcessAddressSpace } from "../../platform/process-address-space.js";
import {
  VFIO_API_VERSION,
  VFIO_NOIOMMU_IOMMU,
  VFIO_TYPE1_IOMMU,
  VFIO_TYPE1v2_IOMMU,
} from "./vfio-constants.js";
import type { VfioContext } from "./vfio-context.js";
import { VfioError } from "./vfio-error.js";
import type { VfioGroup } from "./vfio-group.js";
import {
  type VfioDmaMap,
  type VfioDmaMapping,
  type VfioDmaUnmap,
  type VfioIommuInfo,
  VfioIommuType1,
} from "./vfio-iommu-type1.js";

export class VfioContainer {
  /** Like a file descriptor number: unique per Vfio. */
  readonly id: number;
  /** The process that opened the container: its memory is what MAP_DMA pins and maps. */
  readonly process: ProcessAddressSpace;
  readonly #context: VfioContext;
  readonly #groups = new Set<VfioGroup>();
  #type: number | undefined;
  #backend: VfioIommuType1 | undefined;
  #closed = false;

  constructor(id: number, process: ProcessAddressSpace, context: VfioContext) {
    this.id = id;
    this.process = process;
    this.#context = context;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** The backend set by setIommu, if any. */
  get iommuType(): number | undefined {
    return this.#type;
  }

  /** The container's IOMMU domain (type1 only). */
  get domain(): IommuDomain | undefined {
    return this.#backend?.domain;
  }

  get groups(): readonly VfioGroup[] {
    return [...this.#groups];
  }

  /** The mappings, by IOVA. */
  get mappings(): readonly VfioDmaMapping[] {
    return this.#backend?.mappings ?? [];
  }

  /** VFIO_GET_API_VERSION. */
  getApiVersion(): number {
    this.#open("VFIO_GET_API_VERSION");
    return VFIO_API_VERSION;
  }

  /** VFIO_CHECK_EXTENSION: 1 when the backend `type` can be used on this machine, else 0. */
  checkExtension(type: number): number {
    this.#open("VFIO_CHECK_EXTENSION");
    if (type === VFIO_TYPE1_IOMMU || type === VFIO_TYPE1v2_IOMMU)
      return this.#context.iommu.translationEnabled ? 1 : 0;
    if (type === VFIO_NOIOMMU_IOMMU) return this.#noiommuGroups() || this.#groups.size === 0 ? 1 : 0;
    return 0;
  }

  /**
   * VFIO_SET_IOMMU. EINVAL without a group or when a backend is already set; ENODEV when no
   * backend of that type serves these groups (type1 without remapping, noiommu with it).
   */
  setIommu(type: number): void {
    const operation = "VFIO_SET_IOMMU";
    this.#open(operation);
    if (this.#groups.size === 0) throw new VfioError("EINVAL", operation, "the container has no group yet");
    if (this.#type !== undefined)
      throw new VfioError("EINVAL", operation, `the IOMMU backend is already set (type ${this.#type})`);
    const type1 = type === VFIO_TYPE1_IOMMU || type === VFIO_TYPE1v2_IOMMU;
    if (!type1 && type !== VFIO_NOIOMMU_IOMMU)
      throw new VfioError("ENODEV", operation, `no IOMMU backend of type ${String(type)}`);
    if (type1 && this.#noiommuGroups()) {
      throw new VfioError("ENODEV", operation, "type1 needs DMA remapping; these are noiommu groups");
    }
    if (!type1 && !this.#noiommuGroups()) {
      throw new VfioError(
        "ENODEV",
        operation,
        "noiommu serves only noiommu groups; these groups have an IOMMU",
      );
    }
    if (type1) {
      const c = this.#context;
      const backend = new VfioIommuType1(
        c.iommu,
        this.process,
        c.counters,
        c.events,
        c.dmaEntryLimit,
        type === VFIO_TYPE1v2_IOMMU,
        this.id,
      );
      backend.attach(
        [...this.#groups].flatMap((group) => group.devices),
        operation,
      );
      this.#backend = backend;
    }
    this.#type = type;
  }

  /** VFIO_IOMMU_GET_INFO (type1). */
  getInfo(): VfioIommuInfo {
    return this.#type1("VFIO_IOMMU_GET_INFO").info();
  }

  /** VFIO_IOMMU_MAP_DMA (type1): pins [vaddr, vaddr + size) and maps it at `iova` for every device. */
  mapDma(map: VfioDmaMap): void {
    this.#type1("VFIO_IOMMU_MAP_DMA").map(map);
  }

  /** VFIO_IOMMU_UNMAP_DMA (type1): returns the bytes unmapped. */
  unmapDma(unmap: VfioDmaUnmap): number {
    return this.#type1("VFIO_IOMMU_UNMAP_DMA").unmap(unmap);
  }

  /** close(): every group leaves (their devices lose the domain, the mappings go). */
  close(): void {
    this.#open("close");
    for (const group of [...this.#groups]) group.unsetContainer();
    this.#closed = true;
  }

  /** Called by VfioGroup.setContainer after its own checks. */
  addGroup(group: VfioGroup, operation: string): void {
    this.#open(operation);
    const first = [...this.#groups][0];
    if (first !== undefined && first.noiommu !== group.noiommu) {
      throw new VfioError("EPERM", operation, "noiommu groups and IOMMU groups cannot share a container");
    }
    this.#backend?.attach(group.devices, operation);
    this.#groups.add(group);
  }

  /** Called by VfioGroup.unsetContainer. */
  removeGroup(group: VfioGroup): void {
    if (!this.#groups.delete(group)) return;
    this.#backend?.detach(group.devices);
    if (this.#groups.size > 0) return;
    this.#backend = undefined;
    this.#type = undefined;
  }

  #open(operation: string): void {
    if (this.#closed) throw new VfioError("EBADF", operation, `container ${this.id} was closed`);
  }

  #noiommuGroups(): boolean {
    return [...this.#groups].some((group) => group.noiommu);
  }

  #type1(operation: string): VfioIommuType1 {
    this.#open(operation);
    if (this.#type === VFIO_NOIOMMU_IOMMU)
      throw new VfioError("ENOTTY", operation, "the noiommu backend has no DMA mapping");
    if (this.#backend === undefined)
      throw new VfioError("EINVAL", operation, "no IOMMU backend set (VFIO_SET_IOMMU first)");
    return this.#backend;
  }
}
