import type { Clock } from '../common/clock';
import { systemClock } from '../common/clock';
import { RocketError } from '../common/errors';
import type { StoreFileSystem } from '../store/file-system';
import { MemoryFileSystem } from '../store/file-system';
import type { MessageStore } from '../store/message-store';
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
export const DEFAULT_BROKER_NAME = 'broker-a';
export const DEFAULT_QUEUE_COUNT = 8;
export const DEFAULT_MAX_RECONSUME_TIMES = 16;
export const DEFAULT_MAX_DELAY_MS = 24 * 3600 * 1000;
export const DEFAULT_MAX_SUSPEND_MS = 30_000;
export const DEFAULT_MAX_SUSPENDED_PULLS = 10_000;
export const DEFAULT_MAX_BATCH_MESSAGES = 1024;
export const DEFAULT_OFFSET_FLUSH_INTERVAL_MS = 5000;
export const DEFAULT_CONSUMER_EXPIRY_MS = 120_000;
export const DEFAULT_TRANSACTION_TIMEOUT_MS = 6000;
export const DEFAULT_TRANSACTION_CHECK_INTERVAL_MS = 30_000;
export const DEFAULT_TRANSACTION_CHECK_MAX = 15;
export const DEFAULT_MAX_PENDING_TRANSACTIONS = 100_000;
export const DEFAULT_MAX_SCHEDULED_MESSAGES = 1_000_000;
export const DEFAULT_MAX_IN_FLIGHT_SENDS = 10_000;
export const DEFAULT_MAX_POP_IN_FLIGHT_PER_GROUP = 100_000;

export interface BrokerOptions {
  /** Where messages live. Required; the broker does not close it. */
  store: MessageStore;
  /** Name clients route by. Default `broker-a`. (RocketMQ `brokerName`) */
  brokerName?: string;
  /** Directory for topic configs, consumer offsets and timer state, on `fileSystem`. Default: kept in memory. (RocketMQ `storePathRootDir/config`) */
  configDir?: string;
  /** File system for `configDir`. Default: the real one when `configDir` is set. */
  fileSystem?: StoreFileSystem;
  clock?: Clock;
  /** Create a topic on its first send. Default false. (RocketMQ `autoCreateTopicEnable`) */
  autoCreateTopics?: boolean;
  /** Queues of a topic created without a count. Default 8. (RocketMQ `defaultTopicQueueNums`) */
  defaultQueueCount?: number;
  /** Allow SQL92 property filters. Default true. (RocketMQ `enablePropertyFilter`, false there) */
  enablePropertyFilter?: boolean;
  /** Longest a pull may wait for a message (long polling). Default 30 s. (RocketMQ `brokerSuspendMaxTimeMillis` is the client's 15 s) */
  maxSuspendMs?: number;
  /** Most pulls waiting at once; more get an immediate answer. Default 10 000. */
  maxSuspendedPulls?: number;
  /** Most messages in one send batch. Default 1024. */
  maxBatchMessages?: number;
  /** Sends being stored at once past which sends fail with `BROKER_BUSY`. Default 10 000. */
  maxInFlightSends?: number;
  /**
   * Popped messages a consumer group may have unacked on this broker at once (in flight, waiting for
   * redelivery, or held back behind their FIFO message group); past it a pop hands out only messages
   * already tracked. Default 100 000. (RocketMQ bounds the same memory broker-wide with `popCkMaxBufferSize`)
   */
  maxPopInFlightPerGroup?: number;
  /** Default for groups that do not set their own. Default 16. (RocketMQ `retryMaxTimes`) */
  maxReconsumeTimes?: number;
  /** Backoff before the n-th retry is `retryDelaysMs[n + 1]` (RocketMQ starts at level 3, 10 s). Default RocketMQ's 18 levels. (RocketMQ `messageDelayLevel`) */
  retryDelaysMs?: readonly number[];
  /** Latest delivery time accepted, from now. Default 24 h. (RocketMQ `timerMaxDelaySec` / proxy `maxDelayTimeMills`) */
  maxDelayMs?: number;
  /** Delayed messages waiting at once past which delayed sends fail with `BROKER_BUSY`. Default 1 000 000. */
  maxScheduledMessages?: number;
  /** How often consumer offsets are persisted. Default 5 s. (RocketMQ `flushConsumerOffsetInterval`) */
  offsetFlushIntervalMs?: number;
  /** A client silent this long leaves its groups. Default 120 s. (RocketMQ `channelExpiredTimeout`) */
  consumerExpiryMs?: number;
  /** First check-back of an unresolved transaction after this long. Default 6 s. (RocketMQ `transactionTimeOut`) */
  transactionTimeoutMs?: number;
  /** Later check-backs this far apart. Default 30 s. (RocketMQ `transactionCheckInterval`) */
  transactionCheckIntervalMs?: number;
  /** Check-backs before an unresolved transaction is rolled back. Default 15. (RocketMQ `transactionCheckMax`) */
  transactionCheckMax?: number;
  /** Unresolved transactions tracked at once past which transactional sends fail with `BROKER_BUSY`. Default 100 000. */
  maxPendingTransactions?: number;
  /** Receives the broker's instrumentation events (see {@link BrokerEvent}). Default: ignored. A listener that throws is ignored. */
  onEvent?: (event: BrokerEvent) => void;
}

/** Every event a broker reports. */
export type BrokerEvent = TransactionEvent;

export type ResolvedBrokerOptions = Readonly<
  Required<Omit<BrokerOptions, 'configDir' | 'fileSystem'>> & {
    configDir: string;
    fileSystem: StoreFileSystem;
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
  if (!/^[A-Za-z0-9_@.-]{1,64}$/.test(brokerName)) {
    throw new RocketError(
      'INVALID_OPTION',
      `broker option brokerName must be 1–64 of [A-Za-z0-9_@.-]; got "${brokerName}"`,
    );
  }
  const retryDelaysMs = options.retryDelaysMs ?? DEFAULT_RETRY_DELAYS_MS;
  if (retryDelaysMs.length < 3 || retryDelaysMs.some((d) => !Number.isSafeInteger(d) || d < 0)) {
    throw new RocketError(
      'INVALID_OPTION',
      'broker option retryDelaysMs must list at least 3 non-negative integer delays',
    );
  }
  const inMemory = options.configDir === undefined;
  return Object.freeze({
    store: options.store,
    brokerName,
    configDir: options.configDir ?? '/rocketnest-broker-config',
    fileSystem: options.fileSystem ?? (inMemory ? new MemoryFileSystem() : nodeFileSystem),
    clock: options.clock ?? systemClock,
    autoCreateTopics: options.autoCreateTopics ?? false,
    defaultQueueCount: option('defaultQueueCount', options.defaultQueueCount ?? DEFAULT_QUEUE_COUNT, 1, 1024),
    enablePropertyFilter: options.enablePropertyFilter ?? true,
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
      1_000_000,
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
      1000,
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
  });
}
