import type { Clock } from '../common/clock';
import type { PullResponse, Subscription } from '../message/protocol';
import type { MessageQueue } from './allocation';
import { matchesAll } from './subscription';
import type { Transport } from './transport';

/**
 * The one consumer read path: how every offset-driven reader (the push consumer's pull loop, the
 * pull consumer's `poll()`, the WebSocket push subscription) reads a queue from a given offset.
 * It sends the pull (with the filter only when the subscription filters anything), and says what
 * the answer means for the reader's position: the messages, the next offset, whether an illegal
 * offset fell before the queue (retention removed it) or past its end, and how long to pause
 * before the next read when the broker answered "nothing new" at once although it was asked to
 * hold the pull. What a reader does with messages, and with a failed pull, is its own business.
 */

/**
 * Pause when a broker answers a long poll at once with nothing (it could not hold it: its
 * long-poll table is full, or it is closing), so readers do not spin.
 * (RocketMQ `shortPollingTimeMills`, 1 s)
 */
export const SHORT_POLL_MS = 1000;

export interface QueueReadRequest {
  consumerGroup: string;
  queue: MessageQueue;
  /** The queue offset to read from. */
  offset: number;
  /** Most messages to return. */
  maxCount: number;
  /** The reader's subscription; `undefined` or `*` reads every message (no filter on the wire). */
  subscription: Subscription | undefined;
  /** How long the broker may hold the pull when nothing is there yet (long polling), ms; 0 polls. */
  suspendTimeoutMs: number;
}

export interface QueueRead extends PullResponse {
  /** The offset that was read from. */
  offset: number;
  /** `OFFSET_ILLEGAL` only: the offset lies before the queue's first one (retention removed it), not past its end. */
  expired: boolean;
  /**
   * How long to wait before reading this queue again: {@link SHORT_POLL_MS} when the broker
   * answered `NO_NEW_MESSAGE` sooner than it was asked to wait (it could not hold the pull), else 0.
   * A read that asked for no wait (`suspendTimeoutMs` 0) gets 0: the reader chose its own pace.
   */
  pauseMs: number;
}

/** Reads `request.queue` from `request.offset`. Rejects with the transport's error when the pull fails. */
export async function readQueue(
  transport: Transport,
  clock: Clock,
  request: QueueReadRequest,
): Promise<QueueRead> {
  const { queue, offset, suspendTimeoutMs } = request;
  const startedMs = clock.now();
  const response = await transport.pull(queue.brokerName, {
    consumerGroup: request.consumerGroup,
    topic: queue.topic,
    queueId: queue.queueId,
    queueOffset: offset,
    maxCount: request.maxCount,
    subscription: matchesAll(request.subscription) ? undefined : request.subscription,
    suspendTimeoutMs,
  });
  const waitedMs = clock.now() - startedMs;
  const notHeld =
    response.status === 'NO_NEW_MESSAGE' &&
    response.nextOffset === offset &&
    waitedMs < Math.min(suspendTimeoutMs, SHORT_POLL_MS);
  return {
    ...response,
    offset,
    expired: response.status === 'OFFSET_ILLEGAL' && offset < response.minOffset,
    pauseMs: notHeld ? SHORT_POLL_MS : 0,
  };
}
