import type { Clock, Timer } from '@rocketnest/core-broker';
import { type Duration, toMs } from './duration';

interface Scheduled {
  dueMs: number;
  seq: number;
  callback: () => void;
  cancelled: boolean;
}

/** Most timers a virtual clock holds; a test past it has a timer leak. */
const MAX_TIMERS = 100_000;

/**
 * A clock that moves only when the test moves it. Give it to the test broker and to clients
 * (`clock` option) and every time-based behaviour — delayed messages, retry backoff, transaction
 * check-backs, invisible-time expiry, heartbeats, rebalances — runs when `advance()` passes its
 * time, in due order, with the promise chains each timer starts allowed to run before the next one
 * fires.
 */
export class VirtualClock implements Clock {
  private timers: Scheduled[] = [];
  private seq = 0;
  private time: number;

  /** `startMs`: the epoch ms the clock starts at. Default: the real time at creation. */
  constructor(startMs: number = Date.now()) {
    this.time = startMs;
  }

  now(): number {
    return this.time;
  }

  setTimer(delayMs: number, callback: () => void): Timer {
    if (this.timers.length >= MAX_TIMERS) this.timers = this.timers.filter((t) => !t.cancelled);
    if (this.timers.length >= MAX_TIMERS) {
      throw new Error(`VirtualClock holds ${MAX_TIMERS} timers: something schedules without end`);
    }
    const timer: Scheduled = {
      dueMs: this.time + Math.max(0, delayMs),
      seq: this.seq++,
      callback,
      cancelled: false,
    };
    this.timers.push(timer);
    return { cancel: () => void (timer.cancelled = true) };
  }

  /** Timers waiting to fire. */
  get pendingTimers(): number {
    return this.timers.filter((t) => !t.cancelled).length;
  }

  /** When the next timer fires (epoch ms), or `undefined` when none waits. */
  nextDueMs(): number | undefined {
    let next: number | undefined;
    for (const t of this.timers) if (!t.cancelled && (next === undefined || t.dueMs < next)) next = t.dueMs;
    return next;
  }

  /**
   * Moves time forward by `duration`, firing every timer that falls due on the way, in order;
   * after each one (and at the end) pending promise chains and I/O callbacks get to run.
   */
  async advance(duration: Duration): Promise<void> {
    const target = this.time + toMs(duration);
    await settle();
    for (;;) {
      const next = this.takeDue(target);
      if (!next) break;
      this.time = Math.max(this.time, next.dueMs);
      next.callback();
      await settle();
    }
    this.time = target;
    await settle();
  }

  /**
   * Fires the next timer (moving time to when it is due) and lets the work it starts run, as
   * `advance()` does for each timer. False when no timer waits.
   */
  protected async fireNext(): Promise<boolean> {
    const next = this.takeDue(Number.MAX_SAFE_INTEGER);
    if (!next) return false;
    this.time = Math.max(this.time, next.dueMs);
    next.callback();
    await settle();
    return true;
  }

  private takeDue(target: number): Scheduled | undefined {
    let best: Scheduled | undefined;
    for (const t of this.timers) {
      if (t.cancelled || t.dueMs > target) continue;
      if (!best || t.dueMs < best.dueMs || (t.dueMs === best.dueMs && t.seq < best.seq)) best = t;
    }
    if (best) {
      best.cancelled = true;
      this.timers = this.timers.filter((t) => !t.cancelled);
    }
    return best;
  }
}

/** Lets pending promise chains and I/O callbacks run: a few turns of the event loop. */
export async function settle(turns = 5): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}
