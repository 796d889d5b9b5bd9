/** A cancellable timer handle returned by {@link Clock.setTimer}. */
export interface Timer {
  cancel(): void;
}

/**
 * Time as the broker sees it. Core code never calls `Date.now()` or `setTimeout` directly, so tests
 * (and the testing package's virtual clock) can drive every time-based behaviour.
 */
export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
  /** Runs `callback` once after `delayMs`. The timer must not keep the process alive on its own. */
  setTimer(delayMs: number, callback: () => void): Timer;
}

/** The wall clock and Node's timers; timers are unref'd so they never hold the process open. */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimer(delayMs, callback) {
    const handle = setTimeout(callback, delayMs);
    handle.unref();
    return { cancel: () => clearTimeout(handle) };
  },
};
