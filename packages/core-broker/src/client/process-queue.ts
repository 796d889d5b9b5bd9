import type { Timer } from '../common/clock';
import type { MessageView } from '../message/message';
import type { Subscription } from '../message/protocol';
import { queueKey } from './allocation';
import type { MessageQueue } from './allocation';

/**
 * One queue a push consumer owns: what it pulled and has not finished (RocketMQ `ProcessQueue`).
 * The cache holds each pulled message once, by queue offset, and counts the body bytes it holds,
 * so flow control bounds what the process really keeps.
 */
export class ProcessQueue {
  readonly key: string;
  /** Pulled, not yet finished, by queue offset; insertion order is offset order. */
  private readonly cache = new Map<number, MessageView>();
  private bytes = 0;
  dropped = false;
  /** Listener calls running for this queue. */
  inFlight = 0;
  /** Orderly: a message of this queue is being consumed or waits for its retry. */
  orderlyBusy = false;
  /** Orderly, clustering: when the broker last confirmed this client's lock on the queue (0: not locked). */
  lockedAtMs = 0;
  /** Orderly: local retries so far, by queue offset. */
  readonly localAttempts = new Map<number, number>();
  readonly timers = new Set<Timer>();
  private idleWaiters: Array<() => void> = [];
  /** The pull loop waiting for the cache to drain below the flow-control bounds. */
  drainWaiter: (() => void) | undefined;
  /** The pull loop sleeping after a failed or empty pull; a drop wakes it. */
  sleepWaker: (() => void) | undefined;

  constructor(
    readonly queue: MessageQueue,
    readonly subscription: Subscription,
    readonly isRetry: boolean,
    /** Next offset to pull. */
    public nextOffset: number,
    /** Offset last committed (or saved), if any. */
    public committed: number | undefined,
  ) {
    this.key = queueKey(queue);
  }

  /** Messages pulled and not finished. */
  get cachedMessages(): number {
    return this.cache.size;
  }

  /** Body bytes of the messages pulled and not finished. */
  get cachedBytes(): number {
    return this.bytes;
  }

  /** The offset to commit: the lowest one still being processed, else the next to pull. */
  get consumeOffset(): number {
    for (const offset of this.cache.keys()) return offset;
    return this.nextOffset;
  }

  /** The first cached message (orderly consumption takes them in offset order). */
  first(): [number, MessageView] | undefined {
    const next = this.cache.entries().next();
    return next.done ? undefined : next.value;
  }

  /** Caches pulled messages; returns those not cached already. */
  put(messages: readonly MessageView[]): MessageView[] {
    const fresh: MessageView[] = [];
    for (const m of messages) {
      if (this.cache.has(m.queueOffset)) continue;
      this.cache.set(m.queueOffset, m);
      this.bytes += m.body.length;
      fresh.push(m);
    }
    return fresh;
  }

  /** Replaces a cached message (a local retry with its count bumped); false when it is no longer cached. */
  replace(message: MessageView): boolean {
    const cached = this.cache.get(message.queueOffset);
    if (!cached) return false;
    this.cache.set(message.queueOffset, message);
    this.bytes += message.body.length - cached.body.length;
    return true;
  }

  /** Removes finished messages from the cache. */
  remove(messages: readonly MessageView[]): void {
    for (const m of messages) {
      const cached = this.cache.get(m.queueOffset);
      if (cached && this.cache.delete(m.queueOffset)) this.bytes -= cached.body.length;
    }
  }

  /** Forgets every cached message (a queue whose lock was lost: its messages are another member's now). */
  clear(): void {
    this.cache.clear();
    this.bytes = 0;
    this.localAttempts.clear();
  }

  whenIdle(): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  wakeIdle(): void {
    if (this.inFlight !== 0) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const wake of waiters) wake();
  }

  wakeDrain(): void {
    const wake = this.drainWaiter;
    this.drainWaiter = undefined;
    wake?.();
  }

  /** Stops the queue: its timers are cancelled and a waiting pull loop wakes (and exits). */
  drop(): void {
    this.dropped = true;
    for (const timer of this.timers) timer.cancel();
    this.timers.clear();
    this.wakeDrain();
    const wake = this.sleepWaker;
    this.sleepWaker = undefined;
    wake?.();
  }
}
