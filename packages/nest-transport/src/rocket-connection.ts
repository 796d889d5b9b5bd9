import {
  RocketError,
  TcpTransport,
  systemClock,
  type Clock,
  type TcpTransportOptions,
  type Transport,
} from '@rocketnest/core-broker';
import {
  Broker,
  FileStore,
  InProcessTransport,
  MemoryStore,
  type BrokerOptions,
  type MessageStore,
  type TopicInput,
} from '@rocketnest/core-broker/broker';
import * as path from 'node:path';
import { DEFAULT_REPLY_TOPIC } from './rocket.constants';

/** A broker started in this process and closed with the connection (dev, tests, single-process apps). */
export interface RocketEmbeddedOptions {
  /** Data directory of a durable `FileStore` (topic configs in `<dir>/config`). Default: none, a `MemoryStore`. */
  dir?: string;
  /** Topics created at start when absent (a name gets the broker's default queue count). The reply topic is always created. */
  topics?: ReadonlyArray<string | TopicInput>;
  /** Broker options (retry delays, transaction check timing…); `store` and `configDir` are set here. */
  broker?: Omit<BrokerOptions, 'store' | 'configDir'>;
}

/**
 * Where the clients of `RocketServer`, `RocketClient` and `RocketModule` reach brokers. Exactly one of
 * `transport`, `nameServers`, `brokers` and `embedded`.
 */
export interface RocketConnectionOptions {
  /** Any core-broker `Transport`, e.g. `new InProcessTransport(broker)`. Not closed here: whoever creates a transport closes it. */
  transport?: Transport;
  /** A cluster: name-server addresses (`host:port`). (RocketMQ `namesrvAddr`) */
  nameServers?: readonly string[];
  /** A standalone broker (or several) without name servers: `{ 'broker-a': 'host:port' }`. */
  brokers?: Record<string, string>;
  /** Options of the `TcpTransport` made for `nameServers` or `brokers`: credentials, TLS, timeouts. */
  tcp?: Omit<TcpTransportOptions, 'nameServers' | 'brokers'>;
  /** Start a broker in this process, owned and closed by the connection. */
  embedded?: RocketEmbeddedOptions;
  /**
   * The clock of every client made on this connection (consumers, producers, the reply consumer)
   * and of an embedded broker. Default: the system clock. Tests give a virtual one
   * (`@rocketnest/testing`), so retries, delays and timeouts run when the test moves time.
   */
  clock?: Clock;
}

/**
 * An open connection: the transport the clients use, and what the connection owns (a `TcpTransport`
 * it made, an embedded broker and its store), closed by {@link RocketConnection.close}.
 */
export class RocketConnection {
  private closing: Promise<void> | undefined;
  private readonly cleanups: Array<() => Promise<void>>;

  /** The clock every client of this connection uses. */
  readonly clock: Clock;

  private constructor(
    /** The transport every client of this connection uses. */
    readonly transport: Transport,
    /** The embedded broker, when the connection started one. */
    readonly broker: Broker | undefined,
    cleanups: Array<() => Promise<void>>,
    clock: Clock | undefined,
  ) {
    this.cleanups = cleanups;
    this.clock = clock ?? systemClock;
  }

  /**
   * Opens a connection. `replyTopic` is created on an embedded broker (default `RocketNestReply`).
   * Rejects `INVALID_OPTION` unless exactly one way to connect is given.
   */
  static async open(
    options: RocketConnectionOptions,
    replyTopic: string = DEFAULT_REPLY_TOPIC,
  ): Promise<RocketConnection> {
    const given = (['transport', 'nameServers', 'brokers', 'embedded'] as const).filter(
      (key) => options?.[key] !== undefined,
    );
    if (given.length !== 1) {
      throw new RocketError(
        'INVALID_OPTION',
        `RocketNest connection options need exactly one of transport, nameServers, brokers, embedded; got ${
          given.length === 0 ? 'none' : given.join(', ')
        }`,
      );
    }
    if (options.transport) return new RocketConnection(options.transport, undefined, [], options.clock);
    if (options.embedded) return RocketConnection.embedded(options.embedded, replyTopic, options.clock);
    const tcp = new TcpTransport({
      ...options.tcp,
      ...(options.nameServers ? { nameServers: options.nameServers } : {}),
      ...(options.brokers ? { brokers: options.brokers } : {}),
    });
    return new RocketConnection(tcp, undefined, [() => tcp.close()], options.clock);
  }

  private static async embedded(
    options: RocketEmbeddedOptions,
    replyTopic: string,
    clock: Clock | undefined,
  ): Promise<RocketConnection> {
    const withClock = clock === undefined ? {} : { clock };
    const store: MessageStore =
      options.dir === undefined
        ? await MemoryStore.create(withClock)
        : await FileStore.open({ dir: options.dir, ...withClock });
    let broker: Broker;
    try {
      broker = await Broker.start({
        ...options.broker,
        ...withClock,
        store,
        ...(options.dir === undefined ? {} : { configDir: path.join(options.dir, 'config') }),
      });
    } catch (error) {
      await store.close();
      throw error;
    }
    try {
      for (const topic of [replyTopic, ...(options.topics ?? [])]) {
        const input: TopicInput = typeof topic === 'string' ? { topic } : topic;
        if (!broker.getTopic(input.topic)) broker.createTopic(input);
      }
    } catch (error) {
      await broker.close();
      await store.close();
      throw error;
    }
    return new RocketConnection(
      new InProcessTransport(broker),
      broker,
      [() => broker.close(), () => store.close()],
      clock,
    );
  }

  /** Closes what the connection owns, in order; a transport handed in is left open. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      for (const cleanup of this.cleanups) await cleanup();
    })();
    return this.closing;
  }
}
