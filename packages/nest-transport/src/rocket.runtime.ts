import type { RocketMetrics } from './rocket-metrics';
import type { OnApplicationShutdown } from '@nestjs/common';
import {
  Producer,
  RocketError,
  TransactionProducer,
  type MessageInput,
  type ProducerOptions,
  type TransactionCheckRequest,
  type TransactionSent,
} from '@rocketnest/core-broker';
import { registerModuleBroker } from './embedded-registry';
import { RocketConnection, type RocketConnectionOptions } from './rocket-connection';
import type {
  RocketLocalTransactionListener,
  RocketTransactionListenerOptions,
  RocketTransactionMessage,
} from './rocket-transaction-listener.decorator';
import { RocketClient } from './rocket.client';
import { DEFAULT_PRODUCER_GROUP, DEFAULT_REPLY_TOPIC } from './rocket.constants';

/** Options of `RocketModule.forRoot`: where the brokers are, and the module's producer. */
export interface RocketModuleOptions extends RocketConnectionOptions {
  /** Producer group of `RocketTemplate` and the module's `RocketClient`. Default `RocketNestProducer`. */
  producerGroup?: string;
  /** Producer tuning: `sendTimeoutMs`, `retryTimesWhenSendFailed`… */
  producer?: Omit<ProducerOptions, 'group' | 'transport'>;
  /** Reply topic of the module's `RocketClient` (created on an embedded broker). Default `RocketNestReply`. */
  replyTopic?: string;
  /** How long the module's `RocketClient.send()` waits for an answer, ms. Default 5000. */
  replyTimeoutMs?: number;
  /** Send metrics of `RocketTemplate`'s producer (see {@link RocketMetrics}). Default: none. */
  metrics?: RocketMetrics;
}

interface TransactionEntry {
  producer: TransactionProducer;
  listener: RocketLocalTransactionListener;
}

/**
 * What `RocketModule` runs: the connection, the shared producer of `RocketTemplate`, the module's
 * `RocketClient` and a transaction producer per `@RocketTransactionListener`. Closed at application
 * shutdown — after Nest closed the app's microservices — in dependency order. Internal: inject
 * `RocketTemplate`, `RocketClient` or `RocketConnection` instead.
 */
export class RocketRuntime implements OnApplicationShutdown {
  private readonly transactions = new Map<string, TransactionEntry>();
  private closing: Promise<void> | undefined;
  private unregister: () => void = () => undefined;

  private constructor(
    readonly connection: RocketConnection,
    readonly producer: Producer,
    readonly client: RocketClient,
  ) {}

  static async open(options: RocketModuleOptions): Promise<RocketRuntime> {
    const replyTopic = options.replyTopic ?? DEFAULT_REPLY_TOPIC;
    const connection = await RocketConnection.open(options, replyTopic);
    const group = options.producerGroup ?? DEFAULT_PRODUCER_GROUP;
    const producer = new Producer({
      clock: connection.clock,
      ...options.producer,
      group,
      transport: connection.transport,
    });
    options.metrics?.observeProducer(producer);
    try {
      await producer.start();
    } catch (error) {
      await connection.close();
      throw error;
    }
    const client = new RocketClient({
      transport: connection.transport,
      clock: connection.clock,
      producerGroup: group,
      replyTopic,
      ...(options.producer ? { producer: options.producer } : {}),
      ...(options.replyTimeoutMs !== undefined ? { replyTimeoutMs: options.replyTimeoutMs } : {}),
    });
    const runtime = new RocketRuntime(connection, producer, client);
    if (options.embedded && connection.broker) {
      runtime.unregister = registerModuleBroker(connection, options.embedded);
    }
    return runtime;
  }

  /** Starts the transaction producer of a `@RocketTransactionListener` provider. */
  async addTransactionListener(
    options: RocketTransactionListenerOptions,
    listener: RocketLocalTransactionListener,
    name: string,
  ): Promise<void> {
    if (
      typeof listener?.executeLocalTransaction !== 'function' ||
      typeof listener.checkLocalTransaction !== 'function'
    ) {
      throw new RocketError(
        'INVALID_OPTION',
        `${name} is a @RocketTransactionListener but does not implement executeLocalTransaction(msg, arg) and checkLocalTransaction(msg)`,
      );
    }
    if (this.transactions.has(options.producerGroup)) {
      throw new RocketError(
        'INVALID_OPTION',
        `two @RocketTransactionListener providers for producer group "${options.producerGroup}" (the second is ${name}); one group has one listener`,
      );
    }
    const producer = new TransactionProducer({
      group: options.producerGroup,
      transport: this.connection.transport,
      clock: this.connection.clock,
      checker: (check) => listener.checkLocalTransaction(checkMessage(check)),
      ...(options.topics ? { topics: options.topics } : {}),
    });
    this.transactions.set(options.producerGroup, { producer, listener });
    await producer.start();
  }

  /** The transaction producer and listener of `producerGroup`, or the only one when no group is named. */
  transaction(producerGroup: string | undefined): TransactionEntry {
    if (producerGroup === undefined) {
      if (this.transactions.size === 1) return this.transactions.values().next().value!;
      throw new RocketError(
        'INVALID_ARGUMENT',
        this.transactions.size === 0
          ? 'sendInTransaction needs a provider decorated with @RocketTransactionListener({ producerGroup })'
          : `sendInTransaction: ${this.transactions.size} transaction listeners exist; name options.producerGroup (${[...this.transactions.keys()].join(', ')})`,
      );
    }
    const entry = this.transactions.get(producerGroup);
    if (!entry) {
      throw new RocketError(
        'INVALID_ARGUMENT',
        `no @RocketTransactionListener for producer group "${producerGroup}"`,
      );
    }
    return entry;
  }

  /** Closes the client, the producers and the connection. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.unregister();
      await this.client.close();
      await Promise.all([...this.transactions.values()].map((t) => t.producer.shutdown()));
      await this.producer.shutdown();
      await this.connection.close();
    })();
    return this.closing;
  }

  onApplicationShutdown(): Promise<void> {
    return this.close();
  }
}

/** The message of a local transaction as its listener sees it. */
export function localMessage(input: MessageInput, sent: TransactionSent): RocketTransactionMessage {
  const body = Buffer.from(input.body);
  return {
    topic: input.topic,
    tag: input.tag,
    keys: input.keys ?? [],
    properties: input.properties ?? {},
    body,
    payload: parseOrRaw(body),
    transactionId: sent.transactionId,
  };
}

function checkMessage(check: TransactionCheckRequest): RocketTransactionMessage {
  const m = check.message;
  return {
    topic: m.topic,
    tag: m.tag,
    keys: m.keys,
    properties: m.properties,
    body: m.body,
    payload: parseOrRaw(m.body),
    transactionId: check.transactionId,
    checkTimes: check.checkTimes,
  };
}

function parseOrRaw(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    return body;
  }
}
