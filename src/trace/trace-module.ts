import { ContainerModule } from "inversify";
import { Counters } from "./counters.js";
import { EventBus } from "./event-bus.js";

/** The trace layer's bindings: one event bus and one counter set per machine. */
export default new ContainerModule(({ bind }) => {
  bind(EventBus).toSelf().inSingletonScope();
  bind(Counters).toSelf().inSingletonScope();
});
