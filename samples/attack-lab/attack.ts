/**
 * The vocabulary of the attack lab (perf-security-anchors §14.2, classes 1-6): an attack runs in
 * several configurations, with and without its mitigation, on a fresh machine each; what it
 * observed decides its outcome, never the attack's word. Leaking a secret outranks corrupting
 * memory, which outranks nothing happening ("blocked": the IOMMU, a bounce page or a revoked
 * mapping stopped it).
 */
import type { LabConfig } from "./lab.js";

export type AttackOutcome = "leaked" | "corrupted" | "blocked";

/** What one run of an attack saw, from the machine. */
export interface Observation {
  /** The attacking device's reads brought the secret back. */
  readonly leaked: boolean;
  /** Memory the attacker does not own (a kernel object, a structure) changed. */
  readonly corrupted: boolean;
  /** IOMMU faults the attacking device caused. */
  readonly faults: number;
  /** One line, from the numbers. */
  readonly detail: string;
  /** A precondition the attack needs did not hold; the run then counts as failed. */
  readonly precondition?: string;
}

export interface AttackConfiguration {
  readonly label: string;
  readonly mitigated: boolean;
  readonly expected: AttackOutcome;
}

/** The configuration of the benign workload that prices a mitigation. */
export interface CostConfig extends LabConfig {
  /** The port's completion watchdog runs. */
  readonly watchdog?: boolean;
}

export interface AttackDefinition {
  /** Class number in perf-security-anchors §14.2. */
  readonly id: number;
  readonly key: string;
  readonly title: string;
  readonly mitigation: string;
  /** What real systems do about it, with the source. */
  readonly practice: string;
  readonly configurations: readonly AttackConfiguration[];
  run(configuration: AttackConfiguration, seed: number): Observation;
  /** The workload machine with the mitigation off (baseline) or on. */
  costConfig(mitigated: boolean, seed: number): CostConfig;
}

export function outcomeOf(observation: Observation): AttackOutcome {
  if (observation.leaked) return "leaked";
  if (observation.corrupted) return "corrupted";
  return "blocked";
}
