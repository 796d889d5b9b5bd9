import { holdProcessOpen } from '../common/keep-alive';
import type { Clock } from '../common/clock';
import { RocketError } from '../common/errors';
import type { MessageView } from '../message/message';
import type { OffsetResetNotice, Subscription } from '../message/protocol';
import { retryTopicOf } from '../message/topic-names';
import { queueKey } from './allocation';
import type { MessageQueue } from './allocation';
import { ClientTimers, EventedClient } from './client-support';
import { trackConsumeProgress } from './consume-progress';
import { ConsumeService } from './consume-service';
import * as consumerGroup from './group-membership';
import type { ConsumeStart } from './group-membership';
import { ProcessQueue } from './process-queue';
import type { PushConsumerOptions, ResolvedPushConsumerOptions } from './push-consumer-options';
import { resolvePushConsumerOptions } from './push-consumer-options';
import type { ListenerOptions, MessageListener, PushConsumerEvents } from './push-listener';
import { QueueLockKeeper } from './queue-lock-keeper';
import { readQueue, SHORT_POLL_MS } from './queue-reader';
import type { Transport } from './transport';

// The push consumer's public names live by concern in the files below; they are re-exported here
// so that `client/push-consumer` stays the one place to import the push consumer from.
export { ConsumeResult } from './push-listener';
export type {
  ConsumeContext,
  ListenerOptions,
  MessageExt,
  MessageListener,
  PushConsumerEvents,
} from './push-listener';
export {
  DEFAULT_CONSUME_BATCH_SIZE,
  DEFAULT_CONSUME_CONCURRENCY,
  DEFAULT_CONSUMER_MAX_RECONSUME_TIMES,
  DEFAULT_LOCAL_RETRY_DELAY_MS,
  DEFAULT_PERSIST_OFFSET_INTERVAL_MS,
  DEFAULT_PULL_BATCH_SIZE,
  DEFAULT_PULL_RETRY_DELAY_MS,
  DEFAULT_PULL_THRESHOLD_FOR_QUEUE,
  DEFAULT_PULL_THRESHOLD_SIZE_FOR_QUEUE_BYTES,
  DEFAULT_QUEUE_LOCK_RENEW_INTERVAL_MS,
  DEFAULT_REBALANCE_INTERVAL_MS,
  DEFAULT_SUSPEND_CURRENT_QUEUE_TIME_MS,
  DEFAULT_SUSPEND_TIMEOUT_MS,
  QUEUE_LOCK_MAX_LIVE_MS,
  QUEUE_LOCK_RETRY_MS,
  resolvePushConsumerOptions,
} from './push-consumer-options';
export type {
  ConsumeFromWhere,
  OffsetStore,
  PushConsumerOptions,
  ResolvedPushConsumerOptions,
} from './push-consumer-options';

type State = 'CREATED' | 'RUNNING' | 'STOPPING' | 'STOPPED';

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
 * **Orderly** listeners in clustering consume a queue only while they hold a broker lock on it
 * that was confirmed within `QUEUE_LOCK_MAX_LIVE_MS` (see `queue-lock-keeper.ts`). Any failed call to a broker (a cut
 * connection, a broker restart) makes every lock on that broker unconfirmed: the queues stop until
 * they are locked again, and a queue that cannot be locked again is dropped with its cached
 * messages — uncommitted, since the member that holds it now owns its offset.
 *
 * **Broadcasting**: every consumer takes every queue; offsets stay in the client (and in the
 * optional `OffsetStore`), never on a broker. As in RocketMQ, a failed broadcast message is
 * not retried: it is dropped and reported as `consumer.dropped` (orderly listeners still retry in
 * place and then dead-letter).
 *
 * Flow control: a queue with more than `pullThresholdForQueue` cached messages or
 * `pullThresholdSizeForQueueBytes` cached body bytes (or its share of the `…ForTopic` bounds) is
 * not pulled until consumption brings it back under both bounds.
 *
 * `shutdown()` stops pulling, waits for running listener calls, commits offsets and unregisters.
 * Pulls still parked at a broker (long polling) are not waited for; their answers are discarded.
 *
 * The parts: options in `push-consumer-options.ts`, listener types and events in
 * `push-listener.ts`, the per-queue cache in `process-queue.ts`, listener calls in
 * `consume-service.ts`, and the read of a queue in `queue-reader.ts`.
 */
export class PushConsumer extends EventedClient<PushConsumerEvents> {
  readonly group: string;
  readonly clientId: string;
  readonly messageModel: ResolvedPushConsumerOptions['messageModel'];
  private readonly options: ResolvedPushConsumerOptions;
  private readonly transport: Transport;
  private readonly clock: Clock;
  /** Lets the process exit again (set while started: a running consumer keeps its process alive). */
  private releaseProcess: (() => void) | undefined;
  private readonly timers: ClientTimers;
  private readonly subscriptions = new Map<string, Subscription>();
  private listener: MessageListener | undefined;
  private orderly = false;
  private consumer: ConsumeService | undefined;
  private state: State = 'CREATED';
  private stopping: Promise<void> | undefined;
  private untrackProgress: (() => void) | undefined;
  private readonly processQueues = new Map<string, ProcessQueue>();
  private readonly membership: consumerGroup.GroupMembership;
  /** Broadcasting offsets by queue key. */
  private localOffsets: Record<string, number> = {};
  private readonly locks: QueueLockKeeper;
  /** Queues of each topic the last rebalance gave this consumer (the per-topic bounds are shared among them). */
  private readonly topicShares = new Map<string, number>();
  private readonly rebalancer = new consumerGroup.RebalanceRunner(
    () => this.rebalanceOnce(),
    () => this.state === 'RUNNING',
  );

  constructor(options: PushConsumerOptions) {
    super();
    this.options = resolvePushConsumerOptions(options);
    ({
      group: this.group,
      transport: this.transport,
      clientId: this.clientId,
      clock: this.clock,
    } = this.options);
    this.messageModel = this.options.messageModel;
    this.timers = new ClientTimers(this.clock);
    this.locks = new QueueLockKeeper({
      ...this.options,
      processQueues: () => this.processQueues.values(),
      locked: (pq) => this.consumer?.scheduleOrderly(pq),
      onError: (error) => this.events.emit('consumer.error', { stage: 'rebalance', error }),
    });
    this.membership = new consumerGroup.GroupMembership({
      ...this.options,
      consumeType: 'PUSH',
      subscriptions: () => this.allSubscriptions(),
      onError: (stage, error) => this.events.emit('consumer.error', { stage, error }),
    });
  }

  /**
   * Subscribes to `topic` with a tag expression (`*`, `a || b`) or `{ sql }` (SQL92 on user
   * properties and `TAGS`). Call before `start()`; a second call for a topic replaces the first.
   * A filter that does not parse is `INVALID_FILTER` here, with its position.
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
    this.releaseProcess = holdProcessOpen(this.clock);
    const listener = this.listener;
    this.consumer = new ConsumeService(
      {
        options: this.options,
        transport: this.transport,
        timers: this.timers,
        events: this.events,
        running: () => this.state === 'RUNNING',
        listener: () => listener,
        holdsLock: (pq) => this.holdsLock(pq),
        finish: (pq, messages) => this.finish(pq, messages),
      },
      this.orderly,
    );
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
    });
    // what test tooling's drain() reads; not part of the broker → client contract
    this.untrackProgress = trackConsumeProgress(this.transport, () =>
      [...this.processQueues.values()].map((pq) => ({
        group: this.group,
        brokerName: pq.queue.brokerName,
        topic: pq.queue.topic,
        queueId: pq.queue.queueId,
        nextOffset: pq.nextOffset,
        consumeOffset: pq.consumeOffset,
        pending: pq.cachedMessages,
      })),
    );
    try {
      if (this.messageModel === 'BROADCASTING' && this.options.offsetStore) {
        this.localOffsets = { ...(await this.options.offsetStore.load()) };
      }
      await this.membership.refreshBrokers(this.subscriptions.keys());
      await this.membership.heartbeat();
      await this.rebalance();
    } catch (error) {
      // a start that failed half way leaves nothing running
      await this.shutdown();
      throw error;
    }
    const { rebalanceIntervalMs, heartbeatIntervalMs, persistOffsetIntervalMs, queueLockRenewIntervalMs } =
      this.options;
    this.timers.every(rebalanceIntervalMs, () => this.rebalance(), onError);
    this.timers.every(heartbeatIntervalMs, () => this.membership.heartbeat(), onError);
    this.timers.every(persistOffsetIntervalMs, () => this.persistOffsets(), onError);
    if (this.locksQueues) this.timers.every(queueLockRenewIntervalMs, () => this.locks.renew(), onError);
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
      this.untrackProgress?.();
      this.state = 'STOPPED';
      this.releaseProcess?.();
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
    this.topicShares.set(subscription.topic, mine.length);
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
    if (this.locksQueues && !(await this.locks.lock(queue.brokerName, [queue])).length) return false;
    const lockedAtMs = this.clock.now();
    const isRetry = this.messageModel === 'CLUSTERING' && queue.topic === retryTopicOf(this.group);
    let committed: number | undefined;
    let start: number;
    try {
      committed =
        this.messageModel === 'CLUSTERING'
          ? await this.transport.queryOffset(queue.brokerName, {
              group: this.group,
              topic: queue.topic,
              queueId: queue.queueId,
            })
          : this.localOffsets[queueKey(queue)];
      start = committed ?? (await this.startOffset(queue, isRetry));
      if (committed === undefined && this.messageModel === 'CLUSTERING') {
        // record where the group starts, so a later owner of the queue starts there too
        await this.transport.commitOffset(queue.brokerName, {
          group: this.group,
          topic: queue.topic,
          queueId: queue.queueId,
          offset: start,
        });
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
      : this.options.consumeStart;
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
    await Promise.all(affected.map((pq) => this.discardQueue(pq)));
    this.events.emit('consumer.offset.reset', {
      topic: notice.topic,
      brokerName: notice.brokerName,
      offsets: notice.offsets,
    });
    await this.rebalance();
  }

  /**
   * Stops pulling `pq`, waits for its running listener calls, commits its offset, then gives its
   * lock back. Orderly: the offset is committed only under the queue's lock (taken again if it is
   * not fresh), so a member that lost the queue never moves back the offset of the one holding it.
   */
  private async dropQueue(pq: ProcessQueue): Promise<void> {
    if (!pq.dropped) pq.drop();
    await pq.whenIdle();
    const held = !this.locksQueues || this.locks.isFresh(pq) || (await this.locks.relock(pq));
    if (held) await this.commitQueue(pq);
    if (this.processQueues.get(pq.key) === pq) this.processQueues.delete(pq.key);
    if (this.locksQueues && held) await this.locks.unlock(pq);
  }

  /**
   * Drops `pq` without committing its offset: its cached messages are discarded and read again by
   * whoever owns the queue next. Out of the map first, so no periodic commit writes its position.
   */
  private async discardQueue(pq: ProcessQueue): Promise<void> {
    if (this.processQueues.get(pq.key) === pq) this.processQueues.delete(pq.key);
    pq.drop();
    pq.clear();
    await pq.whenIdle();
  }

  // ---- orderly queue locks ---------------------------------------------------------------

  /** Orderly clustering consumers lock their queues at the broker (RocketMQ `lockBatchMQ`). */
  private get locksQueues(): boolean {
    return this.orderly && this.messageModel === 'CLUSTERING';
  }

  /** A call to `brokerName` failed: orderly, its locks are unconfirmed (see {@link QueueLockKeeper.brokerFailed}). */
  private brokerFailed(brokerName: string): void {
    if (this.locksQueues) this.locks.brokerFailed(brokerName);
  }

  /**
   * Orderly: true when `pq` may be consumed now — its lock is fresh, or was just taken again. A
   * queue that cannot be locked again is another member's now: it is dropped with its cached
   * messages (uncommitted), and taken again by a later rebalance if it comes back to this member.
   */
  private async holdsLock(pq: ProcessQueue): Promise<boolean> {
    if (!this.locksQueues || this.locks.isFresh(pq)) return true;
    if ((await this.locks.relock(pq)) && !pq.dropped) return true;
    if (!pq.dropped && this.state === 'RUNNING') {
      // not awaited: the caller is one of the queue's own listener tasks, which this waits for
      void this.discardQueue(pq);
    }
    return false;
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
      await this.transport.commitOffset(brokerName, { group: this.group, topic, queueId, offset });
      pq.committed = offset;
    } catch (error) {
      this.brokerFailed(brokerName);
      this.events.emit('consumer.error', { stage: 'offset', error });
    }
  }

  private async persistOffsets(): Promise<void> {
    await Promise.all([...this.processQueues.values()].map((pq) => this.commitQueue(pq)));
    await this.saveLocalOffsets();
  }

  private async saveLocalOffsets(): Promise<void> {
    const { offsetStore } = this.options;
    if (this.messageModel !== 'BROADCASTING' || !offsetStore) return;
    try {
      await offsetStore.save({ ...this.localOffsets });
    } catch (error) {
      this.events.emit('consumer.error', { stage: 'offset', error });
    }
  }

  // ---- pulling -----------------------------------------------------------------------------

  /**
   * The flow-control bounds of one queue: the per-queue thresholds, or, when the per-topic ones
   * are set, the topic's bound shared among the topic's queues the last rebalance gave this
   * consumer (RocketMQ `RebalancePushImpl.messageQueueChanged`).
   */
  private thresholds(pq: ProcessQueue): { messages: number; bytes: number } {
    const o = this.options;
    if (o.pullThresholdForTopic === undefined && o.pullThresholdSizeForTopicBytes === undefined) {
      return { messages: o.pullThresholdForQueue, bytes: o.pullThresholdSizeForQueueBytes };
    }
    const queues = Math.max(1, this.topicShares.get(pq.queue.topic) ?? 1);
    return {
      messages:
        o.pullThresholdForTopic === undefined
          ? o.pullThresholdForQueue
          : Math.max(1, Math.floor(o.pullThresholdForTopic / queues)),
      bytes:
        o.pullThresholdSizeForTopicBytes === undefined
          ? o.pullThresholdSizeForQueueBytes
          : Math.max(1, Math.floor(o.pullThresholdSizeForTopicBytes / queues)),
    };
  }

  private overThreshold(pq: ProcessQueue): boolean {
    const bound = this.thresholds(pq);
    return pq.cachedMessages > bound.messages || pq.cachedBytes > bound.bytes;
  }

  /** Pulls `pq` until it is dropped or the consumer stops: the push consumer's use of the read path. */
  private async pullLoop(pq: ProcessQueue): Promise<void> {
    const { pullBatchSize, suspendTimeoutMs, pullRetryDelayMs } = this.options;
    while (!pq.dropped && this.state === 'RUNNING') {
      if (this.overThreshold(pq)) {
        this.events.emit('consumer.flow-control', {
          queue: pq.queue,
          cachedMessages: pq.cachedMessages,
          cachedBytes: pq.cachedBytes,
        });
        await new Promise<void>((resolve) => (pq.drainWaiter = resolve));
        continue;
      }
      let read;
      try {
        read = await readQueue(this.transport, this.clock, {
          consumerGroup: this.group,
          queue: pq.queue,
          offset: pq.nextOffset,
          maxCount: pullBatchSize,
          subscription: pq.subscription,
          suspendTimeoutMs,
        });
      } catch (error) {
        if (pq.dropped) return;
        this.brokerFailed(pq.queue.brokerName);
        this.events.emit('consumer.pull.error', { queue: pq.queue, error });
        await this.queueSleep(pq, pullRetryDelayMs);
        continue;
      }
      if (pq.dropped || this.state !== 'RUNNING') return;
      if (read.status === 'FOUND') {
        this.consumer!.dispatch(pq, pq.put(read.messages));
      } else if (read.status === 'OFFSET_ILLEGAL') {
        this.events.emit('consumer.offset.illegal', {
          queue: pq.queue,
          offset: read.offset,
          nextOffset: read.nextOffset,
        });
      }
      pq.nextOffset = read.nextOffset;
      // a consumer that polls (no long-poll wait) pauses between empty polls too
      const polledEmpty =
        suspendTimeoutMs === 0 && read.status === 'NO_NEW_MESSAGE' && read.nextOffset === read.offset;
      const pauseMs = polledEmpty ? SHORT_POLL_MS : read.pauseMs;
      if (pauseMs > 0) await this.queueSleep(pq, pauseMs);
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

  /** Marks messages finished: they leave the cache, and a queue paused by flow control may resume. */
  private finish(pq: ProcessQueue, messages: readonly MessageView[]): void {
    pq.remove(messages);
    if (pq.drainWaiter && !this.overThreshold(pq)) pq.wakeDrain();
  }
}
