import type { Clock } from '../common/clock';
import { RocketError } from '../common/errors';
import type { MessageModel } from '../message/protocol';
import type { AllocationStrategy } from './allocation';
import { intOption } from './client-support';
import * as consumerGroup from './group-membership';
import type { ConsumeStart, GroupConsumerOptions } from './group-membership';
import type { Transport } from './transport';

/** Most listener calls at once. (RocketMQ `consumeThreadMax`) */
export const DEFAULT_CONSUME_CONCURRENCY = 20;
/** Largest {@link PushConsumerOptions.consumeConcurrency}. */
export const MAX_CONSUME_CONCURRENCY = 10_000;
/** Messages per listener call for concurrent listeners. (RocketMQ `consumeMessageBatchMaxSize`) */
export const DEFAULT_CONSUME_BATCH_SIZE = 1;
/** Largest {@link PushConsumerOptions.consumeBatchSize}. */
export const MAX_CONSUME_BATCH_SIZE = 1024;
/** Messages per pull. (RocketMQ `pullBatchSize`) */
export const DEFAULT_PULL_BATCH_SIZE = 32;
/** Largest {@link PushConsumerOptions.pullBatchSize}. */
export const MAX_PULL_BATCH_SIZE = 1024;
/** Cached messages per queue past which the queue is not pulled. (RocketMQ `pullThresholdForQueue`) */
export const DEFAULT_PULL_THRESHOLD_FOR_QUEUE = 1000;
/** Cached body bytes per queue past which the queue is not pulled: 100 MiB. (RocketMQ `pullThresholdSizeForQueue`) */
export const DEFAULT_PULL_THRESHOLD_SIZE_FOR_QUEUE_BYTES = 100 * 1024 * 1024;
/** Retries before a message goes to the dead-letter queue. (RocketMQ `maxReconsumeTimes`) */
export const DEFAULT_CONSUMER_MAX_RECONSUME_TIMES = 16;
/** Largest {@link PushConsumerOptions.maxReconsumeTimes}. */
export const MAX_CONSUMER_RECONSUME_TIMES = 1000;
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

export type { ConsumeFromWhere } from './group-membership';
export { DEFAULT_PULL_RETRY_DELAY_MS, DEFAULT_REBALANCE_INTERVAL_MS } from './group-membership';

/** Where broadcasting consumers keep their offsets between runs (they are never committed to a broker). */
export interface OffsetStore {
  /** Offsets by `queueKey` (`brokerName@topic@queueId`): the next offset to consume. */
  load(): Record<string, number> | Promise<Record<string, number>>;
  save(offsets: Record<string, number>): void | Promise<void>;
}

export interface PushConsumerOptions extends GroupConsumerOptions {
  /** Default `CLUSTERING`: the group shares the queues. `BROADCASTING`: every consumer reads everything. (RocketMQ `messageModel`) */
  messageModel?: MessageModel;
  /** Most listener calls at once. Default {@link DEFAULT_CONSUME_CONCURRENCY}. (RocketMQ `consumeThreadMax`) */
  consumeConcurrency?: number;
  /** Messages per concurrent listener call. Default {@link DEFAULT_CONSUME_BATCH_SIZE}. (RocketMQ `consumeMessageBatchMaxSize`) */
  consumeBatchSize?: number;
  /** Messages per pull. Default {@link DEFAULT_PULL_BATCH_SIZE}. (RocketMQ `pullBatchSize`) */
  pullBatchSize?: number;
  /**
   * A queue with more cached (pulled, unfinished) messages than this is not pulled until it drains.
   * Default {@link DEFAULT_PULL_THRESHOLD_FOR_QUEUE}. (RocketMQ `pullThresholdForQueue`)
   */
  pullThresholdForQueue?: number;
  /**
   * Same, in cached body bytes. Default {@link DEFAULT_PULL_THRESHOLD_SIZE_FOR_QUEUE_BYTES}.
   * (RocketMQ `pullThresholdSizeForQueue`, in MiB there)
   */
  pullThresholdSizeForQueueBytes?: number;
  /**
   * Cached messages of all the queues of one topic together; when set, each queue's bound is this
   * divided by the topic's queues this consumer holds (at least 1), and replaces
   * `pullThresholdForQueue`. Default: none. (RocketMQ `pullThresholdForTopic`, -1 there)
   */
  pullThresholdForTopic?: number;
  /**
   * Same, in cached body bytes; replaces `pullThresholdSizeForQueueBytes` the same way.
   * Default: none. (RocketMQ `pullThresholdSizeForTopic`, in MiB there, -1 there)
   */
  pullThresholdSizeForTopicBytes?: number;
  /** Retries before dead-lettering. Default {@link DEFAULT_CONSUMER_MAX_RECONSUME_TIMES}. (RocketMQ `maxReconsumeTimes`) */
  maxReconsumeTimes?: number;
  /** Long-poll wait of each pull, in ms; 0 polls. Default {@link DEFAULT_SUSPEND_TIMEOUT_MS}. (RocketMQ `brokerSuspendMaxTimeMillis`) */
  suspendTimeoutMs?: number;
  /** Orderly retry pause in ms. Default {@link DEFAULT_SUSPEND_CURRENT_QUEUE_TIME_MS}. (RocketMQ `suspendCurrentQueueTimeMillis`) */
  suspendCurrentQueueTimeMs?: number;
  /** Default {@link DEFAULT_PERSIST_OFFSET_INTERVAL_MS}. (RocketMQ `persistConsumerOffsetInterval`) */
  persistOffsetIntervalMs?: number;
  /** Pause before consuming again a message whose send-back failed, ms. Default {@link DEFAULT_LOCAL_RETRY_DELAY_MS}. (RocketMQ `submitConsumeRequestLater`) */
  localRetryDelayMs?: number;
  /**
   * Orderly, clustering: how often queue locks are renewed, in ms. Default
   * {@link DEFAULT_QUEUE_LOCK_RENEW_INTERVAL_MS}. (RocketMQ `rocketmq.client.rebalance.lockInterval`)
   */
  queueLockRenewIntervalMs?: number;
  /** Broadcasting only: where offsets persist between runs. Default: memory only. */
  offsetStore?: OffsetStore;
}

/** Every option of a push consumer, checked, with its default filled in. */
export interface ResolvedPushConsumerOptions {
  readonly group: string;
  readonly transport: Transport;
  readonly clientId: string;
  readonly clock: Clock;
  readonly allocation: AllocationStrategy;
  readonly messageModel: MessageModel;
  readonly consumeConcurrency: number;
  readonly consumeBatchSize: number;
  readonly pullBatchSize: number;
  readonly pullThresholdForQueue: number;
  readonly pullThresholdSizeForQueueBytes: number;
  readonly pullThresholdForTopic: number | undefined;
  readonly pullThresholdSizeForTopicBytes: number | undefined;
  readonly maxReconsumeTimes: number;
  readonly suspendTimeoutMs: number;
  readonly suspendCurrentQueueTimeMs: number;
  readonly queueLockRenewIntervalMs: number;
  readonly rebalanceIntervalMs: number;
  readonly heartbeatIntervalMs: number;
  readonly persistOffsetIntervalMs: number;
  readonly pullRetryDelayMs: number;
  readonly localRetryDelayMs: number;
  readonly consumeStart: Readonly<ConsumeStart>;
  readonly offsetStore: OffsetStore | undefined;
}

/** Validates the options of a push consumer (`INVALID_OPTION` naming the option) and freezes them. */
export function resolvePushConsumerOptions(options: PushConsumerOptions): ResolvedPushConsumerOptions {
  const c = 'push consumer';
  const basics = consumerGroup.consumerBasics(c, 'push', options);
  const messageModel = options.messageModel ?? 'CLUSTERING';
  if (messageModel !== 'CLUSTERING' && messageModel !== 'BROADCASTING') {
    throw new RocketError('INVALID_OPTION', `${c} option messageModel must be CLUSTERING or BROADCASTING`);
  }
  const o = options;
  const resolved: ResolvedPushConsumerOptions = {
    ...basics,
    messageModel,
    consumeConcurrency: intOption(
      c,
      'consumeConcurrency',
      o.consumeConcurrency,
      DEFAULT_CONSUME_CONCURRENCY,
      1,
      MAX_CONSUME_CONCURRENCY,
    ),
    consumeBatchSize: intOption(
      c,
      'consumeBatchSize',
      o.consumeBatchSize,
      DEFAULT_CONSUME_BATCH_SIZE,
      1,
      MAX_CONSUME_BATCH_SIZE,
    ),
    pullBatchSize: intOption(
      c,
      'pullBatchSize',
      o.pullBatchSize,
      DEFAULT_PULL_BATCH_SIZE,
      1,
      MAX_PULL_BATCH_SIZE,
    ),
    pullThresholdForQueue: intOption(
      c,
      'pullThresholdForQueue',
      o.pullThresholdForQueue,
      DEFAULT_PULL_THRESHOLD_FOR_QUEUE,
      1,
    ),
    pullThresholdSizeForQueueBytes: intOption(
      c,
      'pullThresholdSizeForQueueBytes',
      o.pullThresholdSizeForQueueBytes,
      DEFAULT_PULL_THRESHOLD_SIZE_FOR_QUEUE_BYTES,
      1,
    ),
    pullThresholdForTopic:
      o.pullThresholdForTopic === undefined
        ? undefined
        : intOption(c, 'pullThresholdForTopic', o.pullThresholdForTopic, 0, 1),
    pullThresholdSizeForTopicBytes:
      o.pullThresholdSizeForTopicBytes === undefined
        ? undefined
        : intOption(c, 'pullThresholdSizeForTopicBytes', o.pullThresholdSizeForTopicBytes, 0, 1),
    maxReconsumeTimes: intOption(
      c,
      'maxReconsumeTimes',
      o.maxReconsumeTimes,
      DEFAULT_CONSUMER_MAX_RECONSUME_TIMES,
      0,
      MAX_CONSUMER_RECONSUME_TIMES,
    ),
    suspendTimeoutMs: intOption(c, 'suspendTimeoutMs', o.suspendTimeoutMs, DEFAULT_SUSPEND_TIMEOUT_MS, 0),
    suspendCurrentQueueTimeMs: intOption(
      c,
      'suspendCurrentQueueTimeMs',
      o.suspendCurrentQueueTimeMs,
      DEFAULT_SUSPEND_CURRENT_QUEUE_TIME_MS,
      0,
    ),
    queueLockRenewIntervalMs: intOption(
      c,
      'queueLockRenewIntervalMs',
      o.queueLockRenewIntervalMs,
      DEFAULT_QUEUE_LOCK_RENEW_INTERVAL_MS,
      1,
    ),
    ...consumerGroup.membershipIntervalOptions(c, o),
    persistOffsetIntervalMs: intOption(
      c,
      'persistOffsetIntervalMs',
      o.persistOffsetIntervalMs,
      DEFAULT_PERSIST_OFFSET_INTERVAL_MS,
      1,
    ),
    pullRetryDelayMs: consumerGroup.pullRetryDelayOption(c, o.pullRetryDelayMs),
    localRetryDelayMs: intOption(
      c,
      'localRetryDelayMs',
      o.localRetryDelayMs,
      DEFAULT_LOCAL_RETRY_DELAY_MS,
      1,
    ),
    consumeStart: Object.freeze(consumerGroup.consumeStartOptions(c, o)),
    offsetStore: o.offsetStore,
  };
  return Object.freeze(resolved);
}
