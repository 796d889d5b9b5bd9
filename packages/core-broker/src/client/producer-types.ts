import type { MessageInput } from '../message/message';
import type { SendStatus } from '../message/protocol';

/** What a producer sends and answers, and the events it emits. */

/** A message to send: a {@link MessageInput} whose body may also be a string (sent as UTF-8). */
export interface ProducerMessage extends Omit<MessageInput, 'body'> {
  body: Uint8Array | string;
  /** Deliver this long after the send instead of at once, in ms (exclusive with `deliveryTimeMs`). */
  delayMs?: number;
}

/** Per-send overrides of the message's own fields. */
export interface SendOptions {
  tag?: string;
  keys?: readonly string[];
  properties?: Readonly<Record<string, string>>;
  /** FIFO group: the queue is chosen by its hash, and retries stay on that queue. */
  messageGroup?: string;
  /** Epoch ms before which the message is not delivered. */
  deliveryTimeMs?: number;
  /** Deliver this long after the send, in ms. */
  delayMs?: number;
}

/** Where a sent message was stored (RocketMQ `SendResult`). */
export interface SendResult {
  msgId: string;
  topic: string;
  brokerName: string;
  queueId: number;
  queueOffset: number;
  /**
   * `SEND_OK`, or what a `SYNC_MASTER` could not confirm: `FLUSH_SLAVE_TIMEOUT` (no slave held it
   * in time) or `SLAVE_NOT_AVAILABLE` (no slave to copy it). Stored on the master either way.
   * (RocketMQ `SendResult.sendStatus`)
   */
  status: SendStatus;
}

/**
 * What a subclass varies in the machinery it shares with {@link Producer}; not a user option.
 */
export interface ProducerKind {
  /** Names the client in errors ("producer"). */
  name: string;
  /** Whether `sendTimeoutMs` bounds each send, retries included. Default true; false waits on the broker. */
  boundedSends?: boolean;
}

/** Node-style callback of {@link Producer.sendAsync}. */
export type SendCallback = (error: Error | undefined, result?: SendResult) => void;

/** Instrumentation events of a producer. */
export interface ProducerEvents {
  /** A send (one message, a batch, or single-message sends coalesced into one request) was stored. */
  'producer.send': {
    topic: string;
    brokerName: string;
    queueId: number;
    messageCount: number;
    attempts: number;
    /** From the first attempt to the broker's answer, retries included, ms (the producer's clock). */
    elapsedMs: number;
  };
  /** A send failed for good (after its retries; one-way sends have none). */
  'producer.send.failed': {
    topic: string;
    attempts: number;
    oneway: boolean;
    error: unknown;
    elapsedMs: number;
  };
  /** A `sendAsync` callback threw; the producer carries on. */
  'producer.callback.error': { error: unknown };
}
