/**
 * The one options object a Machine is built from, and its resolution into each layer's options.
 * Bad values are rejected here with a clear PlatformError, before any layer is built.
 */
import type { HalOptions } from "../hal/hal-options.js";
import type { IommuOptions, IommuUnitOptions } from "../iommu/iommu-options.js";
import { GiB, MiB, PAGE_SIZE, TiB } from "../platform/page.js";
import type { RamRange } from "../platform/physical-memory.js";
import { PlatformError } from "../platform/platform-error.js";
import type { PlatformOptions } from "../platform/platform-options.js";

/** off: no IOMMU translation. passthrough: identity domains. strict/lazy: remapping with that unmap policy. */
export type RemappingMode = "off" | "passthrough" | "strict" | "lazy";
export const REMAPPING_MODES: readonly RemappingMode[] = ["off", "passthrough", "strict", "lazy"];

export interface MachineOptions {
  /** RAM in bytes (default 8 GiB). RAM above `mmioHoleStart` is moved above 4 GiB. */
  readonly memory?: number;
  /** Where the MMIO hole below 4 GiB begins (default 3 GiB); RAM resumes at 4 GiB. */
  readonly mmioHoleStart?: number;
  readonly remapping?: RemappingMode;
  /** Remapping units and the requesters each covers (default: one unit covering everything). */
  readonly iommuUnits?: readonly IommuUnitOptions[];
  readonly iotlbEntries?: number;
  readonly faultRecords?: number;
  /** false: CPU caches are not snooped by DMA, flushes become mandatory (default true). */
  readonly coherent?: boolean;
  readonly seed?: number;
  /** Bounce pages per reach class when not remapping (default 512: 2 MiB below 16 MiB and below 4 GiB). */
  readonly mapRegisterPoolPages?: number;
}

export interface ResolvedMachineOptions {
  readonly remapping: RemappingMode;
  readonly platform: PlatformOptions;
  readonly iommu: IommuOptions;
  readonly hal: HalOptions;
}

const FOUR_GIB = 4 * GiB;
export const MAX_MEMORY = 4 * 1024 * TiB;

export function resolveMachineOptions(options: MachineOptions = {}): ResolvedMachineOptions {
  const memory = options.memory ?? 8 * GiB;
  const holeStart = options.mmioHoleStart ?? 3 * GiB;
  if (!Number.isSafeInteger(memory) || memory < 16 * MiB || memory > MAX_MEMORY || memory % PAGE_SIZE !== 0) {
    throw new PlatformError(
      "out-of-range",
      `memory size ${String(memory)} must be a whole number of pages between 16 MiB and 4 PiB`,
    );
  }
  if (
    !Number.isSafeInteger(holeStart) ||
    holeStart < 16 * MiB ||
    holeStart > FOUR_GIB ||
    holeStart % PAGE_SIZE !== 0
  ) {
    throw new PlatformError(
      "out-of-range",
      `MMIO hole start ${String(holeStart)} must be page aligned in [16 MiB, 4 GiB]`,
    );
  }
  const remapping = options.remapping ?? "strict";
  if (!REMAPPING_MODES.includes(remapping)) {
    throw new PlatformError(
      "out-of-range",
      `remapping mode ${String(remapping)} is not one of ${REMAPPING_MODES.join(", ")}`,
    );
  }
  const mapRegisterPoolPages = options.mapRegisterPoolPages ?? 512;
  if (
    !Number.isSafeInteger(mapRegisterPoolPages) ||
    mapRegisterPoolPages < 1 ||
    mapRegisterPoolPages > 1024
  ) {
    throw new PlatformError(
      "out-of-range",
      `map register pool ${String(mapRegisterPoolPages)} must be 1..1024 pages`,
    );
  }
  const seed = options.seed ?? 1;
  if (!Number.isSafeInteger(seed))
    throw new PlatformError("out-of-range", `seed ${String(seed)} must be an integer`);
  const ramRanges: RamRange[] =
    memory <= holeStart
      ? [{ start: 0, end: memory }]
      : [
          { start: 0, end: holeStart },
          { start: FOUR_GIB, end: FOUR_GIB + (memory - holeStart) },
        ];
  return {
    remapping,
    platform: { ramRanges, coherent: options.coherent ?? true, seed },
    iommu: {
      translation: remapping !== "off",
      units: options.iommuUnits ?? [{ name: "dmar0", requesters: "rest" }],
      iotlbEntries: options.iotlbEntries ?? 64,
      faultRecords: options.faultRecords ?? 8,
    },
    hal: {
      remapping,
      mapRegisterPoolPages,
      flushQueueEntries: 256,
      flushQueueTimeoutNs: 10_000_000,
    },
  };
}
