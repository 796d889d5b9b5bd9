import {
  type Clock,
  type MessageView,
  RocketError,
  type Transport,
  deadLetterTopicOf,
  systemClock,
} from '@rocketnest/core-broker';
import {
  Broker,
  type BrokerOptions,
  InProcessTransport,
  MemoryStore,
  type TopicInput,
} from '@rocketnest/core-broker/broker';
import { type ConsumeProgress, consumeProgressOf } from '@rocketnest/core-broker/internal';
import { type Duration, toMs } from './duration';
import { VirtualClock, settle } from './virtual-clock';

/** Default bytes the in-memory store of a test broker may hold. */
export const DEFAULT_TEST_STORE_BYTES = 256 * 1024 * 1024;
/** Default queue count of a test broker's topics. (RocketMQ `defaultTopicQueueNums`) */
export const DEFAULT_TEST_QUEUE_COUNT = 4;
/** Flush period of the test broker's memory store: a flush there changes nothing a test sees. */
const TEST_STORE_FLUSH_INTERVAL_MS = 60_000;
/** Default real time `drain()` and `waitForMessage()` wait before failing. */
export const DEFAULT_WAIT_TIMEOUT = '5s';
/** Most messages `published()` and friends return for one topic. */
export const MAX_LISTED_MESSAGES = 100_000;

export interface TestBrokerOptions {
  /**
   * `'virtual'` (default): time moves only when the test calls `clock.advance()` or
   * `clock.runAll()`. `'real'`: the system clock; `advance()` then sleeps.
   */
  time?: 'virtual' | 'real';
  /** Epoch ms the virtual clock starts at. Default: the real time. */
  startMs?: number;
  /** Topics to create at start: names (default queue count) or full inputs. */
  topics?: ReadonlyArray<string | TopicInput>;
  /** Create a topic at its first send. Default true. (RocketMQ `autoCreateTopicEnable`) */
  autoCreateTopics?: boolean;
  /** Queues of topics created without a count. Default 4. (RocketMQ `defaultTopicQueueNums`) */
  defaultQueueCount?: number;
  /** Bytes the in-memory store may hold. Default 256 MiB. */
  maxStoreBytes?: number;
  /** Any other broker option (`brokerName`, `maxReconsumeTimes`, `transactionTimeoutMs`…). */
  broker?: Omit<Partial<BrokerOptions>, 'store' | 'clock'>;
}

/** Bounds of `clock.runAll()`. */
export interface RunAllOptions {
  /** Most time to move (virtual), or to wait (real). Default 24 h (virtual), 60 s (real). */
  maxTime?: Duration;
  /** Most timers to fire (virtual clock). Default 1 000 000. */
  maxSteps?: number;
}

/** Default bound of `runAll()` in virtual time: five times RocketMQ's full retry schedule. */
export const DEFAULT_RUN_ALL_MAX_TIME = '24h';
/** Default bound of `runAll()` on a real clock. */
export const DEFAULT_RUN_ALL_REAL_MAX_TIME = '60s';
/** Default bound of `runAll()` in timers fired. */
export const DEFAULT_RUN_ALL_MAX_STEPS = 1_000_000;

/** The clock of a test broker: virtual (moved by the test) or real. */
export interface TestClock extends Clock {
  /** Moves time forward, firing what falls due (virtual), or sleeps that long (real). */
  advance(duration: Duration): Promise<void>;
  /**
   * Runs time forward timer by timer until nothing is pending: no delayed message or retry, no
   * unresolved transaction, no unacked pop, every consumer drained. Works with every retry
   * policy (RocketMQ's backoff levels, 16 retries and the dead-letter queue: about 4 h 45 min of
   * virtual time, in well under a second of real time per message on an idle machine). Fails with
   * `TIMEOUT` naming what is still pending when it reaches a bound: `maxTime` of virtual time
   * (default 24 h), `maxSteps` timers (default 1 000 000). With `time: 'real'` it polls until idle,
   * at most `maxTime` (default 60 s).
   */
  runAll(options?: RunAllOptions): Promise<void>;
}

/**
 * A real `Broker` on a `MemoryStore`, reached through an `InProcessTransport`: no ports, no disk,
 * starts in milliseconds. It is the product's broker, not a double, so tests see the real
 * semantics (retries, dead letters, FIFO, transactions, pop). Use `transport` (and `clock`) for
 * your producers and consumers, or wire it where `RocketModule` would connect.
 */
export class TestBroker {
  readonly transport: Transport;
  readonly clock: TestClock;
  private closed = false;

  private constructor(
    readonly broker: Broker,
    readonly store: MemoryStore,
    clock: TestClock,
  ) {
    this.clock = clock;
    this.transport = new InProcessTransport(broker);
  }

  static async create(options: TestBrokerOptions = {}): Promise<TestBroker> {
    const virtual = (options.time ?? 'virtual') === 'virtual';
    if (options.time !== undefined && options.time !== 'virtual' && options.time !== 'real') {
      throw new RocketError(
        'INVALID_OPTION',
        `time must be 'virtual' or 'real'; got ${JSON.stringify(options.time)}`,
      );
    }
    // the clock exists before the broker it will ask
    const created: { broker?: TestBroker } = {};
    const pending = (): string[] => created.broker?.pending() ?? [];
    const clock: TestClock = virtual
      ? new TestVirtualClock(options.startMs, pending)
      : new RealTestClock(pending);
    const store = await MemoryStore.create({
      clock,
      maxBytes: options.maxStoreBytes ?? DEFAULT_TEST_STORE_BYTES,
      // flushes of a store in memory do nothing a test could see; rare, they keep runAll() fast
      flushIntervalMs: TEST_STORE_FLUSH_INTERVAL_MS,
      derivedFlushIntervalMs: TEST_STORE_FLUSH_INTERVAL_MS,
    });
    const broker = await Broker.start({
      autoCreateTopics: options.autoCreateTopics ?? true,
      defaultQueueCount: options.defaultQueueCount ?? DEFAULT_TEST_QUEUE_COUNT,
      ...options.broker,
      store,
      clock,
    }).catch(async (error: unknown) => {
      await store.close();
      throw error;
    });
    const self = new TestBroker(broker, store, clock);
    created.broker = self;
    for (const topic of options.topics ?? []) self.createTopic(topic);
    return self;
  }

  /** Creates (or updates) a topic: a name (default queue count) or a full input. */
  createTopic(topic: string | TopicInput): void {
    this.broker.createTopic(typeof topic === 'string' ? { topic } : topic);
  }

  /** Every message stored in `topic`, over all its queues, in store order. */
  published(topic: string): MessageView[] {
    return this.read(topic);
  }

  /**
   * Messages of `topic` the consumers of `group` finished (below each queue's consume position),
   * in store order. Reads the consumers' own progress, so it is exact before any offset commit.
   */
  consumed(group: string, topic?: string): MessageView[] {
    const out: MessageView[] = [];
    for (const p of this.progress()) {
      if (p.group !== group || (topic !== undefined && p.topic !== topic)) continue;
      const min = this.store.minOffset(p.topic, p.queueId);
      out.push(...this.readQueue(p.topic, p.queueId, min, p.consumeOffset));
    }
    return sortByStore(out);
  }

  /** Messages in `group`'s dead-letter topic (out of retries), in store order. */
  deadLetters(group: string): MessageView[] {
    return this.read(deadLetterTopicOf(group));
  }

  /**
   * Resolves with the first message of `topic` (stored already, or later) that `predicate`
   * accepts. Waits in real time; with a virtual clock, advance it elsewhere if the message is due
   * to a timer. Rejects `TIMEOUT` after `timeout` (default 5 s).
   */
  async waitForMessage(
    topic: string,
    predicate: (message: MessageView) => boolean = () => true,
    timeout: Duration = DEFAULT_WAIT_TIMEOUT,
  ): Promise<MessageView> {
    const deadline = Date.now() + toMs(timeout);
    for (;;) {
      await this.settleNow();
      const found = this.read(topic).find(predicate);
      if (found) return found;
      if (Date.now() >= deadline) {
        throw new RocketError('TIMEOUT', `no message of topic "${topic}" matched within ${String(timeout)}`);
      }
      await pause();
    }
  }

  /**
   * Resolves once every consumer on this broker pulled its queues to the end and finished every
   * message it pulled (listeners settled, failures sent back for retry). Time does not move:
   * retries and delayed messages that are due later stay pending (`clock.advance()` or
   * `clock.runAll()` deliver them). Rejects `TIMEOUT` after `timeout` (real time, default 5 s),
   * naming what is still pending.
   */
  async drain(timeout: Duration = DEFAULT_WAIT_TIMEOUT): Promise<void> {
    const deadline = Date.now() + toMs(timeout);
    for (;;) {
      await this.settleNow();
      if (this.consumersDrained()) return;
      if (Date.now() >= deadline) {
        throw new RocketError(
          'TIMEOUT',
          `drain: consumers still busy after ${String(timeout)}: ${this.busyQueues().join('; ')}`,
        );
      }
      await pause();
    }
  }

  /** Closes the broker and its store; clients should be shut down first. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.broker.close();
    await this.store.close();
  }

  /**
   * Lets pending work run without moving time: promise chains, I/O, and (virtual clock) timers due
   * now — zero-delay wake-ups such as an outbox relay's after `add()`.
   */
  private async settleNow(): Promise<void> {
    if (this.clock instanceof VirtualClock) await this.clock.advance(0);
    else await settle();
  }

  /** What keeps the broker busy, one phrase each; empty when idle. */
  private pending(): string[] {
    const work = this.broker.pendingWork();
    const out: string[] = [];
    const count = (n: number, what: string): void =>
      void (n > 0 && out.push(`${n} ${what}${n === 1 ? '' : 's'}`));
    count(work.scheduledMessages, 'scheduled message'); // delayed messages and retries
    count(work.pendingTransactions, 'unresolved transaction');
    count(work.unackedPops, 'unacked pop');
    out.push(...this.busyQueues());
    return out;
  }

  private progress(): ConsumeProgress[] {
    // the push consumers given this transport report where they stand (drain() reads it)
    return consumeProgressOf(this.transport);
  }

  private consumersDrained(): boolean {
    return this.busyQueues().length === 0;
  }

  private busyQueues(): string[] {
    const busy: string[] = [];
    for (const p of this.progress()) {
      const end = this.store.maxOffset(p.topic, p.queueId);
      if (p.pending > 0 || p.nextOffset < end) {
        busy.push(
          `${p.group} on ${p.topic}#${p.queueId}: ${p.pending} in progress, pulled to ${p.nextOffset} of ${end}`,
        );
      }
    }
    return busy;
  }

  private read(topic: string): MessageView[] {
    const config = this.broker.getTopic(topic);
    if (!config) return [];
    const queues = Math.max(config.readQueueCount, config.writeQueueCount);
    const out: MessageView[] = [];
    for (let queueId = 0; queueId < queues; queueId++) {
      out.push(...this.readQueue(topic, queueId, this.store.minOffset(topic, queueId), Infinity));
    }
    return sortByStore(out);
  }

  private readQueue(topic: string, queueId: number, from: number, to: number): MessageView[] {
    const out: MessageView[] = [];
    let offset = from;
    while (offset < to && out.length < MAX_LISTED_MESSAGES) {
      const r = this.store.getMessages(topic, queueId, offset, { maxCount: 256 });
      for (const m of r.messages) if (m.queueOffset < to) out.push(m);
      if (r.messages.length === 0 || r.nextOffset <= offset) break;
      offset = r.nextOffset;
    }
    return out;
  }
}

/** Starts a {@link TestBroker}. */
export function createTestBroker(options?: TestBrokerOptions): Promise<TestBroker> {
  return TestBroker.create(options);
}

class TestVirtualClock extends VirtualClock implements TestClock {
  constructor(
    startMs: number | undefined,
    private readonly pending: () => string[],
  ) {
    super(startMs);
  }

  async runAll(options: RunAllOptions = {}): Promise<void> {
    const maxTime = options.maxTime ?? DEFAULT_RUN_ALL_MAX_TIME;
    const maxSteps = options.maxSteps ?? DEFAULT_RUN_ALL_MAX_STEPS;
    const deadline = this.now() + toMs(maxTime);
    await settle();
    for (let step = 0; ; step++) {
      if (this.pending().length === 0) return;
      const next = this.nextDueMs();
      if (next === undefined) {
        // no timer will change anything: work in flight (a handler awaiting real I/O) may still end
        const realDeadline = Date.now() + toMs(DEFAULT_WAIT_TIMEOUT);
        while (this.pending().length > 0 && this.nextDueMs() === undefined && Date.now() < realDeadline) {
          await pause();
        }
        if (this.nextDueMs() !== undefined) continue;
        if (this.pending().length === 0) return;
        throw this.stillBusy(`no timer is left and ${DEFAULT_WAIT_TIMEOUT} of real time passed`);
      }
      if (next > deadline) throw this.stillBusy(`${String(maxTime)} of virtual time`);
      if (step >= maxSteps) throw this.stillBusy(`${maxSteps} timers`);
      await this.fireNext();
    }
  }

  private stillBusy(bound: string): RocketError {
    const next = this.nextDueMs();
    return new RocketError(
      'TIMEOUT',
      `runAll: still busy after ${bound}: ${this.pending().join('; ')}` +
        (next === undefined ? '' : `; next timer in ${next - this.now()} ms`),
    );
  }
}

class RealTestClock implements TestClock {
  constructor(private readonly pending: () => string[]) {}

  now(): number {
    return systemClock.now();
  }

  setTimer(delayMs: number, callback: () => void) {
    return systemClock.setTimer(delayMs, callback);
  }

  advance(duration: Duration): Promise<void> {
    return new Promise((resolve) => setTimeout(resolve, toMs(duration)));
  }

  async runAll(options: RunAllOptions = {}): Promise<void> {
    // real time: poll every 10 ms until idle or maxTime
    const maxTime = options.maxTime ?? DEFAULT_RUN_ALL_REAL_MAX_TIME;
    const deadline = Date.now() + toMs(maxTime);
    for (;;) {
      await settle();
      if (this.pending().length === 0) return;
      if (Date.now() >= deadline) {
        throw new RocketError(
          'TIMEOUT',
          `runAll: still busy after ${String(maxTime)} of real time: ${this.pending().join('; ')}`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }
}

function sortByStore(messages: MessageView[]): MessageView[] {
  return messages.sort((a, b) => a.commitLogOffset - b.commitLogOffset);
}

/** A short real-time pause that also lets I/O run. */
function pause(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 2));
}
