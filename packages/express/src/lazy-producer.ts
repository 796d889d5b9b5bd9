import type { EventEmitter } from 'node:events';
import type { Request } from 'express';
import { Producer, RocketError, TransactionProducer } from '@rocketnest/core-broker';
import type {
  ApacheOptions,
  DriverProducer,
  LocalTransactionExecutor,
  MessagingDriver,
  ProducerMessage,
  ProducerOptions,
  SendOptions,
  SendResult,
  TransactionChecker,
  TransactionMessage,
  TransactionSendResult,
  Transport,
} from '@rocketnest/core-broker';
import { openDriver, type ConnectionOptions } from '@rocketnest/core-broker/broker';
import {
  messageViewOfDriverMessage as messageViewOf,
  resolveApacheOptions,
  sendResultOfDriverSend as sendResultOf,
} from '@rocketnest/core-broker/internal';

/** Default producer group of the Express integration's own producers. */
export const DEFAULT_EXPRESS_PRODUCER_GROUP = 'rocketnest-express';

/**
 * Where the integration's producer comes from: its own, on one connection option (`transport`,
 * `brokers`, `nameServers` or `apache`), or yours (`producer`). Give exactly one of them.
 */
export interface ProducerSource {
  /** A transport to create (and own) a `Producer` on: started at first use, shut down by `close()`. */
  transport?: Transport;
  /** Standalone brokers (`['host:10911']`): the integration opens its own connection and producer through the driver. */
  brokers?: ConnectionOptions['brokers'];
  /** A RocketNest cluster's name servers: its own connection and producer, through the driver. */
  nameServers?: readonly string[];
  /** TCP options (credentials, TLS, timeouts) of `brokers` or `nameServers`. */
  tcp?: ConnectionOptions['tcp'];
  /**
   * Apache RocketMQ 5 through its proxy (`{ endpoints: 'host:8081', credentials?, namespace? }`):
   * its own Apache driver and producer. Send results carry `msgId` and `topic`; the proxy does not
   * say which queue (`brokerName: ''`, `queueId: -1`, `queueOffset: -1`).
   */
  apache?: ApacheOptions;
  /** Producer group of the owned producer. Default `rocketnest-express`. */
  group?: string;
  /** More options of the owned producer (send timeout, retries…); with `transport` only. */
  producerOptions?: Partial<Omit<ProducerOptions, 'transport' | 'group'>>;
  /** Your own producer instead: you start it and shut it down; `close()` leaves it alone. */
  producer?: Producer;
}

/** What the middleware and the router send through: a `Producer`, or a driver producer adapted. */
export interface Sender {
  send(message: ProducerMessage, options?: SendOptions): Promise<SendResult>;
}

/** The transactional twin of {@link Sender}. */
export interface TransactionSender {
  sendInTransaction(
    message: TransactionMessage,
    executeLocal: LocalTransactionExecutor,
  ): Promise<TransactionSendResult>;
}

const SOURCES = ['transport', 'brokers', 'nameServers', 'apache', 'producer'] as const;

/** The connection option of a source that goes through a driver, or undefined for `transport`/`producer`. */
function driverConnection(source: ProducerSource, owner: string): ConnectionOptions | undefined {
  const given = SOURCES.filter((key) => source?.[key] !== undefined);
  if (given.length !== 1)
    throw new RocketError(
      'INVALID_OPTION',
      `${owner} needs exactly one of options ${SOURCES.join(', ')}; got ${given.length === 0 ? 'none' : given.join(', ')}`,
    );
  if (source.tcp !== undefined && source.brokers === undefined && source.nameServers === undefined)
    throw new RocketError('INVALID_OPTION', `${owner}: option tcp goes with brokers or nameServers`);
  const way = given[0]!;
  if (way === 'transport' || way === 'producer') return undefined;
  if (source.producerOptions !== undefined)
    throw new RocketError(
      'INVALID_OPTION',
      `${owner}: producerOptions tune a Producer on option transport; with ${way} the driver's producer takes none (its retries come from the connection)`,
    );
  if (way === 'apache') {
    resolveApacheOptions(source.apache!); // a bad endpoint or namespace fails here, not at the first request
    return { apache: source.apache! };
  }
  return {
    ...(way === 'brokers' ? { brokers: source.brokers! } : { nameServers: source.nameServers! }),
    ...(source.tcp !== undefined ? { tcp: source.tcp } : {}),
  };
}

/**
 * A producer on a driver the integration opens itself (the connection options but `transport`):
 * `start()` opens the driver and its producer, `shutdown()` closes both.
 */
class DriverClient implements Sender, TransactionSender {
  private driver: MessagingDriver | undefined;
  private producer: DriverProducer | undefined;

  constructor(
    private readonly connection: ConnectionOptions,
    private readonly group: string,
    private readonly checker?: TransactionChecker,
  ) {}

  async start(): Promise<void> {
    const driver = await openDriver(this.connection);
    try {
      const checker = this.checker;
      this.producer = await driver.createProducer({
        group: this.group,
        ...(checker
          ? {
              checker: ({ message, transactionId }) =>
                checker({
                  message: messageViewOf(message),
                  transactionId,
                  checkTimes: 0,
                  brokerName: '',
                  producerGroup: this.group,
                }),
            }
          : {}),
      });
    } catch (error) {
      await driver.close();
      throw error;
    }
    this.driver = driver;
  }

  async shutdown(): Promise<void> {
    await this.producer?.close();
    await this.driver?.close();
  }

  async send(message: ProducerMessage, options?: SendOptions): Promise<SendResult> {
    return sendResultOf(await this.producer!.send(message, options));
  }

  async sendInTransaction(
    message: TransactionMessage,
    executeLocal: LocalTransactionExecutor,
  ): Promise<TransactionSendResult> {
    const body = typeof message.body === 'string' ? Buffer.from(message.body) : message.body;
    const result = await this.producer!.sendInTransaction(message, (sent) =>
      executeLocal({ ...message, body }, { ...sendResultOf(sent), transactionId: sent.transactionId! }),
    );
    return { ...sendResultOf(result), transactionId: result.transactionId!, resolution: result.resolution };
  }
}

/** A client made on first use and started once; concurrent first uses share the start. */
class LazyClient<T extends { start(): Promise<void>; shutdown(): Promise<void> }> {
  private starting: Promise<T> | undefined;
  private closed = false;

  constructor(
    private readonly owner: string,
    private readonly make: () => T,
  ) {}

  get(): Promise<T> {
    if (this.closed) return Promise.reject(new RocketError('CLOSED', `${this.owner} is closed`));
    this.starting ??= (async () => {
      const client = this.make();
      try {
        await client.start();
      } catch (error) {
        this.starting = undefined;
        throw error;
      }
      return client;
    })();
    return this.starting;
  }

  /** Shuts the client down (after its in-flight sends). Idempotent. */
  async close(): Promise<void> {
    this.closed = true;
    await this.reset();
  }

  /** Shuts the client down; unless closed, the next `get()` starts a new one. */
  async reset(): Promise<void> {
    const starting = this.starting;
    this.starting = undefined;
    await (await starting?.catch(() => undefined))?.shutdown();
  }
}

/** The integration's producer: yours as given, or its own, created and started on first use. */
export class LazyProducer {
  private readonly own: LazyClient<Producer | DriverClient> | undefined;
  private closed = false;

  constructor(
    private readonly source: ProducerSource,
    private readonly owner: string,
  ) {
    const connection = driverConnection(source, owner);
    const group = source.group ?? DEFAULT_EXPRESS_PRODUCER_GROUP;
    if (connection) {
      this.own = new LazyClient(owner, () => new DriverClient(connection, group));
    } else if (!source.producer) {
      this.own = new LazyClient(
        owner,
        () =>
          new Producer({
            ...source.producerOptions,
            group,
            transport: source.transport as Transport,
          }),
      );
    }
  }

  get(): Promise<Sender> {
    if (this.closed) return Promise.reject(new RocketError('CLOSED', `${this.owner} is closed`));
    return this.own ? this.own.get() : Promise.resolve(this.source.producer!);
  }

  /** Shuts the owned producer down (after its in-flight sends); yours is left alone. Idempotent. */
  async close(): Promise<void> {
    this.closed = true;
    await this.own?.close();
  }

  /** Shuts the owned producer down; unless closed, the next `get()` starts a new one. */
  reset(): Promise<void> {
    return this.own?.reset() ?? Promise.resolve();
  }
}

/**
 * The transactional twin of {@link LazyProducer}, on the same connection option (not on a
 * `producer` of yours); needs a checker for the broker's check-backs.
 */
export class LazyTransactionProducer {
  private readonly own: LazyClient<TransactionProducer | DriverClient> | undefined;

  constructor(
    source: ProducerSource,
    group: string,
    private readonly checker: TransactionChecker | undefined,
    private readonly owner: string,
  ) {
    const connection = driverConnection(source, owner);
    if (connection) {
      this.own = new LazyClient(owner, () => new DriverClient(connection, group, checker));
    } else if (source.transport) {
      const transport = source.transport;
      this.own = new LazyClient(
        owner,
        () => new TransactionProducer({ group, transport, checker: checker! }),
      );
    }
  }

  get(): Promise<TransactionSender> {
    if (!this.own)
      return Promise.reject(
        new RocketError(
          'INVALID_OPTION',
          `${this.owner}: sendInTransaction needs a connection option (transport, brokers, nameServers or apache), not producer`,
        ),
      );
    if (!this.checker)
      return Promise.reject(
        new RocketError(
          'INVALID_OPTION',
          `${this.owner}: sendInTransaction needs option transactionChecker (answers the broker's check-backs)`,
        ),
      );
    return this.own.get();
  }

  async close(): Promise<void> {
    await this.own?.close();
  }

  /** Shuts the owned producer down; unless closed, the next `get()` starts a new one. */
  async reset(): Promise<void> {
    await this.own?.reset();
  }
}

/**
 * The HTTP servers that served a request and have not closed yet; when the last one emits
 * `close` (after `server.close()`), `onAllClosed` runs. Express does not tell a middleware about
 * its server, so the server is found through the request's socket.
 */
export class ServerTracker {
  private readonly servers = new Set<EventEmitter>();

  constructor(private readonly onAllClosed: () => void) {}

  seen(req: Request): void {
    const server = (req.socket as { server?: EventEmitter } | undefined)?.server;
    if (!server || this.servers.has(server)) return;
    this.servers.add(server);
    server.once('close', () => {
      this.servers.delete(server);
      if (this.servers.size === 0) this.onAllClosed();
    });
  }
}
