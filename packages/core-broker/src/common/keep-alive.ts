import { type Clock, systemClock } from './clock';

/**
 * Longest delay Node's timers take (about 24.8 days): the keep-alive timer never fires in practice,
 * it only holds the event loop open.
 */
const KEEP_ALIVE_TIMER_MS = 2 ** 31 - 1;

let holders = 0;
let keepAlive: NodeJS.Timeout | undefined;

/**
 * Keeps the Node process running until the returned function is called: while a consumer is
 * started, or a send is in flight. RocketMQ's Java clients keep their JVM running the same way
 * (their threads are not daemons). Without it, a worker whose broker went down would exit with code
 * 0 in the middle of reconnecting: the client's timers are unref'd (`systemClock`) and, with its
 * broker gone, it has no socket open.
 *
 * Only on the system clock: a virtual clock (the test kit) never holds the process. Releasing twice
 * is harmless.
 */
export function holdProcessOpen(clock: Clock): () => void {
  if (clock !== systemClock) return () => undefined;
  holders++;
  keepAlive ??= setInterval(() => undefined, KEEP_ALIVE_TIMER_MS);
  let released = false;
  return () => {
    if (released) return;
    released = true;
    holders--;
    if (holders === 0 && keepAlive !== undefined) {
      clearInterval(keepAlive);
      keepAlive = undefined;
    }
  };
}

/** Holders now (for tests). */
export function processHolders(): number {
  return holders;
}
