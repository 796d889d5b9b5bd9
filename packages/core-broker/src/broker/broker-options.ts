import type { Clock } from '../common/clock';
import { systemClock } from '../common/clock';
import { RocketError } from '../common/errors';
import type { StoreFileSystem } from '../store/file-system';
import { MemoryFileSystem } from '../store/file-system';
import type { ReplicaGate } from '../store/ha-master';
import type { MessageStore } from '../store/message-store';
import type { BrokerObserver } from './broker-observer';
import type { BrokerRole, WriteEvent } from './queue-writer';

export type { BrokerRole } from './queue-writer';
import { MAX_QUEUES_PER_TOPIC } from './topic-registry';
import type { TransactionEvent } from './transaction-service';

/** RocketMQ's delay levels, used as the retry backoff (`messageDelayLevel`). */
export const DEFAULT_RETRY_DELAYS_MS: readonly number[] = Object.freeze(
  [
    '1s',
    '5s',
    '10s',
    '30s',
    '1m',
    '2m',
    '3m',
    '4m',
    '5m',
    '6m',
    '7m',
    '8m',
    '9m',
    '10m',
    '20m',
    '30m',
    '1h',
    '2h',
  ].map(
    (text) =>
      Number(text.slice(0, -1)) * { s: 1000, m: 60_000, h: 3_600_000 }[text.slice(-1) as 's' | 'm' | 'h'],
  ),
);
/** Name clients route by. (RocketMQ `brokerName`, the host name there) */
export const DEFAULT_BROKER_NAME = 'broker-a';
/** Queues of a topic created without a count. (RocketMQ `defaultTopicQueueNums`) */
export const DEFAULT_QUEUE_COUNT = 8;
/** Attempts of a group that does not set its own. (RocketMQ subscription group `retryMaxTimes`) */
export const DEFAULT_MAX_RECONSUME_TIMES = 16;
/** Latest delivery time accepted, from now. (RocketMQ proxy `maxDelayTimeMills`; broker `timerMaxDelaySec`) */
export const DEFAULT_MAX_DELAY_MS = 24 * 3600 * 1000;
/** Longest a pull may wait for a message. (RocketMQ's broker holds up to the client's `brokerSuspendMaxTimeMillis`, 15 s) */
export const DEFAULT_MAX_SUSPEND_MS = 30_000;
/** Most pulls and pops waiting at once. (No RocketMQ counterpart: its `PullRequestHoldService` is unbounded) */
export const DEFAULT_MAX_SUSPENDED_PULLS = 10_000;
/** Most messages in one send batch. (No RocketMQ counterpart: RocketMQ bounds a batch by `maxMessageSize` only) */
export const DEFAULT_MAX_BATCH_MESSAGES = 1024;
/** How often consumer offsets are persisted. (RocketMQ `flushConsumerOffsetInterval`) */
export const DEFAULT_OFFSET_FLUSH_INTERVAL_MS = 5000;
/** A client silent this long leaves its groups. (RocketMQ `channelExpiredTimeout`) */
export const DEFAULT_CONSUMER_EXPIRY_MS = 120_000;
/** First check-back of an unresolved transaction after this long. (RocketMQ `transactionTimeOut`) */
export const DEFAULT_TRANSACTION_TIMEOUT_MS = 6000;
/** Later check-backs this far apart. (RocketMQ `transactionCheckInterval`) */
export const DEFAULT_TRANSACTION_CHECK_INTERVAL_MS = 30_000;
/** Check-backs before an unresolved transaction is rolled back. (RocketMQ `transactionCheckMax`) */
export const DEFAULT_TRANSACTION_CHECK_MAX = 15;
/** Unresolved transactions tracked at once. (No RocketMQ counterpart: its half topic is unbounded) */
export const DEFAULT_MAX_PENDING_TRANSACTIONS = 100_000;
/** Delayed messages waiting at once. (No RocketMQ counterpart: its timer wheel is bounded by disk) */
export const DEFAULT_MAX_SCHEDULED_MESSAGES = 1_000_000;
/** Sends being stored at once. (RocketMQ `sendThreadPoolQueueCapacity`) */
export const DEFAULT_MAX_IN_FLIGHT_SENDS = 10_000;
/** Unacked popped messages per group. (RocketMQ bounds the same memory broker-wide with `popCkMaxBufferSize`) */
export const DEFAULT_MAX_POP_IN_FLIGHT_PER_GROUP = 100_000;
/** Whether a first send creates its topic. (RocketMQ `autoCreateTopicEnable`, true there; off here so a typo fails) */
export const DEFAULT_AUTO_CREATE_TOPICS = false;
/** Whether SQL92 property filters are served. (RocketMQ `enablePropertyFilter`, false there) */
export const DEFAULT_ENABLE_PROPERTY_FILTER = true;
/**
 * Whether a send's message type must match its topic's type. (RocketMQ 5 proxy
 * `enableTopicMessageTypeCheck`, true by default in `ProxyConfig`)
 */
export const DEFAULT_ENABLE_TOPIC_MESSAGE_TYPE_CHECK = true;
/** Where topic configs, offsets and timer state live when no `configDir` is given (on an in-memory file system). */
export const DEFAULT_IN_MEMORY_CONFIG_DIR = '/rocketnest-broker-config';

/** Longest broker name, in characters. */
export const MAX_BROKER_NAME_LENGTH = 64;
/** Highest max reconsume times the broker or a `sendBack` may set: a bound on retry copies. */
export const MAX_RECONSUME_TIMES_LIMIT = 1000;
/** Highest {@link BrokerOptions.maxBatchMessages} accepted. */
export const MAX_BATCH_MESSAGES_LIMIT = 1_000_000;
/** Fewest backoff levels {@link BrokerOptions.retryDelaysMs} may list: retries start at the third. */
export const MIN_RETRY_DELAY_LEVELS = 3;

const BROKER_NAME_PATTERN = new RegExp(`^[A-Za-z0-9_@.-]{1,${MAX_BROKER_NAME_LENGTH}}$`);

export interface BrokerOptions {
  /** Where messages live. Required; the broker does not close it. */
  store: MessageStore;
  /** Name clients route by. Default {@link DEFAULT_BROKER_NAME}. (RocketMQ `brokerName`) */
  brokerName?: string;
  /** Directory for topic configs, consumer offsets and timer state, on `fileSystem`. Default: kept in memory. (RocketMQ `storePathRootDir/config`) */
  configDir?: string;
  /** File system for `configDir`. Default: the real one when `configDir` is set. */
  fileSystem?: StoreFileSystem;
  clock?: Clock;
  /** Create a topic on its first send. Default {@link DEFAULT_AUTO_CREATE_TOPICS}. (RocketMQ `autoCreateTopicEnable`) */
  autoCreateTopics?: boolean;
  /** Queues of a topic created without a count, up to {@link MAX_QUEUES_PER_TOPIC}. Default {@link DEFAULT_QUEUE_COUNT}. (RocketMQ `defaultTopicQueueNums`) */
  defaultQueueCount?: number;
  /** Allow SQL92 property filters. Default {@link DEFAULT_ENABLE_PROPERTY_FILTER}. (RocketMQ `enablePropertyFilter`, false there) */
  enablePropertyFilter?: boolean;
  /**
   * Refuse a send whose message type does not fit its topic, as RocketMQ 5 does: a message group
   * (FIFO message) on a normal topic; on a FIFO topic a message without a group, a delayed message or
   * a transactional one. Turn it off only to accept what an older broker accepted. Default
   * {@link DEFAULT_ENABLE_TOPIC_MESSAGE_TYPE_CHECK}. (RocketMQ proxy `enableTopicMessageTypeCheck`)
   */
  enableTopicMessageTypeCheck?: boolean;
  /** Longest a pull may wait for a message (long polling), in ms. Default {@link DEFAULT_MAX_SUSPEND_MS}. */
  maxSuspendMs?: number;
  /** Most pulls waiting at once; more get an immediate answer. Default {@link DEFAULT_MAX_SUSPENDED_PULLS}. */
  maxSuspendedPulls?: number;
  /** Most messages in one send batch, up to {@link MAX_BATCH_MESSAGES_LIMIT}. Default {@link DEFAULT_MAX_BATCH_MESSAGES}. */
  maxBatchMessages?: number;
  /** Sends being stored at once past which sends fail with `BROKER_BUSY`. Default {@link DEFAULT_MAX_IN_FLIGHT_SENDS}. (RocketMQ `sendThreadPoolQueueCapacity`) */
  maxInFlightSends?: number;
  /**
   * Popped messages a consumer group may have unacked on this broker at once (in flight, waiting for
   * redelivery, or held back behind their FIFO message group); past it a pop hands out only messages
   * already tracked. Default {@link DEFAULT_MAX_POP_IN_FLIGHT_PER_GROUP}. (RocketMQ bounds the same memory broker-wide with `popCkMaxBufferSize`)
   */
  maxPopInFlightPerGroup?: number;
  /** Default for groups that do not set their own, up to {@link MAX_RECONSUME_TIMES_LIMIT}. Default {@link DEFAULT_MAX_RECONSUME_TIMES}. (RocketMQ `retryMaxTimes`) */
  maxReconsumeTimes?: number;
  /** Backoff before the n-th retry is `retryDelaysMs[n + 1]` (RocketMQ starts at level 3, 10 s); at least {@link MIN_RETRY_DELAY_LEVELS} levels. Default {@link DEFAULT_RETRY_DELAYS_MS}. (RocketMQ `messageDelayLevel`) */
  retryDelaysMs?: readonly number[];
  /** Latest delivery time accepted, from now, in ms. Default {@link DEFAULT_MAX_DELAY_MS}. (RocketMQ `timerMaxDelaySec` / proxy `maxDelayTimeMills`) */
  maxDelayMs?: number;
  /** Delayed messages waiting at once past which delayed sends fail with `BROKER_BUSY`. Default {@link DEFAULT_MAX_SCHEDULED_MESSAGES}. */
  maxScheduledMessages?: number;
  /** How often consumer offsets are persisted, in ms. Default {@link DEFAULT_OFFSET_FLUSH_INTERVAL_MS}. (RocketMQ `flushConsumerOffsetInterval`) */
  offsetFlushIntervalMs?: number;
  /** A client silent this long (ms) leaves its groups. Default {@link DEFAULT_CONSUMER_EXPIRY_MS}. (RocketMQ `channelExpiredTimeout`) */
  consumerExpiryMs?: number;
  /** First check-back of an unresolved transaction after this long, in ms. Default {@link DEFAULT_TRANSACTION_TIMEOUT_MS}. (RocketMQ `transactionTimeOut`) */
  transactionTimeoutMs?: number;
  /** Later check-backs this far apart, in ms. Default {@link DEFAULT_TRANSACTION_CHECK_INTERVAL_MS}. (RocketMQ `transactionCheckInterval`) */
  transactionCheckIntervalMs?: number;
  /** Check-backs before an unresolved transaction is rolled back. Default {@link DEFAULT_TRANSACTION_CHECK_MAX}. (RocketMQ `transactionCheckMax`) */
  transactionCheckMax?: number;
  /** Unresolved transactions tracked at once past which transactional sends fail with `BROKER_BUSY`. Default {@link DEFAULT_MAX_PENDING_TRANSACTIONS}. */
  maxPendingTransactions?: number;
  /** Receives the broker's instrumentation events (see {@link BrokerEvent}). Default: ignored. A listener that throws is ignored. */
  onEvent?: (event: BrokerEvent) => void;
  /** Default {@link DEFAULT_BROKER_ROLE}. (RocketMQ `brokerRole`) */
  role?: BrokerRole;
  /** The replication service a `SYNC_MASTER` waits on (`HaMaster`); required for one. */
  replicas?: ReplicaGate;
  /** Replication figures added to the broker's stats (slaves and their lag, or a slave's lag). */
  replicationStats?: () => Record<string, number | boolean>;
  /** Told of sends, deliveries, dead letters and refusals as they happen, for metrics (see {@link BrokerObserver}). Default: none. */
  observer?: BrokerObserver;
}

export const BROKER_ROLES: readonly BrokerRole[] = Object.freeze([
  'ASYNC_MASTER',
  'SYNC_MASTER',
  'SLAVE',
] as const);
/** (RocketMQ `brokerRole` = ASYNC_MASTER) */
export const DEFAULT_BROKER_ROLE: BrokerRole = 'ASYNC_MASTER';

/** Every event a broker reports. */
export type BrokerEvent = TransactionEvent | WriteEvent;

export type ResolvedBrokerOptions = Readonly<
  Required<Omit<BrokerOptions, 'configDir' | 'fileSystem' | 'replicas' | 'replicationStats' | 'observer'>> & {
    replicas: ReplicaGate | undefined;
    replicationStats: (() => Record<string, number | boolean>) | undefined;
    configDir: string;
    fileSystem: StoreFileSystem;
    observer: BrokerObserver | undefined;
  }
>;

function option(name: string, value: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new RocketError(
      'INVALID_OPTION',
      `broker option ${name} must be an integer in [${min}, ${max}]; got ${value}`,
    );
  }
  return value;
}

/** Applies defaults, validates every field and freezes the result. */
export function resolveBrokerOptions(
  options: BrokerOptions,
  nodeFileSystem: StoreFileSystem,
): ResolvedBrokerOptions {
  if (!options?.store) throw new RocketError('INVALID_OPTION', 'broker option store is required');
  const brokerName = options.brokerName ?? DEFAULT_BROKER_NAME;
  if (!BROKER_NAME_PATTERN.test(brokerName)) {
    throw new RocketError(
      'INVALID_OPTION',
      `broker option brokerName must be 1–${MAX_BROKER_NAME_LENGTH} of [A-Za-z0-9_@.-]; got "${brokerName}"`,
    );
  }
  const retryDelaysMs = options.retryDelaysMs ?? DEFAULT_RETRY_DELAYS_MS;
  if (
    retryDelaysMs.length < MIN_RETRY_DELAY_LEVELS ||
    retryDelaysMs.some((d) => !Number.isSafeInteger(d) || d < 0)
  ) {
    throw new RocketError(
      'INVALID_OPTION',
      `broker option retryDelaysMs must list at least ${MIN_RETRY_DELAY_LEVELS} non-negative integer delays`,
    );
  }
  const role = options.role ?? DEFAULT_BROKER_ROLE;
  if (!BROKER_ROLES.includes(role))
    throw new RocketError(
      'INVALID_OPTION',
      `broker option role must be one of ${BROKER_ROLES.join(', ')}; got "${role}"`,
    );
  if (role === 'SYNC_MASTER' && !options.replicas)
    throw new RocketError(
      'INVALID_OPTION',
      'broker option role SYNC_MASTER needs replicas (the HaMaster its sends wait on); start one, or use ASYNC_MASTER',
    );
  const inMemory = options.configDir === undefined;
  return Object.freeze({
    store: options.store,
    brokerName,
    role,
    replicas: options.replicas,
    replicationStats: options.replicationStats,
    configDir: options.configDir ?? DEFAULT_IN_MEMORY_CONFIG_DIR,
    fileSystem: options.fileSystem ?? (inMemory ? new MemoryFileSystem() : nodeFileSystem),
    clock: options.clock ?? systemClock,
    autoCreateTopics: options.autoCreateTopics ?? DEFAULT_AUTO_CREATE_TOPICS,
    defaultQueueCount: option(
      'defaultQueueCount',
      options.defaultQueueCount ?? DEFAULT_QUEUE_COUNT,
      1,
      MAX_QUEUES_PER_TOPIC,
    ),
    enablePropertyFilter: options.enablePropertyFilter ?? DEFAULT_ENABLE_PROPERTY_FILTER,
    enableTopicMessageTypeCheck:
      options.enableTopicMessageTypeCheck ?? DEFAULT_ENABLE_TOPIC_MESSAGE_TYPE_CHECK,
    maxSuspendMs: option('maxSuspendMs', options.maxSuspendMs ?? DEFAULT_MAX_SUSPEND_MS, 0),
    maxSuspendedPulls: option(
      'maxSuspendedPulls',
      options.maxSuspendedPulls ?? DEFAULT_MAX_SUSPENDED_PULLS,
      0,
    ),
    maxBatchMessages: option(
      'maxBatchMessages',
      options.maxBatchMessages ?? DEFAULT_MAX_BATCH_MESSAGES,
      1,
      MAX_BATCH_MESSAGES_LIMIT,
    ),
    maxInFlightSends: option('maxInFlightSends', options.maxInFlightSends ?? DEFAULT_MAX_IN_FLIGHT_SENDS, 1),
    maxPopInFlightPerGroup: option(
      'maxPopInFlightPerGroup',
      options.maxPopInFlightPerGroup ?? DEFAULT_MAX_POP_IN_FLIGHT_PER_GROUP,
      1,
    ),
    maxReconsumeTimes: option(
      'maxReconsumeTimes',
      options.maxReconsumeTimes ?? DEFAULT_MAX_RECONSUME_TIMES,
      0,
      MAX_RECONSUME_TIMES_LIMIT,
    ),
    retryDelaysMs: Object.freeze([...retryDelaysMs]),
    maxDelayMs: option('maxDelayMs', options.maxDelayMs ?? DEFAULT_MAX_DELAY_MS, 1),
    maxScheduledMessages: option(
      'maxScheduledMessages',
      options.maxScheduledMessages ?? DEFAULT_MAX_SCHEDULED_MESSAGES,
      1,
    ),
    offsetFlushIntervalMs: option(
      'offsetFlushIntervalMs',
      options.offsetFlushIntervalMs ?? DEFAULT_OFFSET_FLUSH_INTERVAL_MS,
      1,
    ),
    consumerExpiryMs: option('consumerExpiryMs', options.consumerExpiryMs ?? DEFAULT_CONSUMER_EXPIRY_MS, 1),
    transactionTimeoutMs: option(
      'transactionTimeoutMs',
      options.transactionTimeoutMs ?? DEFAULT_TRANSACTION_TIMEOUT_MS,
      1,
    ),
    transactionCheckIntervalMs: option(
      'transactionCheckIntervalMs',
      options.transactionCheckIntervalMs ?? DEFAULT_TRANSACTION_CHECK_INTERVAL_MS,
      1,
    ),
    transactionCheckMax: option(
      'transactionCheckMax',
      options.transactionCheckMax ?? DEFAULT_TRANSACTION_CHECK_MAX,
      0,
    ),
    maxPendingTransactions: option(
      'maxPendingTransactions',
      options.maxPendingTransactions ?? DEFAULT_MAX_PENDING_TRANSACTIONS,
      1,
    ),
    onEvent: options.onEvent ?? ((): void => undefined),
    observer: options.observer,
  });
}
