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
import {
  type ClientChannel,
  type ConsumeProgress,
  consumeProgressOf,
} from '@rocketnest/core-broker/internal';
import { type Duration, toMs } from './duration';
import { VirtualClock, settle } from './virtual-clock';

/** Default bytes the in-memory store of a test broker may hold. */
export const DEFAULT_TEST_STORE_BYTES = 256 * 1024 * 1024;
/** Default queue count of a test broker's topics. (RocketMQ `defaultTopicQueueNums`) */
export const DEFAULT_TEST_QUEUE_COUNT = 4;
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

/** The clock of a test broker: virtual (moved by the test) or real. */
export interface TestClock extends Clock {
  /** Moves time forward, firing what falls due (virtual), or sleeps that long (real). */
  advance(duration: Duration): Promise<void>;
  /**
   * Runs time forward timer by timer until the broker holds no pending work (delayed messages,
   * retries, unresolved transactions, unacked pops) and every consumer drained. Fails with
   * `TIMEOUT` after `maxSteps` timers (something keeps the broker busy for ever).
   */
  runAll(options?: { maxSteps?: number }): Promise<void>;
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
    const idle = (): boolean => created.broker?.isIdle() ?? true;
    const clock: TestClock = virtual ? new TestVirtualClock(options.startMs, idle) : new RealTestClock(idle);
    const store = await MemoryStore.create({
      clock,
      maxBytes: options.maxStoreBytes ?? DEFAULT_TEST_STORE_BYTES,
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

  private isIdle(): boolean {
    const work = this.broker.pendingWork();
    return (
      work.scheduledMessages === 0 &&
      work.pendingTransactions === 0 &&
      work.unackedPops === 0 &&
      this.consumersDrained()
    );
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
    private readonly idle: () => boolean,
  ) {
    super(startMs);
  }

  async runAll(options: { maxSteps?: number } = {}): Promise<void> {
    const maxSteps = options.maxSteps ?? 10_000;
    for (let step = 0; step < maxSteps; step++) {
      await settle();
      if (this.idle()) return;
      const next = this.nextDueMs();
      if (next === undefined) return;
      await this.advance(Math.max(0, next - this.now()));
    }
    throw new RocketError('TIMEOUT', `runAll: the broker is still busy after ${maxSteps} timers`);
  }
}

class RealTestClock implements TestClock {
  constructor(private readonly idle: () => boolean) {}

  now(): number {
    return systemClock.now();
  }

  setTimer(delayMs: number, callback: () => void) {
    return systemClock.setTimer(delayMs, callback);
  }

  advance(duration: Duration): Promise<void> {
    return new Promise((resolve) => setTimeout(resolve, toMs(duration)));
  }

  async runAll(options: { maxSteps?: number } = {}): Promise<void> {
    // real time: poll every 10 ms, `maxSteps` polls at most
    const maxSteps = options.maxSteps ?? 6000;
    for (let step = 0; step < maxSteps; step++) {
      await settle();
      if (this.idle()) return;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    throw new RocketError('TIMEOUT', `runAll: the broker is still busy after ${maxSteps} polls`);
  }
}

function sortByStore(messages: MessageView[]): MessageView[] {
  return messages.sort((a, b) => a.commitLogOffset - b.commitLogOffset);
}

/** A short real-time pause that also lets I/O run. */
function pause(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 2));
}
