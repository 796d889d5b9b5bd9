import type { Clock, Timer } from '../../src/common/clock';

/** A clock that moves only when told; timers fire in due order during `advance`. */
export class ManualClock implements Clock {
  private timers: Array<{ due: number; seq: number; callback: () => void; cancelled: boolean }> = [];
  private seq = 0;
  constructor(private time = 1_700_000_000_000) {}
  now(): number {
    return this.time;
  }
  setTimer(delayMs: number, callback: () => void): Timer {
    const timer = { due: this.time + delayMs, seq: this.seq++, callback, cancelled: false };
    this.timers.push(timer);
    return { cancel: () => void (timer.cancelled = true) };
  }
  advance(ms: number): void {
    const target = this.time + ms;
    for (;;) {
      this.timers = this.timers.filter((t) => !t.cancelled);
      const next = this.timers
        .filter((t) => t.due <= target)
        .sort((a, b) => a.due - b.due || a.seq - b.seq)[0];
      if (!next) break;
      this.time = next.due;
      next.cancelled = true;
      next.callback();
    }
    this.time = target;
  }
}
