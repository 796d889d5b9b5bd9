import {
  RocketError,
  systemClock,
  type ApacheDriver,
  type Clock,
  type Transport,
} from '@rocketnest/core-broker';
import {
  openConnection,
  type Broker,
  type Connection,
  type ConnectionOptions,
  type EmbeddedBrokerOptions,
} from '@rocketnest/core-broker/broker';
import { DEFAULT_REPLY_TOPIC } from './rocket.constants';

/**
 * A broker started in this process and closed with the connection (dev, tests, single-process
 * apps): core-broker's `EmbeddedBrokerOptions`. The reply topic is always created too.
 */
export type RocketEmbeddedOptions = EmbeddedBrokerOptions;

/**
 * Where the clients of `RocketServer`, `RocketClient` and `RocketModule` reach brokers: core-broker's
 * `ConnectionOptions` — exactly one of `transport`, `nameServers`, `brokers` and `embedded`, and the
 * `clock` of every client made on the connection.
 */
export type RocketConnectionOptions = ConnectionOptions;

/**
 * An open connection (core-broker's `openConnection`), as the Nest integration injects it: the
 * transport the clients use, and what the connection owns (a `TcpTransport` it made, an embedded
 * broker and its store), closed by {@link RocketConnection.close}.
 */
export class RocketConnection {
  private constructor(
    private readonly connection: Connection | undefined,
    /** With the `apache` option: the Apache RocketMQ 5 driver, and no queue-level transport. */
    readonly driver?: ApacheDriver,
  ) {}

  /** A connection to Apache RocketMQ through its driver (`RocketModule.forRoot({ apache })`). */
  static forDriver(driver: ApacheDriver): RocketConnection {
    return new RocketConnection(undefined, driver);
  }

  /**
   * The transport every client of this connection uses. An Apache connection has none (its gRPC
   * API is message-level): what needs one fails with `UNSUPPORTED` naming what runs there.
   */
  get transport(): Transport {
    if (!this.connection) {
      throw new RocketError(
        'UNSUPPORTED',
        'this RocketConnection is to Apache RocketMQ (the apache option), which has no queue-level transport: RocketServer and RocketClient take { apache } themselves, and RocketOutboxModule and RocketPushModule work through its driver (docs/drivers.md)',
      );
    }
    return this.connection.transport;
  }

  /** The embedded broker, when the connection started one. */
  get broker(): Broker | undefined {
    return this.connection?.broker;
  }

  /** The clock every client of this connection uses. */
  get clock(): Clock {
    return this.connection?.clock ?? systemClock;
  }

  /**
   * Opens a connection. `replyTopic` is created on an embedded broker (default `RocketNestReply`).
   * Rejects `INVALID_OPTION` unless exactly one way to connect is given.
   */
  static async open(
    options: RocketConnectionOptions,
    replyTopic: string = DEFAULT_REPLY_TOPIC,
  ): Promise<RocketConnection> {
    const embedded = options?.embedded;
    const withReply: ConnectionOptions = embedded
      ? { ...options, embedded: { ...embedded, topics: [replyTopic, ...(embedded.topics ?? [])] } }
      : options;
    return new RocketConnection(await openConnection(withReply));
  }

  /** Closes what the connection owns, in order; a transport handed in is left open. Idempotent. */
  close(): Promise<void> {
    return this.connection ? this.connection.close() : this.driver!.close();
  }
}
