/**
 * The registry of driver packages: every DriverContribution bound in the machine's container
 * (the Registry half of Registry + Contribution). Services are looked up by name, as the service
 * control manager finds a driver by its key under Services.
 */
import { inject, injectable, named } from "inversify";
import type { ContributionProvider as ContributionProviderShape } from "./contribution-provider.js";
import { DriverContribution } from "./driver.js";
import { ContributionProvider } from "./tokens.js";

@injectable()
export class DriverRegistry {
  readonly #provider: ContributionProviderShape<DriverContribution>;

  constructor(
    @inject(ContributionProvider)
    @named(DriverContribution)
    provider: ContributionProviderShape<DriverContribution>,
  ) {
    this.#provider = provider;
  }

  /** Every contributed driver, in binding order. */
  get drivers(): readonly DriverContribution[] {
    return this.#provider.getContributions();
  }

  /** The driver with this service name (case-insensitive, as service names are), if bound. */
  find(serviceName: string): DriverContribution | undefined {
    const key = serviceName.toLowerCase();
    return this.drivers.find((driver) => driver.serviceName.toLowerCase() === key);
  }
}
