import type { Clock } from '../common/clock';
import type { AllocationStrategy } from './allocation';
import { intOption } from './client-support';
import * as consumerGroup from './group-membership';
import type { ConsumeStart, GroupConsumerOptions } from './group-membership';
import type { Transport } from './transport';

/** Messages one `poll()` returns at most, and one pull asks for. (RocketMQ lite `pullBatchSize`) */
export const DEFAULT_POLL_BATCH_SIZE = 32;
/** Largest {@link PullConsumerOptions.pullBatchSize}. */
export const MAX_POLL_BATCH_SIZE = 1024;
/** Default wait of `poll()`. (RocketMQ lite `pollTimeoutMillis`) */
export const DEFAULT_POLL_TIMEOUT_MS = 5000;
/** Period of automatic commits. (RocketMQ lite `autoCommitIntervalMillis`) */
export const DEFAULT_AUTO_COMMIT_INTERVAL_MS = 5000;

export interface PullConsumerOptions extends GroupConsumerOptions {
  /** Most messages per pull and per `poll()`, at most {@link MAX_POLL_BATCH_SIZE}. Default {@link DEFAULT_POLL_BATCH_SIZE}. (RocketMQ lite `pullBatchSize`) */
  pullBatchSize?: number;
  /**
   * Commit, every `autoCommitIntervalMs` (checked at each `poll()`) and when a queue is released
   * or the consumer shuts down, the position after the last message `poll()` returned. Default
   * true. (RocketMQ lite `autoCommit`)
   */
  autoCommit?: boolean;
  /** Default {@link DEFAULT_AUTO_COMMIT_INTERVAL_MS}. (RocketMQ lite `autoCommitIntervalMillis`) */
  autoCommitIntervalMs?: number;
}

/** Every option of a pull consumer, checked, with its default filled in. */
export interface ResolvedPullConsumerOptions {
  readonly group: string;
  readonly transport: Transport;
  readonly clientId: string;
  readonly clock: Clock;
  readonly allocation: AllocationStrategy;
  readonly pullBatchSize: number;
  readonly autoCommit: boolean;
  readonly autoCommitIntervalMs: number;
  readonly consumeStart: Readonly<ConsumeStart>;
  readonly rebalanceIntervalMs: number;
  readonly heartbeatIntervalMs: number;
  readonly pullRetryDelayMs: number;
}

/** Validates the options of a pull consumer (`INVALID_OPTION` naming the option) and freezes them. */
export function resolvePullConsumerOptions(options: PullConsumerOptions): ResolvedPullConsumerOptions {
  const c = 'pull consumer';
  const basics = consumerGroup.consumerBasics(c, 'pull', options);
  const pullBatchSize = intOption(
    c,
    'pullBatchSize',
    options.pullBatchSize,
    DEFAULT_POLL_BATCH_SIZE,
    1,
    MAX_POLL_BATCH_SIZE,
  );
  const autoCommit = options.autoCommit ?? true;
  const autoCommitIntervalMs = intOption(
    c,
    'autoCommitIntervalMs',
    options.autoCommitIntervalMs,
    DEFAULT_AUTO_COMMIT_INTERVAL_MS,
    0,
  );
  const consumeStart = Object.freeze(consumerGroup.consumeStartOptions(c, options));
  const intervals = consumerGroup.membershipIntervalOptions(c, options);
  const pullRetryDelayMs = consumerGroup.pullRetryDelayOption(c, options.pullRetryDelayMs);
  return Object.freeze({
    ...basics,
    pullBatchSize,
    autoCommit,
    autoCommitIntervalMs,
    consumeStart,
    ...intervals,
    pullRetryDelayMs,
  });
}
