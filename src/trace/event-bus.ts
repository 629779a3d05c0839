import { EventEmitter } from "eventemitter3";
import type { MachineEvents } from "./machine-events.js";

export type MachineEventName = keyof MachineEvents & string;
export type MachineEventArgs<K extends MachineEventName> = MachineEvents[K] extends unknown[]
  ? MachineEvents[K]
  : never;
export type Disposer = () => void;

/**
 * One typed event bus per machine. Layers emit; counters, tracing and exporters subscribe. The
 * core never formats output. `on` returns a disposer instead of exposing `off`.
 */
export class EventBus {
  readonly #emitter = new EventEmitter();

  on<K extends MachineEventName>(name: K, listener: (...args: MachineEventArgs<K>) => void): Disposer {
    const fn = listener as (...args: unknown[]) => void;
    this.#emitter.on(name, fn);
    return () => {
      this.#emitter.off(name, fn);
    };
  }

  emit<K extends MachineEventName>(name: K, ...args: MachineEventArgs<K>): void {
    this.#emitter.emit(name, ...(args as unknown[]));
  }

  /** True when someone listens: lets hot paths skip building a payload nobody reads. */
  hasListeners(name: MachineEventName): boolean {
    return this.#emitter.listenerCount(name) > 0;
  }
}
