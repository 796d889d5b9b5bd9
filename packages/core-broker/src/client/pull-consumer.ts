import type { Clock, Timer } from '../common/clock';
import { RocketError } from '../common/errors';
import type { MessageView } from '../message/message';
import type { Subscription } from '../message/protocol';
import { validateSubscriptionTopic } from '../message/validation';
import { queueKey } from './allocation';
import type { MessageQueue } from './allocation';
import { ClientTimers, EventedClient, readQueues } from './client-support';
import * as consumerGroup from './group-membership';
import type { ConsumeStart } from './group-membership';
import { DEFAULT_POLL_TIMEOUT_MS, resolvePullConsumerOptions } from './pull-consumer-options';
import type { PullConsumerOptions } from './pull-consumer-options';
import type { MessageExt } from './push-listener';
import { readQueue } from './queue-reader';
import type { QueueRead } from './queue-reader';
import type { Transport } from './transport';

export {
  DEFAULT_AUTO_COMMIT_INTERVAL_MS,
  DEFAULT_POLL_BATCH_SIZE,
  DEFAULT_POLL_TIMEOUT_MS,
  MAX_POLL_BATCH_SIZE,
  resolvePullConsumerOptions,
} from './pull-consumer-options';
export type { PullConsumerOptions, ResolvedPullConsumerOptions } from './pull-consumer-options';

export interface PullConsumerEvents {
  'consumer.rebalance': {
    topic: string;
    queues: MessageQueue[];
    added: MessageQueue[];
    removed: MessageQueue[];
  };
  'consumer.pull.error': { queue: MessageQueue; error: unknown };
  'consumer.offset.illegal': { queue: MessageQueue; offset: number; nextOffset: number };
  'consumer.error': { stage: 'heartbeat' | 'route' | 'membership' | 'offset' | 'rebalance'; error: unknown };
}

/** A queue and the offset to commit for it. */
export interface QueueOffset {
  queue: MessageQueue;
  offset: number;
}

type State = 'CREATED' | 'RUNNING' | 'STOPPING' | 'STOPPED';

class QueueState {
  readonly key: string;
  /** Next offset to pull; `undefined` until the start position is known. */
  fetchOffset: number | undefined;
  /** Offset after the last message `poll()` returned (or skipped as filtered). */
  consumed: number | undefined;
  committed: number | undefined;
  buffer: MessageView[] = [];
  pending: Promise<void> | undefined;
  /** Bumped by a seek, so answers to pulls from before it are dropped. */
  generation = 0;
  /** No pull before this time (after a failed or instantly empty pull). */
  retryAtMs = 0;
  removed = false;

  constructor(
    readonly queue: MessageQueue,
    readonly subscription: Subscription | undefined,
  ) {
    this.key = queueKey(queue);
  }
}

/**
 * A consumer that the application drives (RocketMQ `DefaultLitePullConsumer`): take queues with
 * `assign()` or join the group's share with `subscribe()`, then `poll()` for messages, commit
 * positions (automatically or with `commit()` / `commitSync()`), and `seek()`.
 *
 * - `subscribe(topic, expression)` uses clustering rebalance like the push consumer (heartbeats,
 *   member list, allocation strategy, membership notices). The pull consumer has no retry topic:
 *   what the application does with a message it cannot process is up to it (RocketMQ's lite
 *   consumer has no send-back either).
 * - `assign(queues)` reads exactly those queues, without joining the group's membership; it and
 *   `subscribe()` exclude each other.
 * - `poll(timeoutMs)` returns buffered messages at once, else pulls every assigned queue with
 *   long polling and returns as soon as any has messages, or `[]` at the timeout. Pulls still
 *   parked at a broker when `poll()` returns keep running; what they bring is buffered for the
 *   next `poll()` (or dropped after a `seek()` of that queue).
 */
export class PullConsumer extends EventedClient<PullConsumerEvents> {
  readonly group: string;
  readonly clientId: string;
  private readonly transport: Transport;
  private readonly clock: Clock;
  private readonly timers: ClientTimers;
  private readonly pullBatchSize: number;
  private readonly autoCommit: boolean;
  private readonly autoCommitIntervalMs: number;
  private readonly consumeStart: ConsumeStart;
  private readonly rebalanceIntervalMs: number;
  private readonly heartbeatIntervalMs: number;
  private readonly pullRetryDelayMs: number;
  private readonly subscriptions = new Map<string, Subscription>();
  private readonly queues = new Map<string, QueueState>();
  private readonly membership: consumerGroup.GroupMembership;
  private readonly rebalancer = new consumerGroup.RebalanceRunner(
    () => this.rebalanceOnce(),
    () => this.state === 'RUNNING',
  );
  private readonly wakers = new Set<() => void>();
  private readonly background = new Set<Promise<unknown>>();
  private mode: 'NONE' | 'ASSIGN' | 'SUBSCRIBE' = 'NONE';
  private state: State = 'CREATED';
  private stopping: Promise<void> | undefined;
  private lastAutoCommitMs = 0;
  private roundRobin = 0;

  constructor(options: PullConsumerOptions) {
    super();
    const resolved = resolvePullConsumerOptions(options);
    ({ group: this.group, transport: this.transport, clientId: this.clientId, clock: this.clock } = resolved);
    this.timers = new ClientTimers(this.clock);
    ({
      pullBatchSize: this.pullBatchSize,
      autoCommit: this.autoCommit,
      autoCommitIntervalMs: this.autoCommitIntervalMs,
      consumeStart: this.consumeStart,
      rebalanceIntervalMs: this.rebalanceIntervalMs,
      heartbeatIntervalMs: this.heartbeatIntervalMs,
      pullRetryDelayMs: this.pullRetryDelayMs,
    } = resolved);
    const basics = resolved;
    this.membership = new consumerGroup.GroupMembership({
      ...basics,
      messageModel: 'CLUSTERING',
      consumeType: 'PULL',
      subscriptions: () => [...this.subscriptions.values()],
      onError: (stage, error) => this.events.emit('consumer.error', { stage, error }),
    });
  }

  /** Joins the group's share of `topic` (clustering rebalance). Exclusive with `assign()`. */
  subscribe(topic: string, expression: string | { sql: string } = '*'): this {
    if (this.mode === 'ASSIGN')
      throw new RocketError('INVALID_ARGUMENT', 'subscribe() and assign() exclude each other');
    const subscription = consumerGroup.parseSubscription(topic, expression);
    this.mode = 'SUBSCRIBE';
    this.subscriptions.set(topic, subscription);
    if (this.state === 'RUNNING') void this.rebalance().catch(() => undefined);
    return this;
  }

  /** Reads exactly these queues (replacing any earlier assignment). Exclusive with `subscribe()`. */
  assign(queues: readonly MessageQueue[]): this {
    if (this.mode === 'SUBSCRIBE')
      throw new RocketError('INVALID_ARGUMENT', 'subscribe() and assign() exclude each other');
    for (const q of queues) {
      validateSubscriptionTopic(q.topic);
      if (!Number.isInteger(q.queueId) || q.queueId < 0) {
        throw new RocketError('INVALID_ARGUMENT', `queueId must be a non-negative integer; got ${q.queueId}`);
      }
    }
    this.mode = 'ASSIGN';
    this.setQueues(
      (q) => q.subscription === undefined,
      queues.map((q) => ({ brokerName: q.brokerName, topic: q.topic, queueId: q.queueId })),
      undefined,
    );
    return this;
  }

  /** The queues this consumer reads now, sorted by key. */
  assignment(): MessageQueue[] {
    return [...this.queues.values()].map((s) => s.queue).sort((a, b) => (queueKey(a) < queueKey(b) ? -1 : 1));
  }

  /** Every readable queue of `topic` (to choose from for `assign()`). */
  async fetchMessageQueues(topic: string): Promise<MessageQueue[]> {
    return readQueues(await this.transport.topicRoute(topic));
  }

  async start(): Promise<void> {
    if (this.state !== 'CREATED')
      throw new RocketError('CLOSED', `pull consumer ${this.clientId} was already started`);
    this.state = 'RUNNING';
    this.lastAutoCommitMs = this.clock.now();
    this.transport.register(this.clientId, {
      consumerIdsChanged: (group) => {
        if (group !== this.group || this.state !== 'RUNNING' || this.mode !== 'SUBSCRIBE') return;
        void Promise.resolve().then(() => this.rebalance().catch(() => undefined));
      },
    });
    if (this.mode === 'SUBSCRIBE') {
      await this.membership.refreshBrokers(this.subscriptions.keys());
      await this.membership.heartbeat();
      await this.rebalance();
    }
    const onError = (error: unknown): void =>
      this.events.emit('consumer.error', { stage: 'rebalance', error });
    this.timers.every(
      this.rebalanceIntervalMs,
      () => (this.mode === 'SUBSCRIBE' ? this.rebalance() : undefined),
      onError,
    );
    this.timers.every(
      this.heartbeatIntervalMs,
      () => (this.mode === 'SUBSCRIBE' ? this.membership.heartbeat() : undefined),
      onError,
    );
  }

  /**
   * Up to `pullBatchSize` messages from the assigned queues, waiting up to `timeoutMs` (long
   * polling) when none is buffered; `[]` at the timeout. With auto-commit on, positions returned
   * by earlier polls are committed when `autoCommitIntervalMs` has passed.
   */
  async poll(timeoutMs: number = DEFAULT_POLL_TIMEOUT_MS): Promise<MessageExt[]> {
    this.assertRunning();
    if (!Number.isSafeInteger(timeoutMs) || timeoutMs < 0) {
      throw new RocketError(
        'INVALID_ARGUMENT',
        `poll timeoutMs must be a non-negative integer; got ${timeoutMs}`,
      );
    }
    if (this.autoCommit && this.clock.now() - this.lastAutoCommitMs >= this.autoCommitIntervalMs) {
      this.lastAutoCommitMs = this.clock.now();
      this.commit();
    }
    const deadline = this.clock.now() + timeoutMs;
    for (let first = true; ; first = false) {
      await this.initPositions();
      const out = this.drain();
      if (out.length > 0 || this.state !== 'RUNNING') return out;
      const now = this.clock.now();
      const remaining = deadline - now;
      if (!first && remaining <= 0) return [];
      const issued: Promise<void>[] = [];
      let nextRetryMs = Infinity;
      for (const qs of this.queues.values()) {
        if (qs.retryAtMs > now) {
          nextRetryMs = Math.min(nextRetryMs, qs.retryAtMs);
          continue;
        }
        if (qs.pending || qs.fetchOffset === undefined) continue;
        issued.push(this.pull(qs, Math.max(0, remaining)));
      }
      if (remaining <= 0) {
        await Promise.all(issued);
        return this.drain();
      }
      await this.waitForChange(Math.min(remaining, nextRetryMs - now));
    }
  }

  /** Commits the current positions (or `offsets`) and resolves when the brokers have them. */
  async commitSync(offsets?: readonly QueueOffset[]): Promise<void> {
    const list =
      offsets ??
      [...this.queues.values()]
        .filter((qs) => qs.consumed !== undefined && qs.consumed !== qs.committed)
        .map((qs) => ({ queue: qs.queue, offset: qs.consumed! }));
    const failures: unknown[] = [];
    await Promise.all(
      list.map(async ({ queue, offset }) => {
        try {
          await this.transport.commitOffset(queue.brokerName, {
            group: this.group,
            topic: queue.topic,
            queueId: queue.queueId,
            offset,
          });
          const qs = this.queues.get(queueKey(queue));
          if (qs) qs.committed = offset;
        } catch (error) {
          failures.push(error);
        }
      }),
    );
    // the first failure as it came (typed by the transport); the other queues were committed
    if (failures.length > 0) throw failures[0];
  }

  /** Commits the current positions in the background; failures are emitted as `consumer.error`. */
  commit(): void {
    this.track(
      this.commitSync().catch((error: unknown) =>
        this.events.emit('consumer.error', { stage: 'offset', error }),
      ),
    );
  }

  /** The group's committed offset of `queue`, or `undefined`. */
  committed(queue: MessageQueue): Promise<number | undefined> {
    return this.transport.queryOffset(queue.brokerName, {
      group: this.group,
      topic: queue.topic,
      queueId: queue.queueId,
    });
  }

  /** Makes the next `poll()` of an assigned `queue` start at `offset` (within the queue's min and max offsets). */
  async seek(queue: MessageQueue, offset: number): Promise<void> {
    const qs = this.assigned(queue);
    const [min, max] = await Promise.all([
      this.transport.minOffset(queue.brokerName, { topic: queue.topic, queueId: queue.queueId }),
      this.transport.maxOffset(queue.brokerName, { topic: queue.topic, queueId: queue.queueId }),
    ]);
    if (!Number.isSafeInteger(offset) || offset < min || offset > max) {
      throw new RocketError(
        'INVALID_ARGUMENT',
        `seek offset ${offset} is outside [${min}, ${max}] of ${qs.key}`,
      );
    }
    this.position(qs, offset);
  }

  /** Seeks to the first message stored at or after `timestampMs`. */
  async seekToTimestamp(queue: MessageQueue, timestampMs: number): Promise<void> {
    const qs = this.assigned(queue);
    this.position(
      qs,
      await this.transport.searchOffset(queue.brokerName, {
        topic: queue.topic,
        queueId: queue.queueId,
        timestampMs,
      }),
    );
  }

  async seekToBegin(queue: MessageQueue): Promise<void> {
    const qs = this.assigned(queue);
    this.position(
      qs,
      await this.transport.minOffset(queue.brokerName, { topic: queue.topic, queueId: queue.queueId }),
    );
  }

  async seekToEnd(queue: MessageQueue): Promise<void> {
    const qs = this.assigned(queue);
    this.position(
      qs,
      await this.transport.maxOffset(queue.brokerName, { topic: queue.topic, queueId: queue.queueId }),
    );
  }

  /**
   * Stops: wakes a waiting `poll()` (it returns what it has), commits positions when auto-commit
   * is on, and leaves the group. Idempotent.
   */
  shutdown(): Promise<void> {
    if (this.state === 'CREATED') this.state = 'STOPPED';
    this.stopping ??= (async () => {
      this.state = 'STOPPING';
      this.timers.cancelAll();
      this.wake();
      await this.rebalancer.current?.catch(() => undefined);
      if (this.autoCommit) await this.commitSync().catch(() => undefined);
      while (this.background.size > 0) await Promise.allSettled([...this.background]);
      for (const qs of this.queues.values()) qs.removed = true;
      await this.transport.unregister(this.clientId).catch(() => undefined);
      this.state = 'STOPPED';
    })();
    return this.stopping;
  }

  // ---- internals ---------------------------------------------------------------------------

  private assertRunning(): void {
    if (this.state !== 'RUNNING') {
      throw new RocketError(
        'CLOSED',
        this.state === 'CREATED'
          ? `pull consumer ${this.clientId} is not started; call start() first`
          : `pull consumer ${this.clientId} is shut down`,
      );
    }
  }

  private assigned(queue: MessageQueue): QueueState {
    const qs = this.queues.get(queueKey(queue));
    if (!qs)
      throw new RocketError('INVALID_ARGUMENT', `queue ${queueKey(queue)} is not assigned to this consumer`);
    return qs;
  }

  private position(qs: QueueState, offset: number): void {
    qs.generation++;
    qs.buffer = [];
    qs.fetchOffset = offset;
    qs.consumed = offset;
    qs.retryAtMs = 0;
    this.wake();
  }

  private track<T>(promise: Promise<T>): Promise<T> {
    this.background.add(promise);
    const remove = (): void => void this.background.delete(promise);
    promise.then(remove, remove);
    return promise;
  }

  /** Replaces the queues selected by `owns` with `wanted`; released queues get their position committed (auto-commit). */
  private setQueues(
    owns: (qs: QueueState) => boolean,
    wanted: MessageQueue[],
    subscription: Subscription | undefined,
  ): { added: MessageQueue[]; removed: MessageQueue[] } {
    const keys = new Set(wanted.map(queueKey));
    const removed: QueueState[] = [];
    for (const qs of this.queues.values()) {
      if (owns(qs) && !keys.has(qs.key)) removed.push(qs);
    }
    for (const qs of removed) {
      qs.removed = true;
      this.queues.delete(qs.key);
    }
    if (this.autoCommit && this.state === 'RUNNING') {
      const release = removed
        .filter((qs) => qs.consumed !== undefined && qs.consumed !== qs.committed)
        .map((qs) => ({ queue: qs.queue, offset: qs.consumed! }));
      if (release.length > 0) {
        this.track(
          this.commitSync(release).catch((error: unknown) =>
            this.events.emit('consumer.error', { stage: 'offset', error }),
          ),
        );
      }
    }
    const added: MessageQueue[] = [];
    for (const q of wanted) {
      const key = queueKey(q);
      if (this.queues.has(key)) continue;
      this.queues.set(key, new QueueState(q, subscription));
      added.push(q);
    }
    if (added.length > 0 || removed.length > 0) this.wake();
    return { added, removed: removed.map((qs) => qs.queue) };
  }

  /** Finds the start of queues read for the first time: the committed offset, else `consumeFromWhere`. */
  private async initPositions(): Promise<void> {
    const fresh = [...this.queues.values()].filter(
      (qs) => qs.fetchOffset === undefined && qs.retryAtMs <= this.clock.now(),
    );
    await Promise.all(
      fresh.map(async (qs) => {
        const { brokerName, topic, queueId } = qs.queue;
        const generation = qs.generation;
        try {
          const committed = await this.transport.queryOffset(brokerName, {
            group: this.group,
            topic,
            queueId,
          });
          const start =
            committed ??
            (await consumerGroup.startOffset(this.transport, this.clock, qs.queue, this.consumeStart));
          if (qs.generation !== generation || qs.fetchOffset !== undefined) return;
          qs.fetchOffset = start;
          qs.consumed = start;
          qs.committed = committed;
        } catch (error) {
          qs.retryAtMs = this.clock.now() + this.pullRetryDelayMs;
          this.events.emit('consumer.error', { stage: 'offset', error });
        }
      }),
    );
  }

  /** Takes up to `pullBatchSize` buffered messages, visiting queues round robin. */
  private drain(): MessageView[] {
    const out: MessageView[] = [];
    const states = [...this.queues.values()];
    if (states.length === 0) return out;
    for (let i = 0; i < states.length && out.length < this.pullBatchSize; i++) {
      const qs = states[(this.roundRobin + i) % states.length]!;
      if (qs.buffer.length === 0) continue;
      const taken = qs.buffer.splice(0, this.pullBatchSize - out.length);
      out.push(...taken);
      qs.consumed = qs.buffer.length > 0 ? taken[taken.length - 1]!.queueOffset + 1 : qs.fetchOffset;
    }
    this.roundRobin = (this.roundRobin + 1) % states.length;
    return out;
  }

  /** Reads `qs` once in the background: the pull consumer's use of the read path. */
  private pull(qs: QueueState, suspendTimeoutMs: number): Promise<void> {
    const generation = qs.generation;
    const pending = readQueue(this.transport, this.clock, {
      consumerGroup: this.group,
      queue: qs.queue,
      offset: qs.fetchOffset!,
      maxCount: this.pullBatchSize,
      subscription: qs.subscription,
      suspendTimeoutMs,
    })
      .then(
        (read: QueueRead) => {
          if (qs.removed || qs.generation !== generation || this.state !== 'RUNNING') return;
          if (read.status === 'FOUND') qs.buffer.push(...read.messages);
          if (read.status === 'OFFSET_ILLEGAL') {
            this.events.emit('consumer.offset.illegal', {
              queue: qs.queue,
              offset: read.offset,
              nextOffset: read.nextOffset,
            });
          }
          qs.fetchOffset = read.nextOffset;
          if (qs.buffer.length === 0) qs.consumed = qs.fetchOffset;
          if (read.pauseMs > 0) qs.retryAtMs = this.clock.now() + read.pauseMs;
        },
        (error: unknown) => {
          if (qs.removed) return;
          this.events.emit('consumer.pull.error', { queue: qs.queue, error });
          qs.retryAtMs = this.clock.now() + this.pullRetryDelayMs;
        },
      )
      .finally(() => {
        if (qs.pending === pending) qs.pending = undefined;
        this.wake();
      });
    qs.pending = pending;
    return pending;
  }

  /** Waits until a pull answers, the assignment changes, a seek, shutdown, or `timeoutMs`. */
  private waitForChange(timeoutMs: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timers: Timer[] = [];
      const done = (): void => {
        this.wakers.delete(done);
        for (const t of timers) t.cancel();
        resolve();
      };
      this.wakers.add(done);
      timers.push(this.timers.after(Math.max(0, timeoutMs), done));
    });
  }

  private wake(): void {
    for (const done of [...this.wakers]) done();
  }

  // ---- subscribe mode: membership and rebalance --------------------------------------------

  private rebalance(): Promise<void> {
    return this.rebalancer.run();
  }

  private async rebalanceOnce(): Promise<void> {
    for (const subscription of this.subscriptions.values()) {
      if (this.state !== 'RUNNING') return;
      const mine = await this.membership.share(subscription.topic);
      if (mine === undefined) continue;
      if (this.state !== 'RUNNING') return;
      const { added, removed } = this.setQueues(
        (qs) => qs.queue.topic === subscription.topic,
        mine,
        subscription,
      );
      if (added.length > 0 || removed.length > 0) {
        this.events.emit('consumer.rebalance', { topic: subscription.topic, queues: mine, added, removed });
      }
    }
  }
}
