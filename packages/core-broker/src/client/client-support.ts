import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Clock, Timer } from '../common/clock';
import type { TopicRoute } from '../message/protocol';
import { Permission } from '../message/protocol';
import type { MessageQueue } from './allocation';

/**
 * Plumbing shared by the clients (producer and consumers): client ids, timers on the injected
 * clock that a shutdown cancels in one call, a small typed event emitter, option checks, and the
 * queue lists of a topic route. Internal to `client/`; nothing here is public API.
 */

let instanceSeq = 0;

/**
 * A client id unique in this process and very likely across hosts: `host@pid#kind-n-random`
 * (RocketMQ's `clientIP@instanceName`). Consumer groups sort their members by it, so it must be
 * stable for the life of the client.
 */
export function createClientId(kind: string): string {
  instanceSeq++;
  return `${hostname()}@${process.pid}#${kind}-${instanceSeq}-${randomBytes(3).toString('hex')}`;
}

/** Timers on an injected clock that can all be cancelled at once (and sleeps woken) on shutdown. */
export class ClientTimers {
  private readonly timers = new Set<Timer>();
  private readonly sleepers = new Set<() => void>();
  private cancelled = false;

  constructor(private readonly clock: Clock) {}

  /** Runs `callback` after `delayMs` unless cancelled first. */
  after(delayMs: number, callback: () => void): Timer {
    if (this.cancelled) return { cancel: () => undefined };
    const timer: Timer = this.clock.setTimer(delayMs, () => {
      this.timers.delete(handle);
      callback();
    });
    const handle: Timer = {
      cancel: () => {
        this.timers.delete(handle);
        timer.cancel();
      },
    };
    this.timers.add(handle);
    return handle;
  }

  /**
   * Runs `task` every `intervalMs`. The next run is armed only after an asynchronous task settles,
   * so runs never overlap; a task's rejection is handed to `onError`.
   */
  every(intervalMs: number, task: () => void | Promise<void>, onError: (error: unknown) => void): void {
    const arm = (): void => {
      this.after(intervalMs, () => {
        let result: void | Promise<void>;
        try {
          result = task();
        } catch (error) {
          onError(error);
          arm();
          return;
        }
        if (result instanceof Promise) result.catch(onError).finally(arm);
        else arm();
      });
    };
    arm();
  }

  /** Resolves after `delayMs`, or at once when the timers are cancelled. */
  sleep(delayMs: number): Promise<void> {
    if (this.cancelled) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const wake = (): void => {
        this.sleepers.delete(wake);
        timer.cancel();
        resolve();
      };
      this.sleepers.add(wake);
      const timer = this.after(delayMs, wake);
    });
  }

  /** Cancels every timer, wakes every sleeper, and refuses new timers. */
  cancelAll(): void {
    this.cancelled = true;
    for (const timer of [...this.timers]) timer.cancel();
    for (const wake of [...this.sleepers]) wake();
  }
}

/** A listener of a client event. */
export type EventListener<T> = (event: T) => void;

/**
 * A minimal typed emitter for a client's instrumentation events (DESIGN.md, convention 12). A
 * listener that throws is ignored: instrumentation never breaks a client.
 */
export class ClientEvents<Events extends object> {
  private readonly listeners = new Map<keyof Events, Set<EventListener<never>>>();

  on<K extends keyof Events>(event: K, listener: EventListener<Events[K]>): void {
    let set = this.listeners.get(event);
    if (!set) {
      set = new Set();
      this.listeners.set(event, set);
    }
    set.add(listener as EventListener<never>);
  }

  off<K extends keyof Events>(event: K, listener: EventListener<Events[K]>): void {
    this.listeners.get(event)?.delete(listener as EventListener<never>);
  }

  emit<K extends keyof Events>(event: K, payload: Events[K]): void {
    const set = this.listeners.get(event);
    if (!set) return;
    for (const listener of [...set]) {
      try {
        (listener as EventListener<Events[K]>)(payload);
      } catch {
        // instrumentation must not break the client
      }
    }
  }
}

/**
 * A client with instrumentation events: `on()` and `off()` over its {@link ClientEvents}, both
 * returning the client for chaining.
 */
export abstract class EventedClient<Events extends object> {
  protected readonly events = new ClientEvents<Events>();

  on<K extends keyof Events>(event: K, listener: EventListener<Events[K]>): this {
    this.events.on(event, listener);
    return this;
  }

  off<K extends keyof Events>(event: K, listener: EventListener<Events[K]>): this {
    this.events.off(event, listener);
    return this;
  }
}

export { intOption } from '../common/options';

/** The queues a route lets consumers read, sorted by broker name then queue id. */
export function readQueues(route: TopicRoute): MessageQueue[] {
  const out: MessageQueue[] = [];
  for (const b of sortedBrokers(route)) {
    if ((b.permission & Permission.READ) === 0) continue;
    for (let queueId = 0; queueId < b.readQueueCount; queueId++) {
      out.push({ brokerName: b.brokerName, topic: route.topic, queueId });
    }
  }
  return out;
}

/**
 * The queues a route lets producers write, sorted by broker name then queue id. A broker name
 * whose master is down (the name server lists only its slaves) has none: slaves take no writes.
 */
export function writeQueues(route: TopicRoute): MessageQueue[] {
  const out: MessageQueue[] = [];
  for (const b of sortedBrokers(route)) {
    if ((b.permission & Permission.WRITE) === 0 || masterIsDown(b)) continue;
    for (let queueId = 0; queueId < b.writeQueueCount; queueId++) {
      out.push({ brokerName: b.brokerName, topic: route.topic, queueId });
    }
  }
  return out;
}

/** A route entry from a name server that lists slaves of the broker name but no master. */
export function masterIsDown(entry: TopicRoute['brokers'][number]): boolean {
  return entry.address === undefined && (entry.slaves?.length ?? 0) > 0;
}

function sortedBrokers(route: TopicRoute): TopicRoute['brokers'] {
  return [...route.brokers].sort((a, b) =>
    a.brokerName < b.brokerName ? -1 : a.brokerName > b.brokerName ? 1 : 0,
  );
}
