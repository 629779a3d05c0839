/**
 * Bit layouts of the VT-d legacy-mode structures the IOMMU keeps in simulated RAM (VT-d 9.1 root
 * entry, 9.3 context entry, 9.8 second-level paging entry; iommu-anchors §1.1-1.2). Every
 * structure is handled as little-endian 32-bit words, never as BigInt: word 0 holds bits 31:0,
 * word 1 bits 63:32, and so on. Reserved-bit masks follow QEMU's intel_iommu_internal.h with a
 * host address width (HAW) of 52 bits, x86-64's architectural maximum.
 */

/** Root and context entries are 128 bits (4 words); paging entries 64 bits (2 words). */
export const ROOT_ENTRY_WORDS = 4;
export const CONTEXT_ENTRY_WORDS = 4;
export const TABLE_ENTRIES = 512;

/** A physical address in two words: bits 31:12 in the low word, 51:32 in bits 19:0 of the high. */
export const ADDRESS_LOW_MASK = 0xfffff000;
export const ADDRESS_HIGH_MASK = 0x000fffff;
/** Bits 63:52 of an address-carrying qword are reserved in root and context entries (HAW 52). */
export const ADDRESS_HIGH_RESERVED = 0xfff00000;

// Root entry (VT-d 9.1): word 0 bit 0 P, bits 31:12 CTP; word 1 CTP 51:32; words 2-3 reserved.
export const ROOT_PRESENT = 0x1;
export const ROOT_RESERVED_LOW = 0xffe;

// Context entry (VT-d 9.3). Word 0: P, FPD, TT, reserved 11:4, SLPTPTR 31:12; word 1 SLPTPTR 51:32;
// word 2: AW 2:0, available 6:3, reserved 7, DID 23:8, reserved 31:24; word 3 reserved.
export const CONTEXT_PRESENT = 0x1;
export const CONTEXT_FPD = 0x2;
export const CONTEXT_TT_SHIFT = 2;
export const CONTEXT_TT_MASK = 0x3;
export const CONTEXT_RESERVED_LOW = 0xff0;
export const CONTEXT_AW_MASK = 0x7;
export const CONTEXT_DID_SHIFT = 8;
export const CONTEXT_RESERVED_WORD2 = 0xff000080;

/** Translation types (TT) this model supports: untranslated requests only, and pass-through. TT 1
 * (device-TLB / ATS) needs ECAP.DT, which this model does not offer; TT 3 is reserved. */
export const TT_MULTI_LEVEL = 0;
export const TT_PASS_THROUGH = 2;

/** AW 1 = 39-bit 3-level, AW 2 = 48-bit 4-level (CAP.SAGAW bits 1 and 2; Linux agaw). */
export const AW_39_BIT = 1;
export const AW_48_BIT = 2;

// Second-level paging entry (VT-d 9.8): R bit 0, W bit 1, PS bit 7, SNP bit 11, address 51:12,
// TM bit 62. An entry is present when R or W is set; there is no separate present bit.
export const PTE_READ = 0x1;
export const PTE_WRITE = 0x2;
export const PTE_PERMISSIONS = 0x3;
export const PTE_PAGE_SIZE = 0x80;
/** SNP (bit 11) is reserved without snoop control; PS (bit 7) is reserved in level-4 entries. */
export const PTE_RESERVED_LOW = 0x800;
export const PTE_RESERVED_LOW_TOP_LEVEL = 0x880;
/** A 2 MiB leaf's address bits 20:12 and a 1 GiB leaf's bits 29:12 must be zero. */
export const PTE_RESERVED_LOW_LARGE = [0, 0, 0x1ff800, 0x3ffff800] as const;
/** TM (bit 62) is reserved without device-TLB support; bits 63 and 61:52 are ignored. */
export const PTE_RESERVED_HIGH = 0x40000000;

export const TWO_POW_32 = 2 ** 32;
/** Bytes covered by one entry of a table at level 1..4 (4 KiB, 2 MiB, 1 GiB, 512 GiB). */
export const LEVEL_SIZE = [0, 2 ** 12, 2 ** 21, 2 ** 30, 2 ** 39] as const;
/** Input address width of a 4-level table: the MGAW this model advertises. */
export const IOVA_BITS = 48;
export const IOVA_LIMIT = 2 ** IOVA_BITS;

/** The page frame number held in an entry's address field. */
export function entryPfn(low: number, high: number): number {
  return (high & ADDRESS_HIGH_MASK) * 0x100000 + (low >>> 12);
}

/** The physical address held in an entry's address field. */
export function entryAddress(low: number, high: number): number {
  return (high & ADDRESS_HIGH_MASK) * TWO_POW_32 + ((low & ADDRESS_LOW_MASK) >>> 0);
}

/** The 9-bit index of `address` in a table of `level`. Exact for any address below 2^53. */
export function tableIndex(address: number, level: number): number {
  return (address / LEVEL_SIZE[level]!) & 511;
}

/** Writes a non-leaf entry pointing at `pfn`, with R and W set as Linux does for every table. */
export function writeTableEntry(table: Uint32Array, word: number, pfn: number): void {
  table[word + 1] = Math.floor(pfn / 0x100000);
  table[word] = ((pfn % 0x100000) * 4096 + PTE_PERMISSIONS) >>> 0;
}

/**
 * Writes a leaf entry for the page-aligned `address`; `flags` is PTE_PAGE_SIZE or 0. The low
 * word is ToUint32 of the sum (the bits below 12 are free, so nothing carries into bit 32).
 */
export function writeLeafEntry(
  table: Uint32Array,
  word: number,
  address: number,
  permissions: number,
  flags: number,
): void {
  table[word + 1] = Math.floor(address / TWO_POW_32);
  table[word] = (address + permissions + flags) >>> 0;
}
