import type { ProducerMessage, SendOptions } from '../client/producer-types';
import type { TransactionResolution } from '../message/protocol';

/**
 * THE DRIVER CONTRACT: what the integrations (Nest server and client, Express middleware, outbox
 * relay, push channel, test kit) need from "a connection to some brokers", written down once.
 * docs/drivers.md explains it with the feature matrix per target.
 *
 * Why at the producer/consumer level, not at the `Transport` level: a `Transport`
 * (`client/transport.ts`) is the broker's operation table — queue-level calls (pull from an offset,
 * commit offsets, lock queues, rebalance by `consumerIds`) on which RocketNest's own clients build
 * push consumption. Apache RocketMQ 5's gRPC API has none of those: it is message-level (the proxy
 * picks the queue on send and on `ReceiveMessage`; consumption is receive → ack, or change the
 * invisible duration; the server keeps the group's position). Mapping it under the `Transport`
 * would leave most of the table unimplementable and would hide, behind queue-level calls, a proxy
 * that ignores queue ids. At this level every target implements every call, with the semantics
 * the integrations rely on:
 *
 * - **send**: normal, FIFO (`messageGroup`: order kept per group), delayed (`delayMs` /
 *   `deliveryTimeMs`), and transactional (a half message, the local transaction, commit/rollback;
 *   unresolved ones answered by the producer's `checker` when the broker checks back);
 * - **subscribe**: one topic per subscription, a tag expression (`'a || b'`, `'*'`) or an SQL92
 *   filter (`{ sql }`), a handler per message; the handler resolving acks the message, throwing
 *   redelivers it after a backoff, and once it failed `maxAttempts` deliveries the message goes to
 *   the group's dead-letter queue (`%DLQ%<group>`). FIFO subscriptions see a message group's
 *   messages one at a time, in order; a failed one blocks its group until it succeeds or is
 *   dead-lettered. Delivery is at least once everywhere;
 * - **close**: stops receiving, waits for running handlers, tells the brokers (unregister /
 *   NotifyClientTermination), and leaves no timer, socket or stream open.
 *
 * What a target cannot do is refused at bootstrap with `RocketError('UNSUPPORTED')`, never
 * degraded silently (Apache: broadcasting, a FIFO subscription on a group that is not orderly).
 */
export interface MessagingDriver {
  /** Which kind of target this driver talks to, for messages and feature checks. */
  readonly target: DriverTarget;
  /** A started producer. Rejects when a topic does not exist or the target refuses the producer. */
  createProducer(options: DriverProducerOptions): Promise<DriverProducer>;
  /** A started subscription: messages flow to `handler` until it is closed. */
  subscribe(options: DriverSubscriptionOptions): Promise<DriverSubscription>;
  /** Closes every producer and subscription made by this driver, then the connection. Idempotent. */
  close(): Promise<void>;
}

/** `rocketnest`: embedded or over TCP (RocketNest's own clients). `apache`: RocketMQ 5 gRPC to a proxy. */
export type DriverTarget = 'rocketnest' | 'apache';

export interface DriverProducerOptions {
  /** Producer group (RocketMQ `producerGroup`; Apache's gRPC proxy uses the topic instead). */
  group: string;
  /** Topics sent to, routed at start; transaction checks of these topics reach this producer. */
  topics?: readonly string[];
  /** Answers the broker's checks of unresolved transactions; needed for `sendInTransaction`. */
  checker?: DriverTransactionChecker;
}

/** A transaction check: the half message and its id; the answer ends the transaction (or not: `UNKNOWN`). */
export type DriverTransactionChecker = (check: {
  message: DriverMessage;
  transactionId: string;
}) => TransactionResolution | Promise<TransactionResolution>;

export interface DriverSendResult {
  msgId: string;
  topic: string;
  /** Present for transactional sends. */
  transactionId?: string;
}

export interface DriverProducer {
  /** Sends one message; resolves once the broker stored it (an acknowledged send is never lost). */
  send(message: ProducerMessage, options?: SendOptions): Promise<DriverSendResult>;
  /**
   * Stores `message` as a half message, runs `executeLocal`, and ends the transaction by its
   * answer (a throw counts as `UNKNOWN`: the broker checks back with the producer's checker).
   */
  sendInTransaction(
    message: ProducerMessage,
    executeLocal: (sent: DriverSendResult) => TransactionResolution | Promise<TransactionResolution>,
  ): Promise<DriverSendResult & { resolution: TransactionResolution }>;
  close(): Promise<void>;
}

/** A delivered message, as every target hands it to a handler. */
export interface DriverMessage {
  msgId: string;
  /** The topic it was sent to (also for retried deliveries). */
  topic: string;
  body: Buffer;
  tag: string | undefined;
  keys: readonly string[];
  properties: Readonly<Record<string, string>>;
  messageGroup: string | undefined;
  /** 1 on the first delivery. */
  deliveryAttempt: number;
  bornTimestampMs: number;
}

export interface DriverSubscriptionOptions {
  /** Consumer group. (RocketMQ `consumerGroup`) */
  group: string;
  topic: string;
  /** Tag expression (`'*'`, `'a || b'`) or `{ sql }` (SQL92 on properties). Default `'*'`. */
  filter?: string | { sql: string };
  /** Consume message groups in order, one message of a group at a time. */
  fifo?: boolean;
  /** Deliveries before a failing message is dead-lettered. Default 17 (RocketMQ: 16 retries). */
  maxAttempts?: number;
  /** Redelivery delay after a failed attempt; default: the target's backoff (Apache: from its Settings). */
  retryDelayMs?: number;
  /** Handlers running at once. Default 8 (1 per FIFO message group). */
  concurrency?: number;
  /**
   * Resolves: ack. Throws: redeliver after the backoff, or dead-letter after `maxAttempts`.
   * Resolving with a {@link DriverDecision} settles the message otherwise without a throw.
   */
  handler: (message: DriverMessage) => void | DriverDecision | Promise<void | DriverDecision>;
  /**
   * Told of failures the subscription survives (receive, ack, handler errors; on Apache also a
   * failed renewal of a running handler's invisible time).
   */
  onError?: (
    error: unknown,
    stage: 'receive' | 'ack' | 'handler' | 'retry' | 'dead-letter' | 'renew',
  ) => void;
  /** Broadcasting is not part of the contract's portable core: `UNSUPPORTED` on Apache. */
  messageModel?: 'CLUSTERING' | 'BROADCASTING';
}

/**
 * What a handler may answer instead of throwing: redeliver (after `afterMs`, default the
 * backoff; still counted against `maxAttempts`), or dead-letter now without retries (a payload
 * that can never succeed).
 */
export type DriverDecision = { retry: true; afterMs?: number } | { deadLetter: true };

export interface DriverSubscription {
  /** Stops receiving, waits for running handlers, and releases the group membership. Idempotent. */
  close(): Promise<void>;
}

/** Delivery attempts before dead-lettering, as RocketMQ's default `maxReconsumeTimes` (16) + 1. */
export const DEFAULT_DRIVER_MAX_ATTEMPTS = 17;
/** Handlers running at once per subscription. (RocketMQ `consumeThreadMin`-like bound, smaller for Node) */
export const DEFAULT_DRIVER_CONCURRENCY = 8;
