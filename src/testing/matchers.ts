/**
 * vitest matchers for DMA tests, registered with expect.extend when the kit is imported:
 *
 *   expect(bytes).toEqualBytes(expected)             two Uint8Arrays hold the same bytes
 *   expect(device).toHaveTransferred(bytes)          a ScriptableDevice moved exactly these bytes
 *   expect(t).toHaveNoIommuFaults()                  a TestMachine saw no IOMMU fault ...
 *   expect(t).toHaveIommuFaults([{ requesterId, address, access, reason }])   ... or exactly these
 *   expect(t).toHaveNoBounces() / toHaveBounced(n)   bounce copies (map registers, sub-page bounce)
 *   expect(() => ...).toThrowBugCheck(0xe6, [0x13])  a BugCheck with this code and parameters
 *   expect(snapshot).toBeUnchanged()                 no frame outside the excepted owners changed
 *
 * Failure messages list what was seen (faults with their VT-d reason text, the first differing
 * byte with its neighbours, changed frames with their owners) instead of a raw object diff.
 */
import { expect } from "vitest";
import type { DmaBounceEvent } from "../hal/hal-events.js";
import { BugCheck } from "../hal/wdm/bug-check.js";
import { describeFaultReason } from "../iommu/fault-reason.js";
import type { IommuFaultEvent } from "../iommu/iommu-events.js";
import type { DmaAccess } from "../platform/dma-remapper.js";
import { MemorySnapshot } from "../platform/memory-snapshot.js";
import { formatAddress, PAGE_SIZE } from "../platform/page.js";
import { formatRequesterId } from "../platform/pci-address.js";
import { PlatformError } from "../platform/platform-error.js";
import { describeDifference, sameBytes } from "./bytes.js";
import { ScriptableDevice } from "./scriptable-device.js";

export interface TransferredOptions {
  /** Only what the device read from memory ("read") or wrote to it ("write"). */
  readonly access?: DmaAccess;
  /** Only the accesses of this request (ScriptRequest.index). */
  readonly request?: number;
}

/** A fault to expect: the fields given must match; leave out what does not matter. */
export interface ExpectedFault {
  readonly requesterId?: number;
  /** The faulting bus address, exact. */
  readonly address?: number;
  readonly access?: DmaAccess;
  /** VT-d fault reason (FaultReason). */
  readonly reason?: number;
  readonly unit?: string;
}

export interface DmaMatchers<R = unknown> {
  /** Fast on large arrays (one compare), and the message shows the first differing byte. */
  toEqualBytes(expected: Uint8Array): R;
  toHaveTransferred(expected: Uint8Array, options?: TransferredOptions): R;
  toHaveNoIommuFaults(): R;
  toHaveIommuFaults(expected: readonly ExpectedFault[]): R;
  toHaveNoBounces(): R;
  toHaveBounced(times: number): R;
  /** `parameters`: the first ones to compare; undefined entries match anything. */
  toThrowBugCheck(code: number, parameters?: readonly (number | undefined)[]): R;
  toBeUnchanged(): R;
}

declare module "vitest" {
  // biome-ignore lint/suspicious/noExplicitAny: vitest declares Matchers<T = any>; merging must repeat it.
  interface Matchers<T = any> extends DmaMatchers<T> {}
}

interface Result {
  readonly pass: boolean;
  readonly message: () => string;
}

interface FaultSource {
  readonly iommuFaults: readonly IommuFaultEvent[];
}

interface BounceSource {
  readonly bounces: readonly DmaBounceEvent[];
}

const hex = (value: number): string => `0x${value.toString(16)}`;

export function describeFault(fault: IommuFaultEvent): string {
  return `${formatRequesterId(fault.requesterId)} ${fault.access} at ${formatAddress(fault.address)}: reason ${fault.reason} (${describeFaultReason(fault.reason)}), ${fault.unit}${fault.recorded ? "" : ", not recorded"}`;
}

function faultList(faults: readonly IommuFaultEvent[]): string {
  return faults.length === 0 ? "none" : faults.map((f) => `\n    ${describeFault(f)}`).join("");
}

function faultMatches(fault: IommuFaultEvent, expected: ExpectedFault): boolean {
  return (
    (expected.requesterId === undefined || expected.requesterId === fault.requesterId) &&
    (expected.address === undefined || expected.address === fault.address) &&
    (expected.access === undefined || expected.access === fault.access) &&
    (expected.reason === undefined || expected.reason === fault.reason) &&
    (expected.unit === undefined || expected.unit === fault.unit)
  );
}

function faultsOf(received: unknown, matcher: string): readonly IommuFaultEvent[] {
  const faults = (received as FaultSource | undefined)?.iommuFaults;
  if (!Array.isArray(faults))
    throw new PlatformError("bad-handle", `${matcher} expects a TestMachine (something with iommuFaults)`);
  return faults;
}

function bouncesOf(received: unknown, matcher: string): readonly DmaBounceEvent[] {
  const bounces = (received as BounceSource | undefined)?.bounces;
  if (!Array.isArray(bounces))
    throw new PlatformError("bad-handle", `${matcher} expects a TestMachine (something with bounces)`);
  return bounces;
}

function bounceList(bounces: readonly DmaBounceEvent[]): string {
  const shown = bounces
    .slice(0, 8)
    .map(
      (b) =>
        `\n    adapter ${b.adapter} ${b.direction} ${b.bytes} bytes at logical ${formatAddress(b.logicalAddress)}`,
    );
  return `${shown.join("")}${bounces.length > 8 ? `\n    ... ${bounces.length - 8} more` : ""}`;
}

function bugCheckText(code: number, parameters: readonly (number | undefined)[]): string {
  const shown = [0, 1, 2, 3].map((i) => (parameters[i] === undefined ? "*" : hex(parameters[i]!)));
  return `BugCheck ${hex(code)} (${shown.join(", ")})`;
}

export const dmaMatchers = {
  toEqualBytes(received: unknown, expected: Uint8Array): Result {
    if (!(received instanceof Uint8Array))
      throw new PlatformError("bad-handle", "toEqualBytes expects a Uint8Array");
    const pass = sameBytes(received, expected);
    return {
      pass,
      message: () =>
        pass
          ? `expected the ${expected.length} bytes to differ`
          : `expected equal bytes: ${describeDifference(received, expected)}`,
    };
  },

  toHaveTransferred(received: unknown, expected: Uint8Array, options: TransferredOptions = {}): Result {
    if (!(received instanceof ScriptableDevice))
      throw new PlatformError("bad-handle", "toHaveTransferred expects a ScriptableDevice");
    const actual = received.transferred(options.access, options.request);
    const pass = sameBytes(actual, expected);
    const scope = `${options.access === undefined ? "" : ` (${options.access}s only)`}${options.request === undefined ? "" : ` in request ${options.request}`}`;
    return {
      pass,
      message: () =>
        pass
          ? `expected ${received.name} not to have transferred these ${expected.length} bytes${scope}`
          : `expected ${received.name} to have transferred ${expected.length} bytes${scope}: ${describeDifference(actual, expected)}`,
    };
  },

  toHaveNoIommuFaults(received: unknown): Result {
    const faults = faultsOf(received, "toHaveNoIommuFaults");
    return {
      pass: faults.length === 0,
      message: () =>
        faults.length === 0
          ? "expected IOMMU faults, saw none"
          : `expected no IOMMU faults, saw ${faults.length}:${faultList(faults)}`,
    };
  },

  toHaveIommuFaults(received: unknown, expected: readonly ExpectedFault[]): Result {
    const faults = faultsOf(received, "toHaveIommuFaults");
    const pass = faults.length === expected.length && expected.every((e, i) => faultMatches(faults[i]!, e));
    const wanted = expected.map(
      (e) =>
        `\n    ${e.requesterId === undefined ? "any requester" : formatRequesterId(e.requesterId)} ${e.access ?? "read or write"} at ${e.address === undefined ? "any address" : formatAddress(e.address)}${e.reason === undefined ? "" : `: reason ${e.reason} (${describeFaultReason(e.reason)})`}`,
    );
    return {
      pass,
      message: () =>
        `expected ${pass ? "other than " : ""}exactly these IOMMU faults, in order:${wanted.join("") || " none"}\n  saw:${faultList(faults)}`,
    };
  },

  toHaveNoBounces(received: unknown): Result {
    const bounces = bouncesOf(received, "toHaveNoBounces");
    return {
      pass: bounces.length === 0,
      message: () =>
        bounces.length === 0
          ? "expected bounce copies, saw none"
          : `expected no bounce copies, saw ${bounces.length}:${bounceList(bounces)}`,
    };
  },

  toHaveBounced(received: unknown, times: number): Result {
    const bounces = bouncesOf(received, "toHaveBounced");
    const pass = bounces.length === times;
    return {
      pass,
      message: () =>
        `expected ${pass ? "not " : ""}${times} bounce copies, saw ${bounces.length}:${bounceList(bounces)}`,
    };
  },

  toThrowBugCheck(received: unknown, code: number, parameters: readonly (number | undefined)[] = []): Result {
    let thrown: unknown = received;
    let threw = true;
    if (typeof received === "function") {
      threw = false;
      try {
        received();
      } catch (error) {
        thrown = error;
        threw = true;
      }
    }
    const wanted = bugCheckText(code, parameters);
    if (!threw) return { pass: false, message: () => `expected ${wanted}, but nothing was thrown` };
    if (!(thrown instanceof BugCheck)) {
      return { pass: false, message: () => `expected ${wanted}, but got ${String(thrown)}` };
    }
    const pass =
      thrown.code === code && parameters.every((p, i) => p === undefined || thrown.parameters[i] === p);
    return {
      pass,
      message: () => `expected ${pass ? "no " : ""}${wanted}, got ${thrown.message}`,
    };
  },

  toBeUnchanged(received: unknown): Result {
    if (!(received instanceof MemorySnapshot))
      throw new PlatformError("bad-handle", "toBeUnchanged expects a MemorySnapshot");
    const changed = received.changedFrames();
    const lines = changed
      .slice(0, 16)
      .map((c) => `\n    frame ${formatAddress(c.pfn * PAGE_SIZE)} (owner ${c.ownerName})`);
    return {
      pass: changed.length === 0,
      message: () =>
        changed.length === 0
          ? "expected memory to have changed, but no frame did"
          : `expected no frame outside the excepted owners to change, but ${changed.length} did:${lines.join("")}${changed.length > 16 ? `\n    ... ${changed.length - 16} more` : ""}`,
    };
  },
};

expect.extend(dmaMatchers);
