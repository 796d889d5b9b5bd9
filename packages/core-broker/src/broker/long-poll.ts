import type { Clock, Timer } from '../common/clock';

interface Waiter {
  wake(): void;
  timer: Timer;
}

/**
 * Pulls waiting for messages (RocketMQ's `PullRequestHoldService`, but woken at once by the send
 * path rather than by a polling thread). A bounded number may wait; past the bound a pull is
 * answered at once, so a flood of idle consumers cannot grow the broker's memory.
 */
export class LongPoll {
  private readonly waiters = new Map<string, Set<Waiter>>();
  private count = 0;

  constructor(
    private readonly clock: Clock,
    private readonly maxWaiting: number,
  ) {}

  get waiting(): number {
    return this.count;
  }

  /** Resolves when `key` is notified or after `timeoutMs`, whichever comes first. */
  wait(key: string, timeoutMs: number): Promise<void> {
    return this.waitAny([key], timeoutMs);
  }

  /**
   * Resolves when any of `keys` is notified or after `timeoutMs`, whichever comes first (a pop
   * waits on every queue it reads). One waiter and one timer however many keys.
   */
  waitAny(keys: readonly string[], timeoutMs: number): Promise<void> {
    if (timeoutMs <= 0 || keys.length === 0 || this.count >= this.maxWaiting) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const sets: Array<[string, Set<Waiter>]> = [];
      let woken = false;
      const waiter: Waiter = {
        wake: () => {
          if (woken) return;
          woken = true;
          waiter.timer.cancel();
          this.count--;
          for (const [key, waiters] of sets) {
            waiters.delete(waiter);
            if (waiters.size === 0 && this.waiters.get(key) === waiters) this.waiters.delete(key);
          }
          resolve();
        },
        timer: { cancel: () => undefined },
      };
      for (const key of new Set(keys)) {
        let set = this.waiters.get(key);
        if (!set) {
          set = new Set();
          this.waiters.set(key, set);
        }
        set.add(waiter);
        sets.push([key, set]);
      }
      this.count++;
      waiter.timer = this.clock.setTimer(timeoutMs, () => waiter.wake());
    });
  }

  /** Wakes every pull waiting on `key`. */
  notify(key: string): void {
    const set = this.waiters.get(key);
    if (!set) return;
    for (const waiter of [...set]) waiter.wake();
  }

  /** Wakes everything (on close). */
  wakeAll(): void {
    for (const key of [...this.waiters.keys()]) this.notify(key);
  }
}

export const queueKey = (topic: string, queueId: number): string => `${topic}\u0000${queueId}`;
