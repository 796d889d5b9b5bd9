import type { MessageView } from '../message/message';
import type { MessageQueue } from './allocation';

/** The listener side of the push consumer: what a listener gets, answers, and the events it can watch. */

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
  /**
   * Move the failed messages to the group's dead-letter queue now, without retries: for failures
   * that can never succeed, such as a payload that does not validate. (RocketMQ
   * `delayLevelWhenNextConsume = -1`)
   */
  deadLetter?: boolean;
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
