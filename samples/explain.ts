/** Small formatters for the one-line explanations: sizes, addresses, what the mode does. */
import type { RemappingMode } from "../src/machine/machine-options.js";

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${trim(bytes / 1024)} KiB`;
  if (bytes < 1024 ** 3) return `${trim(bytes / 1024 ** 2)} MiB`;
  return `${trim(bytes / 1024 ** 3)} GiB`;
}

/** 0x1_2345_6000: hex with underscores every four digits, as WinDbg groups them. */
export function formatAddress(address: number): string {
  const digits = address.toString(16);
  const groups: string[] = [];
  for (let end = digits.length; end > 0; end -= 4) groups.unshift(digits.slice(Math.max(0, end - 4), end));
  return `0x${groups.join("_")}`;
}

/** How device addresses are made in a mode, in a few words. */
export function addressing(mode: RemappingMode): string {
  switch (mode) {
    case "off":
      return "IOMMU off: logical = physical";
    case "passthrough":
      return "passthrough: logical = physical";
    case "strict":
      return "strict: IOVAs, IOTLB invalidated at every unmap";
    case "lazy":
      return "lazy: IOVAs, invalidations batched by the flush queue";
  }
}

export function plural(count: number, noun: string, nouns = `${noun}s`): string {
  return `${count} ${count === 1 ? noun : nouns}`;
}

function trim(value: number): string {
  return value.toFixed(1).replace(/\.0$/, "");
}
