import type { Timer } from '../common/clock';
import { RocketError, isRocketError } from '../common/errors';
import { compileFilter, MATCH_ALL } from '../filter/message-filter';
import type { MessageFilter } from '../filter/message-filter';
import type { MessageView } from '../message/message';
import type {
  AckRequest,
  ChangeInvisibleRequest,
  ClientChannel,
  ConsumerHeartbeat,
  EndTransactionRequest,
  HeartbeatRequest,
  PoppedMessage,
  PopRequest,
  PullRequest,
  PullResponse,
  SendBackRequest,
  SendRequest,
  SendResponse,
  Subscription,
  TopicConfig,
  TopicRoute,
} from '../message/protocol';
import type { BrokerApi, PromoteRequest, PromoteResult, ReplicaSyncState } from '../message/operations';
import type { ReplicaGate } from '../store/ha-master';
import {
  type ClientIdRequest,
  type CommitOffsetRequest,
  type ConsumeStatsRow,
  type GroupQueueRequest,
  type GroupRequest,
  Permission,
  type QueueLockRequest,
  type QueueRef,
  type QueueRequest,
  type SearchOffsetRequest,
  type TopicRouteRequest,
} from '../message/protocol';
import { SYSTEM_PROPERTY_PREFIX, SystemProperty, userProperties } from '../message/system-properties';
import { recordBodyLength } from '../message/record-codec';
import { deadLetterTopicOf, queueForGroup, retryTopicOf } from '../message/topic-names';
import { validateGroup } from '../message/validation';
import { nodeFileSystem } from '../store/file-system';
import type { AppendRequest, GetOptions, MessageStore } from '../store/message-store';
import type { FlowControlReason } from './broker-observer';
import type { BrokerEvent, BrokerOptions, BrokerRole, ResolvedBrokerOptions } from './broker-options';
import { resolveBrokerOptions } from './broker-options';
import { ConfigFile } from './config-file';
import { ConsumerOffsets } from './consumer-offsets';
import { ConsumerRegistry } from './consumer-registry';
import { LongPoll, queueKey } from './long-poll';
import { checkMessageType } from './message-type';
import { PopService } from './pop-service';
import { QueueLocks } from './queue-locks';
import { QueueWriter, notMaster } from './queue-writer';
import { RetryService, SYSTEM_TOPIC_QUEUE_COUNT } from './retry-service';
import { ScheduleService } from './schedule-service';
import type { TopicInput } from './topic-registry';
import { TransactionService } from './transaction-service';
import type { TransactionProgress } from './transaction-service';
import { TopicRegistry } from './topic-registry';

// the topic-name helpers live in message/ (clients need them without the broker); re-exported here
export { deadLetterTopicOf, queueForGroup, retryTopicOf };

/** Most compiled filters kept; subscriptions are few, so this bounds a misbehaving client. */
const FILTER_CACHE_ENTRIES = 1024;
/** How often silent clients are dropped from their groups. */
const CONSUMER_SCAN_INTERVAL_MS = 10_000;
/** Most messages one pull returns. (RocketMQ caps a consumer's `pullBatchSize` at the same) */
export const MAX_PULL_MESSAGES = 1024;

/**
 * A RocketMQ-style broker over a {@link MessageStore}: topics and queues, send (with FIFO queue
 * selection, batches and flow control), pull with long polling and broker-side filtering,
 * consumer offsets, group membership, retries with backoff and dead-lettering, and delayed
 * messages. The methods of {@link BrokerApi} are the rows of the operation table
 * (`message/operations.ts`): what a client asks over any front end, each taking one request object;
 * the in-process transport calls them directly and the TCP server decodes requests into them.
 *
 * Size: one method per operation-table row, each a thin validation-and-delegation step; the
 * services behind them (pop, transactions, schedule, retry, offsets, membership, the write door)
 * are their own files.
 */
export class Broker implements BrokerApi {
  readonly options: ResolvedBrokerOptions;
  readonly store: MessageStore;
  private readonly topics: TopicRegistry;
  private readonly offsets: ConsumerOffsets;
  private readonly consumers: ConsumerRegistry;
  private readonly longPoll: LongPoll;
  /** The one write door: every store write of this broker goes through it. */
  private readonly writer: QueueWriter;
  private readonly retries: RetryService;
  private readonly pops: PopService;
  private readonly schedule: ScheduleService;
  private readonly transactions: TransactionService;
  private readonly channels = new Map<string, ClientChannel>();
  private readonly filters = new Map<string, MessageFilter>();
  private readonly roundRobin = new Map<string, number>();
  private readonly queueLocks = new QueueLocks();
  private readonly timers: Timer[] = [];
  private inFlightSends = 0;
  private currentRole: BrokerRole;
  private closing: Promise<void> | undefined;

  private constructor(options: ResolvedBrokerOptions) {
    this.options = options;
    this.currentRole = options.role;
    const { store, clock, brokerName, fileSystem: fs, configDir: dir } = options;
    this.store = store;
    this.topics = new TopicRegistry(
      new ConfigFile(fs, dir, 'topics.json'),
      options.defaultQueueCount,
      (topic, queueId) => store.maxOffset(topic, queueId) > store.minOffset(topic, queueId),
    );
    this.offsets = new ConsumerOffsets(new ConfigFile(fs, dir, 'consumerOffset.json'));
    this.consumers = new ConsumerRegistry(options.consumerExpiryMs);
    this.longPoll = new LongPoll(clock, options.maxSuspendedPulls);
    const onEvent = (event: BrokerEvent): void => {
      try {
        options.onEvent(event);
      } catch {
        // instrumentation never breaks the broker
      }
    };
    const writer = new QueueWriter({
      store,
      longPoll: this.longPoll,
      brokerName,
      role: options.role,
      replicas: options.replicas,
    });
    this.writer = writer;
    this.schedule = new ScheduleService({
      writer,
      store,
      clock,
      progressFile: new ConfigFile(fs, dir, 'schedule.json'),
      maxPending: options.maxScheduledMessages,
      onEvent,
    });
    this.retries = new RetryService({
      writer,
      store,
      schedule: this.schedule,
      topics: this.topics,
      clock,
      brokerName,
      maxReconsumeTimes: options.maxReconsumeTimes,
      retryDelaysMs: options.retryDelaysMs,
      maxDelayMs: options.maxDelayMs,
      onDeadLetter: options.observer && ((group) => options.observer!.deadLettered(group)),
    });
    this.pops = new PopService({
      store,
      options,
      retries: this.retries,
      onEvent,
      longPoll: this.longPoll,
      offsets: this.offsets,
      readableTopic: (topic) => this.requireTopic(topic, Permission.READ),
      topicConfig: (topic) => this.topics.get(topic),
      readOptions: (subscription, maxCount) => this.readOptions(subscription, maxCount),
    });
    this.transactions = new TransactionService({
      writer,
      store,
      clock,
      progressFile: new ConfigFile<TransactionProgress>(fs, dir, 'transaction.json'),
      producers: {
        checkers: (group) =>
          this.producerIds(group).flatMap((clientId) => {
            const channel = this.channels.get(clientId);
            return channel?.checkTransaction ? [{ clientId, channel }] : [];
          }),
      },
      onEvent,
      brokerName,
      timeoutMs: options.transactionTimeoutMs,
      checkIntervalMs: options.transactionCheckIntervalMs,
      checkMax: options.transactionCheckMax,
      maxPending: options.maxPendingTransactions,
    });
  }

  /** Loads configs and offsets, resumes delayed messages, starts the housekeeping timers. */
  static async start(options: BrokerOptions): Promise<Broker> {
    const broker = new Broker(resolveBrokerOptions(options, nodeFileSystem));
    // a slave writes nothing: delayed deliveries and transaction checks are its master's work
    if (broker.options.role !== 'SLAVE') {
      broker.schedule.start();
      broker.transactions.start();
    }
    broker.every(broker.options.offsetFlushIntervalMs, () => broker.transactions.persist());
    broker.every(broker.options.offsetFlushIntervalMs, () => broker.offsets.persist());
    broker.every(CONSUMER_SCAN_INTERVAL_MS, () => {
      for (const group of broker.consumers.expire(broker.options.clock.now())) broker.announce(group);
    });
    return broker;
  }

  get brokerName(): string {
    return this.options.brokerName;
  }

  /** ASYNC_MASTER, SYNC_MASTER or SLAVE (RocketMQ `brokerRole`). */
  get role(): BrokerRole {
    return this.currentRole;
  }

  /**
   * A slave becomes a master (manual promotion, `admin broker promote`): it takes writes from now
   * on, through `replicas` when `SYNC_MASTER`, and starts the master's own work (delayed
   * deliveries, transaction checks). Whoever calls it made sure the old master is gone.
   */
  becomeMaster(role: Exclude<BrokerRole, 'SLAVE'>, replicas: ReplicaGate | undefined): void {
    this.assertOpen();
    if (this.currentRole !== 'SLAVE')
      throw new RocketError(
        'INVALID_ARGUMENT',
        `broker ${this.brokerName} is already a master (${this.currentRole})`,
      );
    this.currentRole = role;
    this.writer.becomeMaster(role, replicas);
    this.schedule.start();
    this.transactions.start();
  }

  /**
   * Promotes this slave (admin operation `promote`) the way the front end running it says
   * (`BrokerOptions.promote`); a broker without one cannot be promoted at run time.
   */
  async promote(request: PromoteRequest): Promise<PromoteResult> {
    this.assertOpen();
    if (this.currentRole !== 'SLAVE')
      throw new RocketError(
        'INVALID_ARGUMENT',
        `broker ${this.brokerName} is a master (${this.currentRole}): only a slave is promoted`,
      );
    const promote = this.options.promote;
    if (!promote)
      throw new RocketError(
        'INVALID_ARGUMENT',
        `broker ${this.brokerName} cannot be promoted at run time: restart it with --role and --broker-id 0`,
      );
    return promote(request);
  }

  /** The store's stats and, in a replica set, the replication figures (`storeStats` admin operation). */
  stats(): Record<string, number | boolean> {
    return { ...this.store.stats?.(), ...this.options.replicationStats?.() };
  }

  /** Topic configs, consumer offsets and delay progress, as this broker's slaves copy them. */
  replicaSyncState(): ReplicaSyncState {
    this.assertOpen();
    return {
      topics: this.listTopics(),
      offsets: [...this.offsets.allOffsets()],
      delayProgress: this.schedule.progress(),
    };
  }

  /**
   * A slave takes its master's topic configs, consumer offsets and delay progress (RocketMQ's
   * `SlaveSynchronize`): topics are created or updated to the master's, offsets and the delay
   * progress overwritten. Returns how many topics and offsets changed, and whether the delay
   * progress did.
   */
  applyReplicaSync(state: ReplicaSyncState): { topics: number; offsets: number; delayProgress: boolean } {
    this.assertOpen();
    if (this.currentRole !== 'SLAVE')
      throw new RocketError(
        'INVALID_ARGUMENT',
        `broker ${this.brokerName} is a master: it copies nobody's state`,
      );
    let topics = 0;
    for (const t of state.topics) {
      const mine = this.getTopic(t.topic);
      if (
        mine &&
        mine.readQueueCount === t.readQueueCount &&
        mine.writeQueueCount === t.writeQueueCount &&
        mine.permission === t.permission &&
        mine.fifo === t.fifo
      )
        continue;
      this.createTopic({
        topic: t.topic,
        readQueueCount: t.readQueueCount,
        writeQueueCount: t.writeQueueCount,
        permission: t.permission,
        fifo: t.fifo,
      });
      topics++;
    }
    let offsets = 0;
    for (const o of state.offsets) {
      if (this.offsets.get(o.group, o.topic, o.queueId) === o.offset) continue;
      this.offsets.commit(o.group, o.topic, o.queueId, o.offset);
      offsets++;
    }
    const progress = state.delayProgress;
    if (
      progress !== undefined &&
      (!isOffset(progress.watermark) ||
        !Array.isArray(progress.delivered) ||
        !progress.delivered.every(isOffset))
    ) {
      throw new RocketError(
        'PROTOCOL_ERROR',
        'the master sent a malformed delay progress (watermark and delivered must be non-negative integers); is it a rocketnest broker of the same version?',
      );
    }
    const delayProgress = progress !== undefined && this.schedule.adoptProgress(progress);
    return { topics, offsets, delayProgress };
  }

  /** Pop state and everything that writes live on the master only. */
  private assertMaster(): void {
    if (this.currentRole === 'SLAVE') throw notMaster(this.brokerName);
  }

  private every(intervalMs: number, task: () => void): void {
    const slot = this.timers.length;
    const arm = (): void => {
      this.timers[slot] = this.options.clock.setTimer(intervalMs, () => {
        if (this.closing) return;
        try {
          task();
        } finally {
          arm();
        }
      });
    };
    arm();
  }

  private assertOpen(): void {
    if (this.closing) throw new RocketError('CLOSED', `broker ${this.brokerName} is closed`);
  }

  // ---- topics ----------------------------------------------------------------------------

  /** Creates a topic, or changes the given fields of one (RocketMQ `updateAndCreateTopic`; see `TopicRegistry.upsert`). */
  createTopic(input: TopicInput): TopicConfig {
    this.assertOpen();
    return this.topics.upsert(input);
  }

  deleteTopic(topic: string): boolean {
    this.assertOpen();
    return this.topics.delete(topic);
  }

  getTopic(topic: string): TopicConfig | undefined {
    return this.topics.get(topic);
  }

  listTopics(): TopicConfig[] {
    return this.topics.list();
  }

  /**
   * Calls `listener` (synchronously) after every topic change: created, updated, deleted, and the
   * system topics the broker creates itself (retry, dead letter). Returns the unsubscribe. Used to
   * register with name servers at once rather than at the next period.
   */
  watchTopics(listener: () => void): () => void {
    return this.topics.watch(listener);
  }

  /** This broker's part of a topic's route; `TOPIC_NOT_FOUND` when it does not serve the topic. */
  topicRoute({ topic }: TopicRouteRequest): TopicRoute {
    if (!this.topics.get(topic)) {
      throw new RocketError('TOPIC_NOT_FOUND', `broker "${this.brokerName}" does not serve topic "${topic}"`);
    }
    const config = this.requireTopic(topic, 0);
    return {
      topic,
      brokers: [
        {
          brokerName: this.brokerName,
          readQueueCount: config.readQueueCount,
          writeQueueCount: config.writeQueueCount,
          permission: config.permission,
          fifo: config.fifo,
        },
      ],
    };
  }

  private requireTopic(topic: string, needs: number): TopicConfig {
    let config = this.topics.get(topic);
    if (!config && this.options.autoCreateTopics && needs === Permission.WRITE) {
      config = this.topics.upsert({ topic });
    }
    if (!config) {
      throw new RocketError(
        'TOPIC_NOT_FOUND',
        `topic "${topic}" does not exist on broker ${this.brokerName}; create it first (autoCreateTopics is off)`,
      );
    }
    if ((config.permission & needs) !== needs) {
      throw new RocketError(
        'PERMISSION_DENIED',
        `topic "${topic}" on broker ${this.brokerName} is not ${needs === Permission.WRITE ? 'writable' : 'readable'} (permission ${config.permission})`,
      );
    }
    return config;
  }

  // ---- send --------------------------------------------------------------------------------

  /**
   * Stores a message or a batch. The queue is the request's, or round robin, or — on a FIFO topic
   * — the hash of the message group, so a group's messages stay in one queue and in order.
   */
  async send(request: SendRequest): Promise<SendResponse> {
    this.assertOpen();
    this.assertMaster();
    validateGroup(request.producerGroup);
    const config = this.requireTopic(request.topic, Permission.WRITE);
    const messages = request.messages;
    if (
      !Array.isArray(messages) ||
      messages.length === 0 ||
      messages.length > this.options.maxBatchMessages
    ) {
      throw new RocketError(
        'INVALID_ARGUMENT',
        `a send carries 1 to ${this.options.maxBatchMessages} messages (maxBatchMessages); got ${messages?.length}`,
      );
    }
    if (this.options.enableTopicMessageTypeCheck) {
      checkMessageType(config, messages, request.transactional === true);
    }
    const queueId = this.chooseQueue(config, request.queueId, messages[0]!.messageGroup);
    const observer = this.options.observer;
    const startedAt = observer ? performance.now() : 0;
    const now = this.options.clock.now();
    const requests: AppendRequest[] = messages.map((m) => {
      if (m.properties !== undefined)
        for (const key in m.properties) {
          if (key.startsWith(SYSTEM_PROPERTY_PREFIX)) {
            throw new RocketError(
              'INVALID_ARGUMENT',
              `property "${key}": the "${SYSTEM_PROPERTY_PREFIX}" prefix is reserved for the broker`,
            );
          }
        }
      if (m.deliveryTimeMs !== undefined && m.deliveryTimeMs > now + this.options.maxDelayMs) {
        throw new RocketError(
          'INVALID_ARGUMENT',
          `deliveryTimeMs is ${m.deliveryTimeMs - now} ms ahead; the limit is maxDelayMs=${this.options.maxDelayMs}`,
        );
      }
      // fields listed, not spread: this runs per message on the send path
      return {
        topic: request.topic,
        queueId,
        body: m.body,
        tag: m.tag,
        keys: m.keys,
        properties: m.properties,
        messageGroup: m.messageGroup,
        deliveryTimeMs: m.deliveryTimeMs,
        bornTimestampMs: request.bornTimestampMs,
        bornHost: request.bornHost,
      };
    });
    if (this.inFlightSends >= this.options.maxInFlightSends) {
      observer?.rejected('in-flight-sends');
      throw new RocketError(
        'BROKER_BUSY',
        `broker ${this.brokerName} is storing ${this.inFlightSends} sends (maxInFlightSends); retry shortly`,
      );
    }
    this.inFlightSends++;
    try {
      const delayed = requests.some((r) => (r.deliveryTimeMs ?? 0) > now);
      const stored = request.transactional
        ? await this.transactions.prepare(requests, request.producerGroup)
        : delayed
          ? await this.schedule.schedule(
              requests.map((r) => ({ ...r, deliveryTimeMs: Math.max(r.deliveryTimeMs ?? 0, now) })),
            )
          : await this.writer.write(requests);
      const status = await this.writer.replicated(stored);
      if (observer) {
        let bytes = 0;
        for (const m of messages) bytes += m.body.length;
        observer.sent(request.topic, messages.length, bytes, (performance.now() - startedAt) / 1000);
      }
      return {
        brokerName: this.brokerName,
        topic: request.topic,
        ...(status === 'SEND_OK' ? {} : { status }),
        messages: stored.map((s) => ({
          msgId: s.msgId,
          queueId,
          queueOffset: s.queueOffset,
          ...(request.transactional ? { transactionId: s.msgId } : {}),
        })),
      };
    } catch (error) {
      if (observer && isRocketError(error, 'BROKER_BUSY')) observer.rejected(refusalReason(error, request));
      throw error;
    } finally {
      this.inFlightSends--;
    }
  }

  private chooseQueue(
    config: TopicConfig,
    requested: number | undefined,
    messageGroup: string | undefined,
  ): number {
    if (requested !== undefined) {
      if (!Number.isInteger(requested) || requested < 0 || requested >= config.writeQueueCount) {
        throw new RocketError(
          'INVALID_ARGUMENT',
          `queueId ${requested} is not a write queue of topic "${config.topic}" (0..${config.writeQueueCount - 1})`,
        );
      }
      return requested;
    }
    if (config.fifo && messageGroup !== undefined) return queueForGroup(messageGroup, config.writeQueueCount);
    const next = (this.roundRobin.get(config.topic) ?? 0) + 1;
    this.roundRobin.set(config.topic, next);
    return next % config.writeQueueCount;
  }

  // ---- pull --------------------------------------------------------------------------------

  /**
   * Reads from a queue, filtered on the broker. With no new message it waits (long polling) up to
   * `suspendTimeoutMs`, answering as soon as one is stored.
   */
  async pull(request: PullRequest): Promise<PullResponse> {
    this.assertOpen();
    validateGroup(request.consumerGroup);
    const config = this.requireTopic(request.topic, Permission.READ);
    if (
      !Number.isInteger(request.queueId) ||
      request.queueId < 0 ||
      request.queueId >= config.readQueueCount
    ) {
      throw new RocketError(
        'INVALID_ARGUMENT',
        `queueId ${request.queueId} is not a read queue of topic "${request.topic}" (0..${config.readQueueCount - 1})`,
      );
    }
    if (request.commitOffset !== undefined) {
      this.offsets.commit(request.consumerGroup, request.topic, request.queueId, request.commitOffset);
    }
    const options = this.readOptions(request.subscription, request.maxCount);
    const deadline =
      this.options.clock.now() + Math.min(Math.max(0, request.suspendTimeoutMs), this.options.maxSuspendMs);
    // a requester that decodes stored records gets them as read, without decoding and re-encoding
    const raw = request.acceptsRecords === true && this.store.getRecords !== undefined;
    for (;;) {
      const got = raw
        ? this.store.getRecords!(request.topic, request.queueId, request.queueOffset, options)
        : this.store.getMessages(request.topic, request.queueId, request.queueOffset, options);
      const base = { nextOffset: got.nextOffset, minOffset: got.minOffset, maxOffset: got.maxOffset };
      switch (got.status) {
        case 'FOUND':
          if ('records' in got) {
            if (this.options.observer)
              this.options.observer.delivered(
                request.topic,
                got.records.length,
                recordBodyBytes(got.records),
              );
            return {
              status: 'FOUND',
              messages: [],
              records: { storeId: this.store.storeId, records: got.records },
              ...base,
            };
          }
          if (this.options.observer)
            this.options.observer.delivered(request.topic, got.messages.length, bodyBytes(got.messages));
          return { status: 'FOUND', messages: got.messages, ...base };
        case 'NO_MATCHED_MESSAGE':
          return { status: 'NO_MATCHED_MESSAGE', messages: [], ...base };
        case 'OFFSET_TOO_SMALL':
        case 'OFFSET_OVERFLOW':
          return { status: 'OFFSET_ILLEGAL', messages: [], ...base };
        case 'NO_MESSAGE_IN_QUEUE':
          if (request.queueOffset !== 0 && request.queueOffset !== got.maxOffset) {
            return { status: 'OFFSET_ILLEGAL', messages: [], ...base, nextOffset: got.maxOffset };
          }
          break;
        case 'NO_NEW_MESSAGE':
          break;
      }
      const remaining = deadline - this.options.clock.now();
      if (remaining <= 0 || this.closing)
        return { status: 'NO_NEW_MESSAGE', messages: [], ...base, nextOffset: request.queueOffset };
      const before = this.longPoll.waiting;
      await this.longPoll.wait(queueKey(request.topic, request.queueId), remaining);
      if (before >= this.options.maxSuspendedPulls) {
        return { status: 'NO_NEW_MESSAGE', messages: [], ...base, nextOffset: request.queueOffset };
      }
    }
  }

  /** Store read options for a subscription: tag hashes first, then the exact tag or SQL condition. */
  private readOptions(subscription: Subscription | undefined, maxCount: number): GetOptions {
    const filter = subscription ? this.compile(subscription) : MATCH_ALL;
    const count = Math.max(1, Math.min(Math.floor(maxCount) || 1, MAX_PULL_MESSAGES));
    if (filter === MATCH_ALL) return { maxCount: count };
    return {
      maxCount: count,
      tagHashFilter: (hash) => filter.matchesTagHash(hash),
      messageFilter: (m) => filter.matches(m.tag, m.properties),
    };
  }

  private compile(subscription: Subscription): MessageFilter {
    if (subscription.kind === 'SQL92' && !this.options.enablePropertyFilter) {
      throw new RocketError(
        'INVALID_FILTER',
        `SQL92 filters are disabled on broker ${this.brokerName} (enablePropertyFilter)`,
      );
    }
    const key = `${subscription.kind}\u0000${subscription.expression}`;
    let filter = this.filters.get(key);
    if (!filter) {
      filter = compileFilter(subscription.kind, subscription.expression);
      if (this.filters.size >= FILTER_CACHE_ENTRIES) this.filters.clear();
      this.filters.set(key, filter);
    }
    return filter;
  }

  // ---- pop (message-granularity consumption, see PopService) ------------------------------

  /**
   * Hands out up to `maxCount` (≤ {@link MAX_POP_COUNT}) messages no consumer of the group holds, each
   * invisible to the group for `invisibleTimeMs` ({@link MIN_POP_INVISIBLE_TIME_MS} to
   * {@link MAX_POP_INVISIBLE_TIME_MS}) and acked by its receipt handle; waits up to
   * `pollTimeoutMs` when none is ready (RocketMQ 5 `POP_MESSAGE`).
   */
  async pop(request: PopRequest): Promise<PoppedMessage[]> {
    this.assertMaster();
    this.assertOpen();
    const popped = await this.pops.pop(request);
    const observer = this.options.observer;
    if (observer && popped.length > 0) {
      let bytes = 0;
      for (const p of popped) bytes += p.message.body.length;
      observer.delivered(request.topic, popped.length, bytes);
    }
    return popped;
  }

  /** Acks a popped message; a stale or malformed handle rejects `INVALID_RECEIPT_HANDLE` (RocketMQ `ACK_MESSAGE`). */
  async ack(request: AckRequest): Promise<void> {
    this.assertMaster();
    this.assertOpen();
    this.pops.ack(request);
  }

  /** Makes a popped message invisible for `invisibleTimeMs` from now; returns its new handle (RocketMQ `CHANGE_MESSAGE_INVISIBLETIME`). */
  async changeInvisibleTime(request: ChangeInvisibleRequest): Promise<{ receiptHandle: string }> {
    this.assertMaster();
    this.assertOpen();
    return this.pops.changeInvisibleTime(request);
  }

  // ---- offsets -----------------------------------------------------------------------------

  /** The group's committed offset for a queue, or `undefined` when it never committed one. */
  queryOffset({ group, topic, queueId }: GroupQueueRequest): number | undefined {
    return this.offsets.get(group, topic, queueId);
  }

  commitOffset({ group, topic, queueId, offset }: CommitOffsetRequest): void {
    this.assertOpen();
    validateGroup(group);
    this.offsets.commit(group, topic, queueId, offset);
  }

  minOffset({ topic, queueId }: QueueRequest): number {
    return this.store.minOffset(topic, queueId);
  }

  maxOffset({ topic, queueId }: QueueRequest): number {
    return this.store.maxOffset(topic, queueId);
  }

  /** First queue offset stored at or after `timestampMs` (RocketMQ `searchOffset`). */
  searchOffset({ topic, queueId, timestampMs }: SearchOffsetRequest): number {
    return this.store.offsetForTimestamp(topic, queueId, timestampMs);
  }

  /** Moves a group's offsets on every read queue of `topic` to `timestampMs`; returns them. */
  resetOffsetByTime(
    group: string,
    topic: string,
    timestampMs: number,
  ): Array<{ queueId: number; offset: number }> {
    this.assertOpen();
    validateGroup(group);
    const config = this.requireTopic(topic, 0);
    const out: Array<{ queueId: number; offset: number }> = [];
    for (let queueId = 0; queueId < config.readQueueCount; queueId++) {
      const offset = this.store.offsetForTimestamp(topic, queueId, timestampMs);
      this.offsets.commit(group, topic, queueId, offset);
      out.push({ queueId, offset });
    }
    this.offsets.persist();
    const notice = { group, topic, brokerName: this.brokerName, offsets: out };
    for (const clientId of this.consumers.consumerIds(group))
      this.channels.get(clientId)?.resetOffset?.(notice);
    return out;
  }

  /**
   * A consumer group's progress on this broker (RocketMQ `GET_CONSUME_STATS`): per queue, the
   * next offset to be written, the group's committed offset and the lag between them. Covers every
   * queue the group committed on, plus every read queue of `topic` when one is given (a queue the
   * group never committed on shows `consumerOffset` undefined and its whole backlog as lag).
   */
  consumeStats(group: string, topic?: string): ConsumeStatsRow[] {
    validateGroup(group);
    const rows = new Map<string, ConsumeStatsRow>();
    const add = (t: string, queueId: number): void => {
      const k = `${t}\u0000${queueId}`;
      if (rows.has(k)) return;
      const brokerOffset = this.store.maxOffset(t, queueId);
      const consumerOffset = this.offsets.get(group, t, queueId);
      const from = consumerOffset ?? this.store.minOffset(t, queueId);
      const row: ConsumeStatsRow = { topic: t, queueId, brokerOffset, lag: Math.max(0, brokerOffset - from) };
      if (consumerOffset !== undefined) row.consumerOffset = consumerOffset;
      rows.set(k, row);
    };
    for (const o of this.offsets.groupOffsets(group)) {
      if (topic === undefined || o.topic === topic) add(o.topic, o.queueId);
    }
    if (topic !== undefined) {
      const config = this.requireTopic(topic, 0);
      for (let queueId = 0; queueId < config.readQueueCount; queueId++) add(topic, queueId);
    }
    return [...rows.values()].sort((a, b) =>
      a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : a.queueId - b.queueId,
    );
  }

  /**
   * Every group's progress on every queue it committed an offset on (what {@link consumeStats}
   * gives one group), for metrics and the dashboard: read on demand, never kept.
   */
  allConsumeStats(): Array<ConsumeStatsRow & { group: string }> {
    const rows: Array<ConsumeStatsRow & { group: string }> = [];
    for (const { group, topic, queueId, offset } of this.offsets.allOffsets()) {
      const brokerOffset = this.store.maxOffset(topic, queueId);
      rows.push({
        group,
        topic,
        queueId,
        brokerOffset,
        consumerOffset: offset,
        lag: Math.max(0, brokerOffset - offset),
      });
    }
    return rows;
  }

  // ---- membership --------------------------------------------------------------------------

  heartbeat(request: HeartbeatRequest): void {
    this.assertOpen();
    for (const group of [
      ...request.producerGroups,
      ...request.consumers.map((c: ConsumerHeartbeat) => c.group),
    ]) {
      validateGroup(group);
    }
    for (const consumer of request.consumers) {
      // a subscription the broker cannot serve is refused now, not at every later pull
      for (const subscription of consumer.subscriptions) this.compile(subscription);
      if (consumer.messageModel === 'CLUSTERING') {
        this.topics.ensureSystemTopic(retryTopicOf(consumer.group), SYSTEM_TOPIC_QUEUE_COUNT);
      }
    }
    for (const group of this.consumers.heartbeat(request, this.options.clock.now())) this.announce(group);
  }

  /** Registers how to reach a client (transaction check-backs, rebalance notices). */
  registerChannel(clientId: string, channel: ClientChannel): void {
    this.channels.set(clientId, channel);
  }

  /**
   * Locks queues for a client's orderly consumption (RocketMQ `lockBatchMQ`): returns the queues it
   * now holds — free ones, expired ones and its own (renewed); a queue another live member holds is
   * left out.
   */
  lockQueues(request: QueueLockRequest): QueueRef[] {
    this.assertOpen();
    validateGroup(request.group);
    return this.queueLocks.lock(request.group, request.clientId, request.queues, this.options.clock.now());
  }

  /** Releases queues a client holds (RocketMQ `unlockBatchMQ`); others' locks are untouched. */
  unlockQueues(request: QueueLockRequest): void {
    this.assertOpen();
    validateGroup(request.group);
    this.queueLocks.unlock(request.group, request.clientId, request.queues);
  }

  unregisterClient({ clientId }: ClientIdRequest, reason: 'unregister' | 'disconnect' = 'unregister'): void {
    // A client that unregisters gives its queue locks back. A lost connection does not: as in
    // RocketMQ's `RebalanceLockManager`, the locks stay until unlocked or expired, so no other
    // member locks a queue the old holder may still be consuming (after a reconnect it renews
    // them; cut off for good, it stops consuming once it cannot renew, before they expire).
    if (reason === 'unregister') this.queueLocks.release(clientId);
    this.channels.delete(clientId);
    for (const group of this.consumers.unregister(clientId)) this.announce(group);
  }

  consumerIds({ group }: GroupRequest): string[] {
    return this.consumers.consumerIds(group);
  }

  /** Clients registered as producers of `group`, most recently heard from first. */
  producerIds(group: string): string[] {
    return this.consumers.producerIds(group);
  }

  channel(clientId: string): ClientChannel | undefined {
    return this.channels.get(clientId);
  }

  private announce(group: string): void {
    for (const clientId of this.consumers.consumerIds(group))
      this.channels.get(clientId)?.consumerIdsChanged?.(group);
  }

  // ---- retry and dead letters --------------------------------------------------------------

  /**
   * A consumer could not consume a message: store a copy for the group's retry topic after the
   * next backoff, or, past the group's max reconsume times, in its dead-letter topic (decided by
   * {@link RetryService}).
   */
  async sendBack(request: SendBackRequest): Promise<{ deadLettered: boolean }> {
    this.assertMaster();
    this.assertOpen();
    return this.retries.sendBack(request);
  }

  /** Re-sends a dead-lettered message to the topic it was first sent to, with a fresh retry count. */
  async resendDeadLetter(
    group: string,
    msgId: string,
  ): Promise<{ msgId: string; topic: string; queueId: number }> {
    this.assertOpen();
    validateGroup(group);
    const dead = this.store.getById(msgId);
    if (!dead || dead.topic !== deadLetterTopicOf(group)) {
      throw new RocketError(
        'MESSAGE_NOT_FOUND',
        `message ${msgId} is not in the dead-letter topic of group "${group}"`,
      );
    }
    const topic = dead.properties[SystemProperty.ORIGIN_TOPIC] ?? dead.topic;
    const config = this.requireTopic(topic, Permission.WRITE);
    const queueId = this.chooseQueue(config, undefined, dead.messageGroup);
    const [stored] = await this.writer.write([
      {
        topic,
        queueId,
        body: dead.body,
        tag: dead.tag,
        keys: dead.keys,
        properties: userProperties(dead.properties),
        messageGroup: dead.messageGroup,
        bornTimestampMs: this.options.clock.now(),
      },
    ]);
    return { msgId: stored!.msgId, topic, queueId };
  }

  // ---- transactions ------------------------------------------------------------------------

  /**
   * Ends a transaction a transactional send opened (RocketMQ `END_TRANSACTION`): `COMMIT` delivers
   * its half message, `ROLLBACK` discards it, `UNKNOWN` leaves it to the check-back. Ending one that
   * is already resolved does nothing. Rejects `MESSAGE_NOT_FOUND` for an id that names no half
   * message here, `INVALID_ARGUMENT` for another producer group's transaction.
   */
  /**
   * Recalls a delayed message before its delivery time: `queueOffset` and `msgId` are what its send
   * returned. `MESSAGE_NOT_FOUND` when it is not waiting (delivered, recalled, or no such message).
   */
  recallDelayed({ topic, queueOffset, msgId }: { topic: string; queueOffset: number; msgId: string }): void {
    this.schedule.recall(queueOffset, msgId, topic);
  }

  async endTransaction(request: EndTransactionRequest): Promise<void> {
    this.assertMaster();
    this.assertOpen();
    validateGroup(request.producerGroup);
    await this.transactions.end(request);
  }

  // ---- queries -----------------------------------------------------------------------------

  viewMessage(msgId: string): MessageView | undefined {
    return this.store.getById(msgId);
  }

  queryByKey(
    topic: string,
    key: string,
    beginTimestampMs?: number,
    endTimestampMs?: number,
    maxCount?: number,
  ): MessageView[] {
    return this.store.queryByKey({ topic, key, beginTimestampMs, endTimestampMs, maxCount });
  }

  /** Delayed messages waiting for their time. */
  get scheduledCount(): number {
    return this.schedule.pending;
  }

  /**
   * Work the broker still holds for later: delayed messages (retries included) not yet due,
   * transactions not yet resolved, popped messages not yet acked. Test tooling runs virtual time
   * until it is all done.
   */
  pendingWork(): { scheduledMessages: number; pendingTransactions: number; unackedPops: number } {
    return {
      scheduledMessages: this.schedule.pending,
      pendingTransactions: this.transactions.pendingCount,
      unackedPops: this.pops.totalUnacked(),
    };
  }

  /** Stops timers, answers waiting pulls, persists offsets and timer progress. Does not close the store. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      for (const t of this.timers) t.cancel();
      this.longPoll.wakeAll();
      await this.pops.close();
      await this.schedule.close();
      await this.transactions.close();
      this.offsets.persist();
    })();
    return this.closing;
  }
}

/** Bytes of the bodies of `messages`. */
function bodyBytes(messages: ReadonlyArray<{ body: Buffer }>): number {
  let bytes = 0;
  for (const m of messages) bytes += m.body.length;
  return bytes;
}

function recordBodyBytes(records: readonly Buffer[]): number {
  let bytes = 0;
  for (const r of records) bytes += recordBodyLength(r, 0);
  return bytes;
}

/** Which limit refused a send that failed with `BROKER_BUSY` (see {@link FlowControlReason}). */
function refusalReason(error: RocketError, request: SendRequest): FlowControlReason {
  if (isRocketError(error.cause, 'DISK_FULL')) return 'disk-full';
  if (request.transactional) return 'pending-transactions';
  return 'scheduled-messages';
}

function isOffset(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}
