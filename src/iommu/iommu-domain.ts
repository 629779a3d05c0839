/**
 * A DMA-remapping domain: one second-level page table that any number of devices, behind any of
 * the Iommu's units, translate through (shared page tables: the VCMM seed, Linux's dmar_domain).
 * Each unit the domain is attached to knows it by its own 16-bit domain id, as Linux keeps one
 * DID per IOMMU (iommu_domain_info), so invalidations go out per unit with that unit's DID.
 *
 * map/unmap change the table in RAM only; a stale IOTLB entry keeps translating until the
 * owner flushes (Iommu.flushRange / flushDomain).
 */
import type { IoMapping, IoPageTable, IoPermission } from "./io-page-table.js";
import type { Iommu } from "./iommu.js";

export class IommuDomain {
  /** Software id, unique per Iommu (not a VT-d DID). */
  readonly id: number;
  readonly iommu: Iommu;
  readonly pageTable: IoPageTable;
  /** Per unit: the DID there (0 = not attached) and how many devices there use the domain. */
  readonly #domainIds: Int32Array;
  readonly #devices: Int32Array;

  constructor(id: number, iommu: Iommu, pageTable: IoPageTable, unitCount: number) {
    this.id = id;
    this.iommu = iommu;
    this.pageTable = pageTable;
    this.#domainIds = new Int32Array(unitCount);
    this.#devices = new Int32Array(unitCount);
  }

  /**
   * `value instanceof IommuDomain`, checked by private name: under tsx, esbuild's keepNames
   * redefines every class's `name`, after which V8's instanceof is several times slower.
   */
  static is(value: unknown): value is IommuDomain {
    return typeof value === "object" && value !== null && #domainIds in value;
  }

  get destroyed(): boolean {
    return this.pageTable.destroyed;
  }

  /** Devices attached, over all units. */
  get deviceCount(): number {
    let total = 0;
    for (const n of this.#devices) total += n;
    return total;
  }

  /** The domain id unit `unitIndex` tags this domain with; 0 when no device there uses it. */
  domainId(unitIndex: number): number {
    return this.#domainIds[unitIndex] ?? 0;
  }

  map(iova: number, physicalAddress: number, size: number, permissions: IoPermission): void {
    this.pageTable.map(iova, physicalAddress, size, permissions);
  }

  unmap(iova: number, size: number): void {
    this.pageTable.unmap(iova, size);
  }

  lookup(iova: number): IoMapping | undefined {
    return this.pageTable.lookup(iova);
  }

  /** Bookkeeping for Iommu.attach: one more device behind `unitIndex`, tagged `did` there. */
  addDevice(unitIndex: number, did: number): void {
    this.#domainIds[unitIndex] = did;
    this.#devices[unitIndex]!++;
  }

  /** Bookkeeping for Iommu.detach; returns the devices left behind `unitIndex`. */
  removeDevice(unitIndex: number): number {
    const left = --this.#devices[unitIndex]!;
    if (left === 0) this.#domainIds[unitIndex] = 0;
    return left;
  }
}
