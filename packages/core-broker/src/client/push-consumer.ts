import { retryTopicOf } from '../message/topic-names';
import type { Clock, Timer } from '../common/clock';
import { RocketError } from '../common/errors';
import type { MessageView } from '../message/message';
import type { MessageModel, OffsetResetNotice, PullResponse, Subscription } from '../message/protocol';
import { SystemProperty } from '../message/system-properties';
import { queueKey } from './allocation';
import type { MessageQueue } from './allocation';
import { ClientTimers, EventedClient, intOption } from './client-support';
import * as consumerGroup from './group-membership';
import type { ConsumeStart, GroupConsumerOptions } from './group-membership';
import type { Transport } from './transport';

/** A message as a listener sees it (RocketMQ `MessageExt`): retried messages carry their original topic. */
export type MessageExt = MessageView;

/**
 * What a listener answers (RocketMQ `ConsumeConcurrentlyStatus`); a throw, or anything else,
 * counts as `RECONSUME_LATER`. Async listeners should return the constants
 * (`return ConsumeResult.CONSUME_SUCCESS`): TypeScript widens a string literal returned from an
 * async function whose contextual return type is a union with a promise.
 */
export const ConsumeResult = {
  CONSUME_SUCCESS: 'CONSUME_SUCCESS',
  RECONSUME_LATER: 'RECONSUME_LATER',
} as const;
export type ConsumeResult = (typeof ConsumeResult)[keyof typeof ConsumeResult];

/** Handed to a listener with each call. */
export interface ConsumeContext {
  readonly consumerGroup: string;
  /** The queue the messages were pulled from (for retried messages, the group's retry queue). */
  readonly queue: MessageQueue;
  /** Concurrent listeners: redeliver after this many ms instead of the broker's next backoff. (RocketMQ `delayLevelWhenNextConsume`) */
  retryDelayMs?: number;
  /** Orderly listeners: suspend the queue this long before the retry. (RocketMQ `suspendCurrentQueueTimeMillis`) */
  suspendMs?: number;
}

export type MessageListener = (
  messages: MessageExt[],
  context: ConsumeContext,
) => ConsumeResult | Promise<ConsumeResult>;

export interface ListenerOptions {
  /**
   * Orderly listener (RocketMQ `MessageListenerOrderly`): per queue, one message at a time in queue
   * order, so messages of one message group are consumed in the order they were sent. A failed
   * message is retried in place after `suspendCurrentQueueTimeMs`, up to `maxReconsumeTimes`, then
   * dead-lettered; the queue does not move on until then.
   */
  orderly?: boolean;
}

/** Where broadcasting consumers keep their offsets between runs (they are never committed to a broker). */
export interface OffsetStore {
  /** Offsets by `queueKey` (`brokerName@topic@queueId`): the next offset to consume. */
  load(): Record<string, number> | Promise<Record<string, number>>;
  save(offsets: Record<string, number>): void | Promise<void>;
}

export type { ConsumeFromWhere } from './group-membership';
export { DEFAULT_PULL_RETRY_DELAY_MS, DEFAULT_REBALANCE_INTERVAL_MS } from './group-membership';

/** Most listener calls at once. (RocketMQ `consumeThreadMax`) */
export const DEFAULT_CONSUME_CONCURRENCY = 20;
/** Messages per listener call for concurrent listeners. (RocketMQ `consumeMessageBatchMaxSize`) */
export const DEFAULT_CONSUME_BATCH_SIZE = 1;
/** Messages per pull. (RocketMQ `pullBatchSize`) */
export const DEFAULT_PULL_BATCH_SIZE = 32;
/** Cached messages per queue past which the queue is not pulled. (RocketMQ `pullThresholdForQueue`) */
export const DEFAULT_PULL_THRESHOLD_FOR_QUEUE = 1000;
/** Cached body bytes per queue past which the queue is not pulled: 100 MiB. (RocketMQ `pullThresholdSizeForQueue`) */
export const DEFAULT_PULL_THRESHOLD_SIZE_FOR_QUEUE_BYTES = 100 * 1024 * 1024;
/** Retries before a message goes to the dead-letter queue. (RocketMQ `maxReconsumeTimes`) */
export const DEFAULT_CONSUMER_MAX_RECONSUME_TIMES = 16;
/** Long-poll wait of a pull. (RocketMQ `brokerSuspendMaxTimeMillis`) */
export const DEFAULT_SUSPEND_TIMEOUT_MS = 15_000;
/** Orderly retry pause. (RocketMQ `suspendCurrentQueueTimeMillis`) */
export const DEFAULT_SUSPEND_CURRENT_QUEUE_TIME_MS = 1000;
/** Period of the offset commit. (RocketMQ `persistConsumerOffsetInterval`) */
export const DEFAULT_PERSIST_OFFSET_INTERVAL_MS = 5000;
/** Pause before consuming again a message whose send-back failed. (RocketMQ `submitConsumeRequestLater`, 5 s) */
export const DEFAULT_LOCAL_RETRY_DELAY_MS = 5000;
/** Orderly, clustering: how often the queue locks are renewed. (RocketMQ `rocketmq.client.rebalance.lockInterval`) */
export const DEFAULT_QUEUE_LOCK_RENEW_INTERVAL_MS = 20_000;
/**
 * Orderly, clustering: a lock not renewed for this long is not trusted to consume (the broker keeps
 * it 60 s). (RocketMQ `rocketmq.client.rebalance.lockMaxLiveTime`)
 */
export const QUEUE_LOCK_MAX_LIVE_MS = 30_000;
/** Orderly, clustering: pause before trying again to lock a queue it could not lock. (RocketMQ `tryLockLaterAndReconsume`, 3 s) */
export const QUEUE_LOCK_RETRY_MS = 3_000;

export interface PushConsumerOptions extends GroupConsumerOptions {
  /** Default `CLUSTERING`: the group shares the queues. `BROADCASTING`: every consumer reads everything. (RocketMQ `messageModel`) */
  messageModel?: MessageModel;
  /** Most listener calls at once. Default 20. (RocketMQ `consumeThreadMax`) */
  consumeConcurrency?: number;
  /** Messages per concurrent listener call. Default 1. (RocketMQ `consumeMessageBatchMaxSize`) */
  consumeBatchSize?: number;
  /** Messages per pull. Default 32. (RocketMQ `pullBatchSize`) */
  pullBatchSize?: number;
  /** A queue with more cached (pulled, unfinished) messages than this is not pulled until it drains. Default 1000. (RocketMQ `pullThresholdForQueue`) */
  pullThresholdForQueue?: number;
  /** Same, in cached body bytes. Default 100 MiB. (RocketMQ `pullThresholdSizeForQueue`, in MiB there) */
  pullThresholdSizeForQueueBytes?: number;
  /** Retries before dead-lettering. Default 16. (RocketMQ `maxReconsumeTimes`) */
  maxReconsumeTimes?: number;
  /** Long-poll wait of each pull, in ms; 0 polls. Default 15 000. (RocketMQ `brokerSuspendMaxTimeMillis`) */
  suspendTimeoutMs?: number;
  /** Orderly retry pause in ms. Default 1000. (RocketMQ `suspendCurrentQueueTimeMillis`) */
  suspendCurrentQueueTimeMs?: number;
  /** Default 5000 ms. (RocketMQ `persistConsumerOffsetInterval`) */
  persistOffsetIntervalMs?: number;
  /** Pause before consuming again a message whose send-back failed, ms. Default 5000. */
  localRetryDelayMs?: number;
  /** Orderly, clustering: how often queue locks are renewed, in ms. Default 20 000. (RocketMQ `rocketmq.client.rebalance.lockInterval`) */
  queueLockRenewIntervalMs?: number;
  /** Broadcasting only: where offsets persist between runs. Default: memory only. */
  offsetStore?: OffsetStore;
}

/** Instrumentation events of a push consumer. */
export interface PushConsumerEvents {
  /** The consumer's queues of a topic changed. */
  'consumer.rebalance': {
    topic: string;
    queues: MessageQueue[];
    added: MessageQueue[];
    removed: MessageQueue[];
  };
  /** A queue is not pulled for now: too many cached messages or bytes. */
  'consumer.flow-control': { queue: MessageQueue; cachedMessages: number; cachedBytes: number };
  'consumer.pull.error': { queue: MessageQueue; error: unknown };
  /** The broker reset the group's offsets on `brokerName` (admin reset by time); the queues restart there. */
  'consumer.offset.reset': {
    topic: string;
    brokerName: string;
    offsets: Array<{ queueId: number; offset: number }>;
  };
  /** A pull found the offset outside the queue (retention); consumption moves to `nextOffset`. */
  'consumer.offset.illegal': { queue: MessageQueue; offset: number; nextOffset: number };
  /** A listener threw (counted as `RECONSUME_LATER`). */
  'consumer.listener.error': { queue: MessageQueue; error: unknown };
  /** A failed message could not be sent back; it is consumed again locally later. */
  'consumer.sendback.failed': { queue: MessageQueue; msgId: string; error: unknown };
  /** A message went to the group's dead-letter queue. */
  'consumer.dead-lettered': { queue: MessageQueue; msgId: string };
  /** Broadcasting: a failed message is dropped (RocketMQ does not retry broadcast messages). */
  'consumer.dropped': { queue: MessageQueue; msgId: string };
  /** Heartbeat, route, membership or offset commit failed; retried on the next cycle. */
  'consumer.error': { stage: 'heartbeat' | 'route' | 'membership' | 'offset' | 'rebalance'; error: unknown };
}

type State = 'CREATED' | 'RUNNING' | 'STOPPING' | 'STOPPED';

/** One queue this consumer owns: what it pulled and has not finished (RocketMQ `ProcessQueue`). */
class ProcessQueue {
  readonly key: string;
  /** Pulled, not yet finished, by queue offset; insertion order is offset order. */
  readonly messages = new Map<number, MessageView>();
  cachedBytes = 0;
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

  /** The offset to commit: the lowest one still being processed, else the next to pull. */
  get consumeOffset(): number {
    for (const offset of this.messages.keys()) return offset;
    return this.nextOffset;
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

interface Task {
  pq: ProcessQueue;
  run: () => Promise<void>;
}

/**
 * A consumer the broker's messages are pushed to (RocketMQ `DefaultMQPushConsumer`; pushed by
 * long-polling pulls). Subscribe, register a listener, start.
 *
 * **Clustering** (default): the members of the group share the queues of each subscribed topic.
 * The consumer heartbeats to every broker of its topics, and rebalances every
 * `rebalanceIntervalMs` and whenever a broker says the group's members changed: it fetches the
 * route and the member list, runs the allocation strategy, starts pulling new queues from their
 * committed offset (else from `consumeFromWhere`) and drops queues it lost — only after their
 * in-flight listener calls finished and their offset was committed. It also consumes the group's
 * retry topic `%RETRY%<group>`; retried messages reach the listener with their original topic and
 * their `reconsumeTimes`. A failed message (`RECONSUME_LATER` or a throw) is sent back to the
 * broker, which redelivers it after its backoff or dead-letters it after `maxReconsumeTimes`; if
 * the send-back itself fails the message is consumed again locally after `localRetryDelayMs`, so
 * it is never lost. The committed offset of a queue is the lowest offset still in process, or the
 * next offset when none is (at least once: a crash redelivers, never skips).
 *
 * **Broadcasting**: every consumer takes every queue; offsets stay in the client (and in the
 * optional {@link OffsetStore}), never on a broker. As in RocketMQ, a failed broadcast message is
 * not retried: it is dropped and reported as `consumer.dropped` (orderly listeners still retry in
 * place and then dead-letter).
 *
 * Flow control: a queue with more than `pullThresholdForQueue` cached messages or
 * `pullThresholdSizeForQueueBytes` cached body bytes is not pulled until consumption brings it
 * back under both bounds.
 *
 * `shutdown()` stops pulling, waits for running listener calls, commits offsets and unregisters.
 * Pulls still parked at a broker (long polling) are not waited for; their answers are discarded.
 */
export class PushConsumer extends EventedClient<PushConsumerEvents> {
  readonly group: string;
  readonly clientId: string;
  readonly messageModel: MessageModel;
  private readonly transport: Transport;
  private readonly clock: Clock;
  private readonly timers: ClientTimers;
  private readonly consumeConcurrency: number;
  private readonly consumeBatchSize: number;
  private readonly pullBatchSize: number;
  private readonly pullThresholdForQueue: number;
  private readonly pullThresholdSizeForQueueBytes: number;
  private readonly maxReconsumeTimes: number;
  private readonly suspendTimeoutMs: number;
  private readonly suspendCurrentQueueTimeMs: number;
  private readonly queueLockRenewIntervalMs: number;
  private readonly rebalanceIntervalMs: number;
  private readonly heartbeatIntervalMs: number;
  private readonly persistOffsetIntervalMs: number;
  private readonly pullRetryDelayMs: number;
  private readonly localRetryDelayMs: number;
  private readonly consumeStart: ConsumeStart;
  private readonly offsetStore: OffsetStore | undefined;
  private readonly subscriptions = new Map<string, Subscription>();
  private listener: MessageListener | undefined;
  private orderly = false;
  private state: State = 'CREATED';
  private stopping: Promise<void> | undefined;
  private readonly processQueues = new Map<string, ProcessQueue>();
  private readonly membership: consumerGroup.GroupMembership;
  /** Broadcasting offsets by queue key. */
  private localOffsets: Record<string, number> = {};
  private readonly rebalancer = new consumerGroup.RebalanceRunner(
    () => this.rebalanceOnce(),
    () => this.state === 'RUNNING',
  );
  private readonly tasks: Task[] = [];
  private taskHead = 0;
  private running = 0;

  constructor(options: PushConsumerOptions) {
    super();
    const c = 'push consumer';
    const basics = consumerGroup.consumerBasics(c, 'push', options);
    ({ group: this.group, transport: this.transport, clientId: this.clientId, clock: this.clock } = basics);
    this.timers = new ClientTimers(this.clock);
    this.messageModel = options.messageModel ?? 'CLUSTERING';
    if (this.messageModel !== 'CLUSTERING' && this.messageModel !== 'BROADCASTING') {
      throw new RocketError('INVALID_OPTION', `${c} option messageModel must be CLUSTERING or BROADCASTING`);
    }
    this.consumeConcurrency = intOption(
      c,
      'consumeConcurrency',
      options.consumeConcurrency,
      DEFAULT_CONSUME_CONCURRENCY,
      1,
      10_000,
    );
    this.consumeBatchSize = intOption(
      c,
      'consumeBatchSize',
      options.consumeBatchSize,
      DEFAULT_CONSUME_BATCH_SIZE,
      1,
      1024,
    );
    this.pullBatchSize = intOption(
      c,
      'pullBatchSize',
      options.pullBatchSize,
      DEFAULT_PULL_BATCH_SIZE,
      1,
      1024,
    );
    this.pullThresholdForQueue = intOption(
      c,
      'pullThresholdForQueue',
      options.pullThresholdForQueue,
      DEFAULT_PULL_THRESHOLD_FOR_QUEUE,
      1,
    );
    this.pullThresholdSizeForQueueBytes = intOption(
      c,
      'pullThresholdSizeForQueueBytes',
      options.pullThresholdSizeForQueueBytes,
      DEFAULT_PULL_THRESHOLD_SIZE_FOR_QUEUE_BYTES,
      1,
    );
    this.maxReconsumeTimes = intOption(
      c,
      'maxReconsumeTimes',
      options.maxReconsumeTimes,
      DEFAULT_CONSUMER_MAX_RECONSUME_TIMES,
      0,
      1000,
    );
    this.suspendTimeoutMs = intOption(
      c,
      'suspendTimeoutMs',
      options.suspendTimeoutMs,
      DEFAULT_SUSPEND_TIMEOUT_MS,
      0,
    );
    this.suspendCurrentQueueTimeMs = intOption(
      c,
      'suspendCurrentQueueTimeMs',
      options.suspendCurrentQueueTimeMs,
      DEFAULT_SUSPEND_CURRENT_QUEUE_TIME_MS,
      0,
    );
    this.queueLockRenewIntervalMs = intOption(
      c,
      'queueLockRenewIntervalMs',
      options.queueLockRenewIntervalMs,
      DEFAULT_QUEUE_LOCK_RENEW_INTERVAL_MS,
      1,
    );
    ({ rebalanceIntervalMs: this.rebalanceIntervalMs, heartbeatIntervalMs: this.heartbeatIntervalMs } =
      consumerGroup.membershipIntervalOptions(c, options));
    this.persistOffsetIntervalMs = intOption(
      c,
      'persistOffsetIntervalMs',
      options.persistOffsetIntervalMs,
      DEFAULT_PERSIST_OFFSET_INTERVAL_MS,
      1,
    );
    this.pullRetryDelayMs = consumerGroup.pullRetryDelayOption(c, options.pullRetryDelayMs);
    this.localRetryDelayMs = intOption(
      c,
      'localRetryDelayMs',
      options.localRetryDelayMs,
      DEFAULT_LOCAL_RETRY_DELAY_MS,
      1,
    );
    this.consumeStart = consumerGroup.consumeStartOptions(c, options);
    this.offsetStore = options.offsetStore;
    this.membership = new consumerGroup.GroupMembership({
      ...basics,
      messageModel: this.messageModel,
      consumeType: 'PUSH',
      subscriptions: () => this.allSubscriptions(),
      onError: (stage, error) => this.events.emit('consumer.error', { stage, error }),
    });
  }

  /**
   * Subscribes to `topic` with a tag expression (`*`, `a || b`) or `{ sql }` (SQL92 on user
   * properties and `TAGS`). Call before `start()`; a second call for a topic replaces the first.
   */
  subscribe(topic: string, expression: string | { sql: string } = '*'): this {
    if (this.state !== 'CREATED') {
      throw new RocketError('INVALID_ARGUMENT', `subscribe("${topic}") must come before start()`);
    }
    const subscription = consumerGroup.parseSubscription(topic, expression);
    this.subscriptions.set(topic, subscription);
    return this;
  }

  /** Sets the listener (concurrent by default, `{ orderly: true }` for per-queue order). Before `start()`. */
  registerMessageListener(listener: MessageListener, options: ListenerOptions = {}): this {
    if (this.state !== 'CREATED')
      throw new RocketError('INVALID_ARGUMENT', 'registerMessageListener must come before start()');
    if (typeof listener !== 'function')
      throw new RocketError('INVALID_ARGUMENT', 'the message listener must be a function');
    this.listener = listener;
    this.orderly = options.orderly === true;
    return this;
  }

  /** Queues this consumer currently pulls (retry queues included), sorted by key. */
  assignment(): MessageQueue[] {
    return [...this.processQueues.values()]
      .map((pq) => pq.queue)
      .sort((a, b) => (queueKey(a) < queueKey(b) ? -1 : 1));
  }

  /** Heartbeats, takes its share of the queues and starts consuming. Resolves after the first rebalance. */
  async start(): Promise<void> {
    if (this.state !== 'CREATED')
      throw new RocketError('CLOSED', `push consumer ${this.clientId} was already started`);
    if (!this.listener)
      throw new RocketError('INVALID_ARGUMENT', 'register a message listener before start()');
    if (this.subscriptions.size === 0)
      throw new RocketError('INVALID_ARGUMENT', 'subscribe to a topic before start()');
    this.state = 'RUNNING';
    const onError = (error: unknown): void =>
      this.events.emit('consumer.error', { stage: 'rebalance', error });
    this.transport.register(this.clientId, {
      resetOffset: (notice) => {
        if (notice.group !== this.group || this.state !== 'RUNNING') return;
        void Promise.resolve()
          .then(() => this.resetQueues(notice))
          .catch(onError);
      },
      consumerIdsChanged: (group) => {
        if (group !== this.group || this.state !== 'RUNNING') return;
        // never re-enter from inside the broker's call
        void Promise.resolve()
          .then(() => this.rebalance())
          .catch(onError);
      },
      consumeProgress: () =>
        [...this.processQueues.values()].map((pq) => ({
          group: this.group,
          brokerName: pq.queue.brokerName,
          topic: pq.queue.topic,
          queueId: pq.queue.queueId,
          nextOffset: pq.nextOffset,
          consumeOffset: pq.consumeOffset,
          pending: pq.messages.size,
        })),
    });
    try {
      if (this.messageModel === 'BROADCASTING' && this.offsetStore) {
        this.localOffsets = { ...(await this.offsetStore.load()) };
      }
      await this.membership.refreshBrokers(this.subscriptions.keys());
      await this.membership.heartbeat();
      await this.rebalance();
    } catch (error) {
      // a start that failed half way leaves nothing running
      await this.shutdown();
      throw error;
    }
    this.timers.every(this.rebalanceIntervalMs, () => this.rebalance(), onError);
    this.timers.every(this.heartbeatIntervalMs, () => this.membership.heartbeat(), onError);
    this.timers.every(this.persistOffsetIntervalMs, () => this.persistOffsets(), onError);
    if (this.locksQueues) this.timers.every(this.queueLockRenewIntervalMs, () => this.renewLocks(), onError);
  }

  /**
   * Stops pulling, waits for running listener calls, commits (or saves) offsets and leaves the
   * group. Messages pulled but not yet handed to the listener are not consumed; their offsets are
   * not committed, so they are delivered again. Idempotent.
   */
  shutdown(): Promise<void> {
    if (this.state === 'CREATED') this.state = 'STOPPED';
    this.stopping ??= (async () => {
      this.state = 'STOPPING';
      this.timers.cancelAll();
      await this.rebalancer.current?.catch(() => undefined);
      await Promise.all([...this.processQueues.values()].map((pq) => this.dropQueue(pq)));
      await this.saveLocalOffsets();
      await this.transport.unregister(this.clientId).catch(() => undefined);
      this.state = 'STOPPED';
    })();
    return this.stopping;
  }

  /** Runs a rebalance now (also done periodically and on membership notices). */
  rebalance(): Promise<void> {
    return this.rebalancer.run();
  }

  // ---- membership and rebalance ------------------------------------------------------------

  private allSubscriptions(): Subscription[] {
    const subs = [...this.subscriptions.values()];
    if (this.messageModel === 'CLUSTERING')
      subs.push({ topic: retryTopicOf(this.group), kind: 'TAG', expression: '*' });
    return subs;
  }

  private async rebalanceOnce(): Promise<void> {
    for (const subscription of this.allSubscriptions()) {
      if (this.state !== 'RUNNING') return;
      const mine = await this.membership.share(subscription.topic);
      if (mine === undefined) continue;
      if (this.state !== 'RUNNING') return;
      await this.updateQueues(subscription, mine);
    }
  }

  private async updateQueues(subscription: Subscription, mine: MessageQueue[]): Promise<void> {
    const wanted = new Map(mine.map((q) => [queueKey(q), q]));
    const removed: ProcessQueue[] = [];
    for (const pq of this.processQueues.values()) {
      if (pq.queue.topic === subscription.topic && !wanted.has(pq.key)) removed.push(pq);
    }
    await Promise.all(removed.map((pq) => this.dropQueue(pq)));
    const added: MessageQueue[] = [];
    for (const [key, queue] of wanted) {
      if (this.state !== 'RUNNING') return;
      if (this.processQueues.has(key)) continue;
      if (await this.addQueue(subscription, queue)) added.push(queue);
    }
    if (added.length > 0 || removed.length > 0) {
      this.events.emit('consumer.rebalance', {
        topic: subscription.topic,
        queues: mine,
        added,
        removed: removed.map((pq) => pq.queue),
      });
    }
  }

  private async addQueue(subscription: Subscription, queue: MessageQueue): Promise<boolean> {
    // orderly: only the holder of the queue's lock consumes it; another member may still have it
    if (this.locksQueues && !(await this.lockQueues(queue.brokerName, [queue])).length) return false;
    const lockedAtMs = this.clock.now();
    const isRetry = this.messageModel === 'CLUSTERING' && queue.topic === retryTopicOf(this.group);
    let committed: number | undefined;
    let start: number;
    try {
      committed =
        this.messageModel === 'CLUSTERING'
          ? await this.transport.queryOffset(queue.brokerName, this.group, queue.topic, queue.queueId)
          : this.localOffsets[queueKey(queue)];
      start = committed ?? (await this.startOffset(queue, isRetry));
      if (committed === undefined && this.messageModel === 'CLUSTERING') {
        // record where the group starts, so a later owner of the queue starts there too
        await this.transport.commitOffset(queue.brokerName, this.group, queue.topic, queue.queueId, start);
        committed = start;
      }
    } catch (error) {
      this.events.emit('consumer.error', { stage: 'offset', error });
      return false;
    }
    if (this.state !== 'RUNNING' || this.processQueues.has(queueKey(queue))) return false;
    const pq = new ProcessQueue(queue, subscription, isRetry, start, committed);
    if (this.locksQueues) pq.lockedAtMs = lockedAtMs;
    this.processQueues.set(pq.key, pq);
    void this.pullLoop(pq);
    return true;
  }

  /** Where a queue without a committed offset starts: `consumeFromWhere`; a retry queue at its first offset. */
  private startOffset(queue: MessageQueue, isRetry: boolean): Promise<number> {
    const start: ConsumeStart = isRetry
      ? { consumeFromWhere: 'FIRST_OFFSET', consumeTimestampMs: undefined }
      : this.consumeStart;
    return consumerGroup.startOffset(this.transport, this.clock, queue, start);
  }

  /**
   * The broker moved the group's offsets (an admin reset by time): the affected queues are
   * dropped without committing — their cached messages are discarded — and taken again from the
   * reset offsets by a rebalance. Broadcasting consumers keep their own offsets and ignore it.
   */
  private async resetQueues(notice: OffsetResetNotice): Promise<void> {
    if (this.messageModel !== 'CLUSTERING') return;
    const reset = new Set(notice.offsets.map((o) => o.queueId));
    const affected = [...this.processQueues.values()].filter(
      (pq) =>
        pq.queue.brokerName === notice.brokerName &&
        pq.queue.topic === notice.topic &&
        reset.has(pq.queue.queueId),
    );
    for (const pq of affected) {
      // out of the map first, so no periodic commit writes the old position over the reset
      this.processQueues.delete(pq.key);
      pq.drop();
    }
    await Promise.all(affected.map((pq) => pq.whenIdle()));
    this.events.emit('consumer.offset.reset', {
      topic: notice.topic,
      brokerName: notice.brokerName,
      offsets: notice.offsets,
    });
    await this.rebalance();
  }

  /** Stops pulling `pq`, waits for its running listener calls, commits its offset, then gives its lock back. */
  private async dropQueue(pq: ProcessQueue): Promise<void> {
    if (!pq.dropped) pq.drop();
    await pq.whenIdle();
    await this.commitQueue(pq);
    if (this.processQueues.get(pq.key) === pq) this.processQueues.delete(pq.key);
    if (this.locksQueues && pq.lockedAtMs > 0) {
      pq.lockedAtMs = 0;
      const { brokerName, topic, queueId } = pq.queue;
      await this.transport
        .unlockQueues(brokerName, {
          group: this.group,
          clientId: this.clientId,
          queues: [{ topic, queueId }],
        })
        .catch((error: unknown) => this.events.emit('consumer.error', { stage: 'rebalance', error }));
    }
  }

  // ---- orderly queue locks -----------------------------------------------------------------

  /** Orderly clustering consumers lock their queues at the broker (RocketMQ `lockBatchMQ`). */
  private get locksQueues(): boolean {
    return this.orderly && this.messageModel === 'CLUSTERING';
  }

  /** Locks queues of one broker; resolves with those now held (none when the broker fails). */
  private async lockQueues(brokerName: string, queues: readonly MessageQueue[]): Promise<MessageQueue[]> {
    try {
      const held = await this.transport.lockQueues(brokerName, {
        group: this.group,
        clientId: this.clientId,
        queues: queues.map((q) => ({ topic: q.topic, queueId: q.queueId })),
      });
      const keys = new Set(held.map((q) => `${q.topic}\u0000${q.queueId}`));
      return queues.filter((q) => keys.has(`${q.topic}\u0000${q.queueId}`));
    } catch (error) {
      this.events.emit('consumer.error', { stage: 'rebalance', error });
      return [];
    }
  }

  /** Renews every held lock; a queue whose lock went to another member stops being consumed. */
  private async renewLocks(): Promise<void> {
    const byBroker = new Map<string, ProcessQueue[]>();
    for (const pq of this.processQueues.values()) {
      if (pq.dropped) continue;
      const list = byBroker.get(pq.queue.brokerName) ?? [];
      list.push(pq);
      byBroker.set(pq.queue.brokerName, list);
    }
    await Promise.all(
      [...byBroker].map(async ([brokerName, pqs]) => {
        const now = this.clock.now();
        const held = new Set(
          await this.lockQueues(
            brokerName,
            pqs.map((pq) => pq.queue),
          ),
        );
        for (const pq of pqs) {
          const wasLocked = pq.lockedAtMs > 0;
          pq.lockedAtMs = held.has(pq.queue) ? now : 0;
          if (!wasLocked && pq.lockedAtMs > 0) this.scheduleOrderly(pq);
        }
      }),
    );
  }

  /** Orderly: true when `pq` may be consumed now (its lock is fresh, or was just taken again). */
  private async holdsLock(pq: ProcessQueue): Promise<boolean> {
    if (!this.locksQueues) return true;
    if (pq.lockedAtMs > 0 && this.clock.now() - pq.lockedAtMs <= QUEUE_LOCK_MAX_LIVE_MS) return true;
    const now = this.clock.now();
    const held = await this.lockQueues(pq.queue.brokerName, [pq.queue]);
    pq.lockedAtMs = held.length > 0 ? now : 0;
    return pq.lockedAtMs > 0;
  }

  // ---- offsets ---------------------------------------------------------------------------

  private async commitQueue(pq: ProcessQueue): Promise<void> {
    const offset = pq.consumeOffset;
    if (offset === pq.committed) return;
    if (this.messageModel === 'BROADCASTING') {
      this.localOffsets[pq.key] = offset;
      pq.committed = offset;
      return;
    }
    const { brokerName, topic, queueId } = pq.queue;
    try {
      await this.transport.commitOffset(brokerName, this.group, topic, queueId, offset);
      pq.committed = offset;
    } catch (error) {
      this.events.emit('consumer.error', { stage: 'offset', error });
    }
  }

  private async persistOffsets(): Promise<void> {
    await Promise.all([...this.processQueues.values()].map((pq) => this.commitQueue(pq)));
    await this.saveLocalOffsets();
  }

  private async saveLocalOffsets(): Promise<void> {
    if (this.messageModel !== 'BROADCASTING' || !this.offsetStore) return;
    try {
      await this.offsetStore.save({ ...this.localOffsets });
    } catch (error) {
      this.events.emit('consumer.error', { stage: 'offset', error });
    }
  }

  // ---- pulling -----------------------------------------------------------------------------

  private overThreshold(pq: ProcessQueue): boolean {
    return (
      pq.messages.size > this.pullThresholdForQueue || pq.cachedBytes > this.pullThresholdSizeForQueueBytes
    );
  }

  private async pullLoop(pq: ProcessQueue): Promise<void> {
    const { brokerName, topic, queueId } = pq.queue;
    const filtered = !(pq.subscription.kind === 'TAG' && pq.subscription.expression.trim() === '*');
    while (!pq.dropped && this.state === 'RUNNING') {
      if (this.overThreshold(pq)) {
        this.events.emit('consumer.flow-control', {
          queue: pq.queue,
          cachedMessages: pq.messages.size,
          cachedBytes: pq.cachedBytes,
        });
        await new Promise<void>((resolve) => (pq.drainWaiter = resolve));
        continue;
      }
      const startedMs = this.clock.now();
      let response: PullResponse;
      try {
        response = await this.transport.pull(brokerName, {
          consumerGroup: this.group,
          topic,
          queueId,
          queueOffset: pq.nextOffset,
          maxCount: this.pullBatchSize,
          subscription: filtered ? pq.subscription : undefined,
          suspendTimeoutMs: this.suspendTimeoutMs,
        });
      } catch (error) {
        if (pq.dropped) return;
        this.events.emit('consumer.pull.error', { queue: pq.queue, error });
        await this.queueSleep(pq, this.pullRetryDelayMs);
        continue;
      }
      if (pq.dropped || this.state !== 'RUNNING') return;
      switch (response.status) {
        case 'FOUND':
          this.take(pq, response.messages);
          pq.nextOffset = response.nextOffset;
          break;
        case 'OFFSET_ILLEGAL':
          this.events.emit('consumer.offset.illegal', {
            queue: pq.queue,
            offset: pq.nextOffset,
            nextOffset: response.nextOffset,
          });
          pq.nextOffset = response.nextOffset;
          break;
        case 'NO_MATCHED_MESSAGE':
          pq.nextOffset = response.nextOffset;
          break;
        case 'NO_NEW_MESSAGE': {
          const moved = response.nextOffset !== pq.nextOffset;
          pq.nextOffset = response.nextOffset;
          // a broker that could not hold the pull answers at once: do not spin
          const waitedMs = this.clock.now() - startedMs;
          const minWaitMs =
            this.suspendTimeoutMs > 0
              ? Math.min(this.suspendTimeoutMs, consumerGroup.SHORT_POLL_MS)
              : Infinity;
          if (!moved && waitedMs < minWaitMs) await this.queueSleep(pq, consumerGroup.SHORT_POLL_MS);
          break;
        }
      }
    }
  }

  /** Sleeps the pull loop of `pq`; dropping the queue wakes it. */
  private queueSleep(pq: ProcessQueue, delayMs: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = this.timers.after(delayMs, () => {
        pq.timers.delete(timer);
        pq.sleepWaker = undefined;
        resolve();
      });
      pq.timers.add(timer);
      pq.sleepWaker = resolve;
    });
  }

  /** Caches pulled messages and hands them to the listener. */
  private take(pq: ProcessQueue, messages: MessageView[]): void {
    const fresh: MessageView[] = [];
    for (const m of messages) {
      if (pq.messages.has(m.queueOffset)) continue;
      pq.messages.set(m.queueOffset, m);
      pq.cachedBytes += m.body.length;
      fresh.push(m);
    }
    if (this.orderly) {
      this.scheduleOrderly(pq);
      return;
    }
    for (let i = 0; i < fresh.length; i += this.consumeBatchSize) {
      const batch = fresh.slice(i, i + this.consumeBatchSize);
      this.submit(pq, () => this.consumeConcurrently(pq, batch));
    }
  }

  /** Marks messages finished: they leave the cache, and a queue paused by flow control may resume. */
  private finish(pq: ProcessQueue, messages: readonly MessageView[]): void {
    for (const m of messages) {
      const cached = pq.messages.get(m.queueOffset);
      if (cached && pq.messages.delete(m.queueOffset)) pq.cachedBytes -= cached.body.length;
    }
    if (pq.drainWaiter && !this.overThreshold(pq)) pq.wakeDrain();
  }

  // ---- consuming ---------------------------------------------------------------------------

  private submit(pq: ProcessQueue, run: () => Promise<void>): void {
    this.tasks.push({ pq, run });
    this.pump();
  }

  /** Starts queued listener calls up to `consumeConcurrency`; calls of dropped queues are skipped. */
  private pump(): void {
    while (this.running < this.consumeConcurrency && this.taskHead < this.tasks.length) {
      const task = this.tasks[this.taskHead++]!;
      if (this.taskHead > 1024 && this.taskHead * 2 > this.tasks.length) {
        this.tasks.splice(0, this.taskHead);
        this.taskHead = 0;
      }
      if (task.pq.dropped || this.state !== 'RUNNING') continue;
      this.running++;
      task.pq.inFlight++;
      void task
        .run()
        .catch((error: unknown) =>
          this.events.emit('consumer.listener.error', { queue: task.pq.queue, error }),
        )
        .finally(() => {
          this.running--;
          task.pq.inFlight--;
          task.pq.wakeIdle();
          this.pump();
        });
    }
    if (this.taskHead === this.tasks.length && this.taskHead > 0) {
      this.tasks.length = 0;
      this.taskHead = 0;
    }
  }

  /** The message as the listener sees it: a retried message shows its original topic. */
  private present(pq: ProcessQueue, m: MessageView, reconsumeTimes = m.reconsumeTimes): MessageExt {
    const origin = pq.isRetry ? m.properties[SystemProperty.ORIGIN_TOPIC] : undefined;
    if (origin === undefined && reconsumeTimes === m.reconsumeTimes) return m;
    return { ...m, topic: origin ?? m.topic, reconsumeTimes };
  }

  private async callListener(
    pq: ProcessQueue,
    messages: MessageExt[],
    context: ConsumeContext,
  ): Promise<ConsumeResult> {
    try {
      const result = await this.listener!(messages, context);
      return result === 'CONSUME_SUCCESS' ? 'CONSUME_SUCCESS' : 'RECONSUME_LATER';
    } catch (error) {
      this.events.emit('consumer.listener.error', { queue: pq.queue, error });
      return 'RECONSUME_LATER';
    }
  }

  private async consumeConcurrently(pq: ProcessQueue, batch: MessageView[]): Promise<void> {
    const context: ConsumeContext = { consumerGroup: this.group, queue: pq.queue };
    const result = await this.callListener(
      pq,
      batch.map((m) => this.present(pq, m)),
      context,
    );
    if (result === 'CONSUME_SUCCESS') {
      this.finish(pq, batch);
      return;
    }
    if (this.messageModel === 'BROADCASTING') {
      for (const m of batch) this.events.emit('consumer.dropped', { queue: pq.queue, msgId: m.msgId });
      this.finish(pq, batch);
      return;
    }
    const retryLocally: MessageView[] = [];
    for (const m of batch) {
      try {
        const { deadLettered } = await this.transport.sendBack(pq.queue.brokerName, {
          consumerGroup: this.group,
          msgId: m.msgId,
          delayMs: context.retryDelayMs,
          maxReconsumeTimes: this.maxReconsumeTimes,
        });
        if (deadLettered) this.events.emit('consumer.dead-lettered', { queue: pq.queue, msgId: m.msgId });
        this.finish(pq, [m]);
      } catch (error) {
        this.events.emit('consumer.sendback.failed', { queue: pq.queue, msgId: m.msgId, error });
        retryLocally.push(m);
      }
    }
    if (retryLocally.length === 0 || pq.dropped) return;
    // the messages stay cached (their offsets uncommitted) and are consumed again here later
    const again = retryLocally.map((m) => {
      const bumped = { ...m, reconsumeTimes: m.reconsumeTimes + 1 };
      pq.messages.set(m.queueOffset, bumped);
      return bumped;
    });
    const timer = this.timers.after(this.localRetryDelayMs, () => {
      pq.timers.delete(timer);
      this.submit(pq, () => this.consumeConcurrently(pq, again));
    });
    pq.timers.add(timer);
  }

  private scheduleOrderly(pq: ProcessQueue): void {
    if (pq.orderlyBusy || pq.dropped || pq.messages.size === 0) return;
    pq.orderlyBusy = true;
    this.submit(pq, () => this.consumeOrderly(pq));
  }

  private async consumeOrderly(pq: ProcessQueue): Promise<void> {
    const first = pq.messages.entries().next();
    if (first.done) {
      pq.orderlyBusy = false;
      return;
    }
    if (!(await this.holdsLock(pq))) {
      // another member holds the queue (a rebalance in progress): try again later
      if (pq.dropped) return;
      const timer = this.timers.after(QUEUE_LOCK_RETRY_MS, () => {
        pq.timers.delete(timer);
        pq.orderlyBusy = false;
        this.scheduleOrderly(pq);
      });
      pq.timers.add(timer);
      return;
    }
    const [offset, m] = first.value;
    const attempts = pq.localAttempts.get(offset) ?? 0;
    const reconsumeTimes = m.reconsumeTimes + attempts;
    const context: ConsumeContext = { consumerGroup: this.group, queue: pq.queue };
    const result = await this.callListener(pq, [this.present(pq, m, reconsumeTimes)], context);
    if (result === 'CONSUME_SUCCESS') {
      this.nextOrderly(pq, offset, m);
      return;
    }
    if (reconsumeTimes >= this.maxReconsumeTimes) {
      try {
        await this.transport.sendBack(pq.queue.brokerName, {
          consumerGroup: this.group,
          msgId: m.msgId,
          maxReconsumeTimes: 0,
        });
        this.events.emit('consumer.dead-lettered', { queue: pq.queue, msgId: m.msgId });
        this.nextOrderly(pq, offset, m);
        return;
      } catch (error) {
        // keep the queue on this message and try the dead-letter send again after the pause
        this.events.emit('consumer.sendback.failed', { queue: pq.queue, msgId: m.msgId, error });
      }
    } else {
      pq.localAttempts.set(offset, attempts + 1);
    }
    if (pq.dropped) return;
    const timer = this.timers.after(context.suspendMs ?? this.suspendCurrentQueueTimeMs, () => {
      pq.timers.delete(timer);
      pq.orderlyBusy = false;
      this.scheduleOrderly(pq);
    });
    pq.timers.add(timer);
  }

  private nextOrderly(pq: ProcessQueue, offset: number, m: MessageView): void {
    pq.localAttempts.delete(offset);
    this.finish(pq, [m]);
    pq.orderlyBusy = false;
    this.scheduleOrderly(pq);
  }
}
