import { EventEmitter } from "eventemitter3";
import type { MachineEvents } from "./machine-events.js";

export type MachineEventName = keyof MachineEvents & string;
export type MachineEventArgs<K extends MachineEventName> = MachineEvents[K] extends unknown[]
  ? MachineEvents[K]
  : never;
export type Disposer = () => void;

/** Whether an event has listeners right now, kept current as listeners come and go. */
export interface ListenerFlag {
  readonly active: boolean;
}

/**
 * One typed event bus per machine. Layers emit; counters, tracing and exporters subscribe. The
 * core never formats output. `on` returns a disposer instead of exposing `off`.
 */
export class EventBus {
  readonly #emitter = new EventEmitter();
  readonly #flags = new Map<string, { active: boolean }>();

  on<K extends MachineEventName>(name: K, listener: (...args: MachineEventArgs<K>) => void): Disposer {
    const fn = listener as (...args: unknown[]) => void;
    this.#emitter.on(name, fn);
    this.#refresh(name);
    return () => {
      this.#emitter.off(name, fn);
      this.#refresh(name);
    };
  }

  emit<K extends MachineEventName>(name: K, ...args: MachineEventArgs<K>): void {
    this.#emitter.emit(name, ...(args as unknown[]));
  }

  /** True when someone listens: lets hot paths skip building a payload nobody reads. */
  hasListeners(name: MachineEventName): boolean {
    return this.#emitter.listenerCount(name) > 0;
  }

  /**
   * hasListeners(name) as a live flag: a hot path takes it once and reads `active` on every
   * call, instead of asking the emitter each time.
   */
  listenerFlag(name: MachineEventName): ListenerFlag {
    let flag = this.#flags.get(name);
    if (flag === undefined) {
      flag = { active: this.hasListeners(name) };
      this.#flags.set(name, flag);
    }
    return flag;
  }

  #refresh(name: string): void {
    const flag = this.#flags.get(name);
    if (flag !== undefined) flag.active = this.#emitter.listenerCount(name) > 0;
  }
}
