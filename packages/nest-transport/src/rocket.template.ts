import { Injectable } from '@nestjs/common';
import {
  RocketError,
  type ProducerMessage,
  type SendOptions,
  type SendResult,
  type TransactionSendResult,
} from '@rocketnest/core-broker';
import { RocketRuntime, localMessage } from './rocket.runtime';
import { encodeBody, parseDestination } from './rocket-serialization';

/** Message options of a template send: tag, keys, properties, message group, delay or delivery time. */
export type RocketSendOptions = SendOptions;

/**
 * Sends from application code (rocketmq-spring's `RocketMQTemplate`). Payloads are sent as JSON
 * (`Buffer`/`Uint8Array` as they are). A destination is a topic, or `topic:tag` as in
 * rocketmq-spring; an explicit `options.tag` wins.
 */
@Injectable()
export class RocketTemplate {
  constructor(private readonly runtime: RocketRuntime) {}

  /** Sends and waits for the broker to store the message. */
  send(destination: string, payload: unknown, options?: RocketSendOptions): Promise<SendResult> {
    return this.runtime.producer.send(this.message(destination, payload, options));
  }

  /** Sends without blocking the caller's flow: the promise settles when the broker answers (RocketMQ `asyncSend`). */
  sendAsync(destination: string, payload: unknown, options?: RocketSendOptions): Promise<SendResult> {
    return this.runtime.producer.sendAsync(this.message(destination, payload, options));
  }

  /** Fire and forget: no answer, no retry (RocketMQ `sendOneWay`). */
  sendOneway(destination: string, payload: unknown, options?: RocketSendOptions): void {
    this.runtime.producer.sendOneway(this.message(destination, payload, options));
  }

  /** Sends with a message group: messages of one group land in one queue, in order (RocketMQ `syncSendOrderly`). */
  sendOrderly(
    destination: string,
    payload: unknown,
    messageGroup: string,
    options?: RocketSendOptions,
  ): Promise<SendResult> {
    return this.send(destination, payload, { ...options, messageGroup });
  }

  /** Delivers `delayMs` after the send (RocketMQ 5 delay at any time). */
  sendDelayed(
    destination: string,
    payload: unknown,
    delayMs: number,
    options?: RocketSendOptions,
  ): Promise<SendResult> {
    return this.send(destination, payload, { ...options, delayMs });
  }

  /** Sends several payloads as one batch to one queue. */
  sendBatch(
    destination: string,
    payloads: readonly unknown[],
    options?: RocketSendOptions,
  ): Promise<SendResult[]> {
    if (!Array.isArray(payloads) || payloads.length === 0) {
      return Promise.reject(
        new RocketError('INVALID_ARGUMENT', 'sendBatch needs a non-empty array of payloads'),
      );
    }
    const messages = payloads.map((payload) => this.message(destination, payload, options));
    return this.runtime.producer.sendBatch(messages);
  }

  /**
   * Sends a transactional message: the half message is stored, then the `@RocketTransactionListener`
   * of `producerGroup` (default: the only one) runs `executeLocalTransaction(message, arg)`, whose
   * answer commits or rolls back; UNKNOWN leaves it to the broker's check-back.
   */
  sendInTransaction(
    destination: string,
    payload: unknown,
    arg?: unknown,
    options?: Omit<RocketSendOptions, 'delayMs' | 'deliveryTimeMs'> & { producerGroup?: string },
  ): Promise<TransactionSendResult> {
    const { producerGroup, ...rest } = options ?? {};
    let entry;
    try {
      entry = this.runtime.transaction(producerGroup);
    } catch (error) {
      return Promise.reject(error);
    }
    const { delayMs: _delay, deliveryTimeMs: _time, ...message } = this.message(destination, payload, rest);
    return entry.producer.sendInTransaction(message, (input, sent) =>
      entry.listener.executeLocalTransaction(localMessage(input, sent), arg),
    );
  }

  private message(
    destination: string,
    payload: unknown,
    options: RocketSendOptions | undefined,
  ): ProducerMessage {
    const { topic, tag } = parseDestination(destination, 'RocketTemplate');
    return { topic, body: encodeBody(payload), ...(tag ? { tag } : {}), ...options };
  }
}
