/**
 * Collecting the bindings of a contribution point without @multiInject (Theia's
 * ContributionProvider): `bindContributionProvider(bind, Id)` binds a provider named Id, and the
 * registry injects `@inject(ContributionProvider) @named(Id)`. The provider asks the container on
 * every call, so a module loaded later is seen, and answers [] when nothing is bound.
 */
import type { Bind, ResolutionContext, ServiceIdentifier } from "inversify";
import { ContributionProvider as ContributionProviderToken } from "./tokens.js";

export interface ContributionProvider<T> {
  getContributions(): readonly T[];
}

class ContainerContributionProvider<T> implements ContributionProvider<T> {
  constructor(
    readonly id: ServiceIdentifier<T>,
    readonly context: ResolutionContext,
  ) {}

  getContributions(): readonly T[] {
    return this.context.getAll(this.id, { optional: true });
  }
}

export function bindContributionProvider<T>(bind: Bind, id: ServiceIdentifier<T>): void {
  bind(ContributionProviderToken)
    .toDynamicValue((context) => new ContainerContributionProvider<T>(id, context))
    .inSingletonScope()
    .whenNamed(id as symbol);
}
