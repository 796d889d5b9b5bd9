import type { RocketMetrics } from './rocket-metrics';
import type { OnApplicationShutdown } from '@nestjs/common';
import {
  ApacheDriver,
  Producer,
  RocketError,
  TransactionProducer,
  type DriverProducer,
  type ProducerMessage,
  type SendCallback,
  type SendOptions,
  type SendResult,
  type TransactionSendResult,
  type MessageInput,
  type ProducerOptions,
  type TransactionCheckRequest,
  type TransactionSent,
} from '@rocketnest/core-broker';
import { sendResultOfDriverSend } from '@rocketnest/core-broker/internal';
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

/** What `RocketTemplate` sends through: a core-broker `Producer`, or the Apache driver's producer adapted. */
export type TemplateProducer = Pick<Producer, 'send' | 'sendAsync' | 'sendOneway' | 'sendBatch' | 'shutdown'>;

interface TransactionEntry {
  producer: Pick<TransactionProducer, 'sendInTransaction' | 'shutdown'>;
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
    readonly producer: TemplateProducer,
    readonly client: RocketClient,
  ) {}

  static async open(options: RocketModuleOptions): Promise<RocketRuntime> {
    const replyTopic = options.replyTopic ?? DEFAULT_REPLY_TOPIC;
    if (options.apache !== undefined) return RocketRuntime.openOnApache(options, replyTopic);
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

  /**
   * `RocketModule.forRoot({ apache })`: `RocketTemplate` sends through the Apache driver's
   * producer, the module's `RocketClient` gets the same `apache` option, and transaction listeners
   * get driver producers whose checks arrive over Telemetry.
   */
  private static async openOnApache(
    options: RocketModuleOptions,
    replyTopic: string,
  ): Promise<RocketRuntime> {
    const driver = new ApacheDriver(options.apache!);
    const group = options.producerGroup ?? DEFAULT_PRODUCER_GROUP;
    let producer: DriverProducer;
    try {
      producer = await driver.createProducer({ group });
    } catch (error) {
      await driver.close();
      throw error;
    }
    const client = new RocketClient({
      apache: options.apache!,
      producerGroup: group,
      replyTopic,
      ...(options.replyTimeoutMs !== undefined ? { replyTimeoutMs: options.replyTimeoutMs } : {}),
    });
    return new RocketRuntime(RocketConnection.forDriver(driver), templateProducer(producer), client);
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
    const driver = this.connection.driver;
    if (driver) {
      const producer = await driver.createProducer({
        group: options.producerGroup,
        ...(options.topics ? { topics: options.topics } : {}),
        checker: ({ message, transactionId }) =>
          listener.checkLocalTransaction({
            topic: message.topic,
            tag: message.tag,
            keys: message.keys,
            properties: message.properties,
            body: message.body,
            payload: parseOrRaw(message.body),
            transactionId,
            checkTimes: 0,
          }),
      });
      this.transactions.set(options.producerGroup, { producer: transactionProducer(producer), listener });
      return;
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

/**
 * The Apache driver's producer as `RocketTemplate` uses a `Producer`. Apache's proxy picks the queue
 * and does not say which: results carry `brokerName: ''`, `queueId: -1`, `queueOffset: -1`.
 */
function templateProducer(producer: DriverProducer): TemplateProducer {
  const send = async (message: ProducerMessage, options?: SendOptions): Promise<SendResult> => {
    // Apache's proxy answers a send OK only once its flush and replication policy is met
    return sendResultOfDriverSend(await producer.send(message, options));
  };
  return {
    send,
    sendAsync: ((message: ProducerMessage, a?: unknown, b?: unknown) => {
      const options = typeof a === 'object' && a !== null ? (a as SendOptions) : undefined;
      const callback = (typeof a === 'function' ? a : b) as SendCallback | undefined;
      const sending = send(message, options);
      if (callback)
        sending.then(
          (result) => callback(undefined, result),
          (error: Error) => callback(error),
        );
      return sending;
    }) as Producer['sendAsync'],
    sendOneway: (message, options) => void send(message, options).catch(() => undefined),
    sendBatch: async (messages, options) => {
      const results: SendResult[] = [];
      for (const message of messages) results.push(await send(message, options));
      return results;
    },
    shutdown: () => producer.close(),
  };
}

/** The Apache driver's transactional producer as `RocketTemplate.sendInTransaction` uses a `TransactionProducer`. */
function transactionProducer(
  producer: DriverProducer,
): Pick<TransactionProducer, 'sendInTransaction' | 'shutdown'> {
  return {
    sendInTransaction: async (message, executeLocal): Promise<TransactionSendResult> => {
      const input: MessageInput = {
        ...message,
        body: typeof message.body === 'string' ? Buffer.from(message.body) : message.body,
      };
      const result = await producer.sendInTransaction(message, (sent) =>
        executeLocal(input, {
          msgId: sent.msgId,
          transactionId: sent.transactionId!,
          topic: sent.topic,
          brokerName: '',
          queueId: -1,
          queueOffset: -1,
        }),
      );
      return {
        msgId: result.msgId,
        transactionId: result.transactionId!,
        topic: result.topic,
        brokerName: '',
        queueId: -1,
        queueOffset: -1,
        resolution: result.resolution,
      };
    },
    shutdown: () => producer.close(),
  };
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
