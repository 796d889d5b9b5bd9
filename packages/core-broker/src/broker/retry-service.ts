import type { Clock } from '../common/clock';
import { RocketError } from '../common/errors';
import type { MessageView } from '../message/message';
import type { SendBackRequest } from '../message/protocol';
import { SystemProperty } from '../message/system-properties';
import { DLQ_TOPIC_PREFIX, RETRY_TOPIC_PREFIX, validateGroup } from '../message/validation';
import type { AppendRequest, AppendResult, MessageStore } from '../store/message-store';
import { MAX_RECONSUME_TIMES_LIMIT } from './broker-options';
import type { QueueWriter } from './queue-writer';
import type { ScheduleService } from './schedule-service';
import type { TopicRegistry } from './topic-registry';

/** Queues of a group's retry and dead-letter topics (RocketMQ creates both with one queue). */
export const SYSTEM_TOPIC_QUEUE_COUNT = 1;
/**
 * Backoff level of a message's first retry: RocketMQ's first retry waits delay level 3 (10 s);
 * each later one climbs a level. A message that failed `n` times waits `retryDelaysMs[n + 1]`.
 */
const FIRST_RETRY_LEVEL_INDEX = 2;

// the names are also computed by broker.ts for its clients; both follow RocketMQ's `MixAll`
const retryTopic = (group: string): string => `${RETRY_TOPIC_PREFIX}${group}`;
const deadLetterTopic = (group: string): string => `${DLQ_TOPIC_PREFIX}${group}`;

/** What the retry service is built from. */
export interface RetryServiceOptions {
  /** The one write door; every retry and dead letter is written through it. */
  writer: QueueWriter;
  /** Read only: the message a `sendBack` names. */
  store: MessageStore;
  /** Holds retries until their backoff has passed. */
  schedule: ScheduleService;
  /** Creates the retry and dead-letter topics on first use. */
  topics: TopicRegistry;
  clock: Clock;
  brokerName: string;
  /** Attempts a group gets when it does not say (RocketMQ `retryMaxTimes`). */
  maxReconsumeTimes: number;
  /** Backoff levels (RocketMQ `messageDelayLevel`). */
  retryDelaysMs: readonly number[];
  /** Longest backoff a `sendBack` may ask for. */
  maxDelayMs: number;
  /** Told of each dead letter written (metrics); optional. */
  onDeadLetter?: ((group: string) => void) | undefined;
}

/**
 * Where the broker decides what happens to a message a consumer could not consume, for every way
 * of consuming: a push or pull consumer's `sendBack`, and a popped message whose invisible time
 * lapsed once too often. It decides between another attempt (a copy for the group's retry topic
 * after the next backoff) and the dead-letter topic, and it owns the one routine that writes a dead
 * letter, so a dead letter looks the same whichever path produced it.
 */
export class RetryService {
  constructor(private readonly options: RetryServiceOptions) {}

  /** True when a message consumed `reconsumeTimes` times has no attempt left. */
  outOfAttempts(reconsumeTimes: number, maxReconsumeTimes = this.options.maxReconsumeTimes): boolean {
    return reconsumeTimes > maxReconsumeTimes;
  }

  /** Backoff before the attempt after `reconsumeTimes` failures (the last level repeats). */
  retryDelayMs(reconsumeTimes: number): number {
    const delays = this.options.retryDelaysMs;
    return delays[Math.min(reconsumeTimes + FIRST_RETRY_LEVEL_INDEX - 1, delays.length - 1)]!;
  }

  /**
   * A consumer could not consume a message (RocketMQ `CONSUMER_SEND_MSG_BACK`): store a copy for
   * the group's retry topic after the next backoff, or, past the group's max reconsume times, in
   * its dead-letter topic.
   */
  async sendBack(request: SendBackRequest): Promise<{ deadLettered: boolean }> {
    validateGroup(request.consumerGroup);
    const { store, maxDelayMs, clock } = this.options;
    const original = store.getById(request.msgId);
    if (!original) {
      throw new RocketError(
        'MESSAGE_NOT_FOUND',
        `message ${request.msgId} is not on broker ${this.options.brokerName}`,
      );
    }
    if (
      request.delayMs !== undefined &&
      (!Number.isSafeInteger(request.delayMs) || request.delayMs < 0 || request.delayMs > maxDelayMs)
    ) {
      throw new RocketError(
        'INVALID_ARGUMENT',
        `delayMs must be an integer in [0, ${maxDelayMs}]; got ${request.delayMs}`,
      );
    }
    if (
      request.maxReconsumeTimes !== undefined &&
      (!Number.isInteger(request.maxReconsumeTimes) ||
        request.maxReconsumeTimes < 0 ||
        request.maxReconsumeTimes > MAX_RECONSUME_TIMES_LIMIT)
    ) {
      throw new RocketError(
        'INVALID_ARGUMENT',
        `maxReconsumeTimes must be an integer in [0, ${MAX_RECONSUME_TIMES_LIMIT}]; got ${request.maxReconsumeTimes}`,
      );
    }
    const group = request.consumerGroup;
    const reconsumeTimes = original.reconsumeTimes + 1;
    if (this.outOfAttempts(reconsumeTimes, request.maxReconsumeTimes)) {
      await this.deadLetter(group, original, reconsumeTimes);
      return { deadLettered: true };
    }
    const retry = retryTopic(group);
    this.options.topics.ensureSystemTopic(retry, SYSTEM_TOPIC_QUEUE_COUNT);
    const delayMs = request.delayMs ?? this.retryDelayMs(reconsumeTimes);
    await this.options.schedule.schedule([
      { ...failedCopy(original, retry, reconsumeTimes), deliveryTimeMs: clock.now() + delayMs },
    ]);
    return { deadLettered: false };
  }

  /**
   * Writes `message`, out of attempts after `reconsumeTimes` consumptions, to `%DLQ%<group>` (the
   * one dead-letter routine: `sendBack` and the pop service both end here). Rejects as the write
   * door does (a full disk is `BROKER_BUSY`); the caller decides when to try again.
   */
  async deadLetter(group: string, message: MessageView, reconsumeTimes: number): Promise<AppendResult> {
    const dlq = deadLetterTopic(group);
    this.options.topics.ensureSystemTopic(dlq, SYSTEM_TOPIC_QUEUE_COUNT);
    const [stored] = await this.options.writer.write([failedCopy(message, dlq, reconsumeTimes)]);
    this.options.onDeadLetter?.(group);
    return stored!;
  }
}

/**
 * A copy of a message that failed consumption, for a group's retry or dead-letter topic: same
 * body, tag, keys, message group, born time and host, its properties plus where it first came
 * from (`ORIGIN_TOPIC`, `ORIGIN_MSG_ID`, kept from the first copy on), and its new reconsume count.
 */
function failedCopy(m: MessageView, topic: string, reconsumeTimes: number): AppendRequest {
  return {
    topic,
    queueId: 0,
    body: m.body,
    tag: m.tag,
    keys: m.keys,
    properties: {
      ...m.properties,
      [SystemProperty.ORIGIN_TOPIC]: m.properties[SystemProperty.ORIGIN_TOPIC] ?? m.topic,
      [SystemProperty.ORIGIN_MSG_ID]: m.properties[SystemProperty.ORIGIN_MSG_ID] ?? m.msgId,
    },
    messageGroup: m.messageGroup,
    bornTimestampMs: m.bornTimestampMs,
    bornHost: m.bornHost,
    reconsumeTimes,
  };
}
