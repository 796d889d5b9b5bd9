import type { Clock } from '../common/clock';
import { RocketError } from '../common/errors';
import { Producer } from '../client/producer';
import type { ProducerMessage, SendOptions } from '../client/producer-types';
import { ConsumeResult, PushConsumer } from '../client/push-consumer';
import { TransactionProducer } from '../client/transaction-producer';
import type { Transport } from '../client/transport';
import type { MessageView } from '../message/message';
import type { TransactionResolution } from '../message/protocol';
import { SystemProperty, userProperties } from '../message/system-properties';
import { DLQ_TOPIC_PREFIX } from '../message/validation';
import {
  DEFAULT_DRIVER_CONCURRENCY,
  DEFAULT_DRIVER_MAX_ATTEMPTS,
  type DriverDecision,
  type DriverMessage,
  type DriverProducer,
  type DriverProducerOptions,
  type DriverSendResult,
  type DriverSubscription,
  type DriverSubscriptionOptions,
  type MessagingDriver,
} from './contract';

/**
 * The {@link MessagingDriver} contract on RocketNest's own clients over any `Transport` (an
 * embedded broker, or TCP to a standalone broker or a cluster): `Producer` /
 * `TransactionProducer` for sends, a `PushConsumer` per subscription (orderly for FIFO, with the
 * broker's retry topic and dead-letter queue after `maxAttempts`).
 */
export class RocketNestDriver implements MessagingDriver {
  readonly target = 'rocketnest' as const;
  private readonly children = new Set<{ close(): Promise<void> }>();
  private closing: Promise<void> | undefined;

  /** `onClose` closes what the driver's connection owns (an embedded broker, a TCP transport). */
  constructor(
    private readonly transport: Transport,
    private readonly options: { clock?: Clock; onClose?: () => Promise<void> } = {},
  ) {}

  async createProducer(options: DriverProducerOptions): Promise<DriverProducer> {
    this.assertOpen();
    const clock = this.options.clock === undefined ? {} : { clock: this.options.clock };
    const checker = options.checker;
    const producer = checker
      ? new TransactionProducer({
          group: options.group,
          transport: this.transport,
          ...clock,
          ...(options.topics ? { topics: options.topics } : {}),
          checker: (check) =>
            checker({ message: driverMessage(check.message), transactionId: check.transactionId }),
        })
      : new Producer({ group: options.group, transport: this.transport, ...clock });
    await producer.start();
    const child: DriverProducer = {
      send: async (message: ProducerMessage, sendOptions?: SendOptions): Promise<DriverSendResult> => {
        const result = await producer.send(message, sendOptions);
        return { msgId: result.msgId, topic: result.topic };
      },
      sendInTransaction: async (message, executeLocal) => {
        if (!(producer instanceof TransactionProducer)) {
          throw new RocketError(
            'INVALID_OPTION',
            'sendInTransaction needs a producer created with a checker (createProducer({ checker }))',
          );
        }
        const result = await producer.sendInTransaction(message, (_input, sent) =>
          executeLocal({ msgId: sent.msgId, topic: sent.topic, transactionId: sent.transactionId }),
        );
        return {
          msgId: result.msgId,
          topic: result.topic,
          transactionId: result.transactionId,
          resolution: result.resolution,
        };
      },
      close: async () => {
        this.children.delete(child);
        await producer.shutdown();
      },
    };
    this.children.add(child);
    return child;
  }

  async subscribe(options: DriverSubscriptionOptions): Promise<DriverSubscription> {
    this.assertOpen();
    if (typeof options.handler !== 'function') {
      throw new RocketError('INVALID_OPTION', 'subscribe needs a handler: (message) => void | Promise<void>');
    }
    const maxAttempts = options.maxAttempts ?? DEFAULT_DRIVER_MAX_ATTEMPTS;
    const consumer = new PushConsumer({
      group: options.group,
      transport: this.transport,
      ...(this.options.clock === undefined ? {} : { clock: this.options.clock }),
      messageModel: options.messageModel ?? 'CLUSTERING',
      // a dead-letter reader wants what was dead-lettered before it came, as Apache's pop gives a
      // new group a young queue from its start; elsewhere a new group starts at the end (RocketMQ's default)
      ...(options.topic.startsWith(DLQ_TOPIC_PREFIX) ? { consumeFromWhere: 'FIRST_OFFSET' as const } : {}),
      consumeConcurrency: options.concurrency ?? DEFAULT_DRIVER_CONCURRENCY,
      maxReconsumeTimes: maxAttempts - 1,
      ...(options.retryDelayMs !== undefined && options.fifo
        ? { suspendCurrentQueueTimeMs: options.retryDelayMs }
        : {}),
    });
    consumer.subscribe(options.topic, options.filter ?? '*');
    consumer.registerMessageListener(
      async (messages, context) => {
        for (const message of messages) {
          let decision: DriverDecision | void;
          try {
            decision = await options.handler(driverMessage(message));
          } catch (error) {
            options.onError?.(error, 'handler');
            if (options.retryDelayMs !== undefined) {
              context.retryDelayMs = options.retryDelayMs;
              context.suspendMs = options.retryDelayMs;
            }
            return ConsumeResult.RECONSUME_LATER;
          }
          if (decision && 'deadLetter' in decision) {
            context.deadLetter = true;
            return ConsumeResult.RECONSUME_LATER;
          }
          if (decision) {
            const delayMs = decision.afterMs ?? options.retryDelayMs;
            if (delayMs !== undefined) {
              context.retryDelayMs = delayMs;
              context.suspendMs = delayMs;
            }
            return ConsumeResult.RECONSUME_LATER;
          }
        }
        return ConsumeResult.CONSUME_SUCCESS;
      },
      { orderly: options.fifo === true },
    );
    await consumer.start();
    const child: DriverSubscription = {
      close: async () => {
        this.children.delete(child);
        await consumer.shutdown();
      },
    };
    this.children.add(child);
    return child;
  }

  close(): Promise<void> {
    return (this.closing ??= (async () => {
      await Promise.all([...this.children].map((child) => child.close()));
      await this.options.onClose?.();
    })());
  }

  private assertOpen(): void {
    if (this.closing) throw new RocketError('CLOSED', 'the driver is closed');
  }
}

/**
 * A RocketNest message as the contract hands it out. Its id is the one the send returned, on every
 * copy: RocketNest's own ids name the stored record (retry, dead-letter, delayed and committed
 * copies get new ones), so the first copy's id is read back from the properties the broker keeps.
 */
function driverMessage(view: MessageView): DriverMessage {
  const p = view.properties;
  return {
    msgId: p[SystemProperty.ORIGIN_MSG_ID] ?? p[SystemProperty.TRANSACTION_ID] ?? view.msgId,
    topic: view.topic,
    body: view.body,
    tag: view.tag,
    keys: view.keys,
    properties: userProperties(p),
    messageGroup: view.messageGroup,
    deliveryAttempt: view.reconsumeTimes + 1,
    bornTimestampMs: view.bornTimestampMs,
  };
}

export type { TransactionResolution };
