import * as path from 'node:path';
import { Broker } from '../broker/broker';
import type { BrokerOptions } from '../broker/broker-options';
import type { TopicInput } from '../broker/topic-registry';
import type { Clock } from '../common/clock';
import { systemClock } from '../common/clock';
import { RocketError } from '../common/errors';
import { InProcessTransport } from '../client/in-process-transport';
import { TcpTransport, type TcpTransportOptions } from '../client/tcp-transport';
import type { Transport } from '../client/transport';
import { FileStore } from '../store/file-store';
import { MemoryStore } from '../store/memory-store';
import type { MessageStore } from '../store/message-store';
import type { MessagingDriver } from '../driver/contract';
import { ApacheDriver } from '../driver/apache/apache-driver';
import type { ApacheOptions } from '../driver/apache/apache-options';
import { RocketNestDriver } from '../driver/rocketnest-driver';

/**
 * Opening a connection: the one place that turns "where are the brokers" into a `Transport`
 * for the clients — one handed in, TCP to name servers or to brokers by address, or a broker
 * started in this process. It sits above both the clients and the broker (its own layer,
 * `connection/`): it can start an embedded broker, so it belongs with the broker's public entry,
 * not with the remote clients'.
 */

/** A broker started in this process and closed with the connection (dev, tests, single-process apps). */
export interface EmbeddedBrokerOptions {
  /** Data directory of a durable `FileStore` (topic configs in `<dir>/config`). Default: none, a `MemoryStore`. */
  dir?: string;
  /** Topics created at start when absent (a name gets the broker's default queue count). */
  topics?: ReadonlyArray<string | TopicInput>;
  /** Broker options (retry delays, transaction check timing…); `store` and `configDir` are set here. */
  broker?: Omit<BrokerOptions, 'store' | 'configDir'>;
}

/** Where clients reach brokers. Exactly one of `transport`, `nameServers`, `brokers`, `embedded` and `apache`. */
export interface ConnectionOptions {
  /** Any `Transport`, e.g. `new InProcessTransport(broker)`. Not closed by the connection: whoever creates a transport closes it. */
  transport?: Transport;
  /** A cluster: name-server addresses (`host:port`). (RocketMQ `namesrvAddr`) */
  nameServers?: readonly string[];
  /** A standalone broker (or several) without name servers: addresses (`['127.0.0.1:10911']`), whose names are asked of the brokers, or addresses by name (`{ 'broker-a': 'host:port' }`). */
  brokers?: Record<string, string> | readonly string[];
  /** Options of the `TcpTransport` made for `nameServers` or `brokers`: credentials, TLS, timeouts. */
  tcp?: Omit<TcpTransportOptions, 'nameServers' | 'brokers'>;
  /** Start a broker in this process, owned and closed by the connection. */
  embedded?: EmbeddedBrokerOptions;
  /**
   * An Apache RocketMQ 5 cluster (or any RocketMQ 5 gRPC endpoint) through its proxy. Only
   * {@link openDriver} accepts it: Apache's gRPC API is message-level, so RocketNest's queue-level
   * clients (`PushConsumer`, `PullConsumer`) cannot run on it (docs/drivers.md).
   */
  apache?: ApacheOptions;
  /**
   * The clock of every client made on this connection and of an embedded broker. Default: the
   * system clock. Tests give a virtual one, so retries, delays and timeouts run when they move time.
   */
  clock?: Clock;
}

/** An open connection: the transport clients use, and what the connection owns. */
export interface Connection {
  /** The transport every client of this connection uses. */
  readonly transport: Transport;
  /** The embedded broker, when the connection started one. */
  readonly broker: Broker | undefined;
  /** The clock every client of this connection uses. */
  readonly clock: Clock;
  /** Closes what the connection owns (a `TcpTransport` it made; an embedded broker, then its store), in order. Idempotent. */
  close(): Promise<void>;
}

const WAYS = ['transport', 'nameServers', 'brokers', 'embedded', 'apache'] as const;

function checkOneWay(options: ConnectionOptions): void {
  const given = WAYS.filter((key) => options?.[key] !== undefined);
  if (given.length !== 1) {
    throw new RocketError(
      'INVALID_OPTION',
      `RocketNest connection options need exactly one of ${WAYS.join(', ')}; got ${
        given.length === 0 ? 'none' : given.join(', ')
      }`,
    );
  }
}

/**
 * Opens a {@link MessagingDriver} (the contract of `driver/contract.ts`) for any way to connect:
 * `apache` gives the Apache RocketMQ 5 driver, every other way RocketNest's own clients on the
 * connection's transport. Closing the driver closes what the connection owns.
 */
export async function openDriver(options: ConnectionOptions): Promise<MessagingDriver> {
  checkOneWay(options);
  if (options.apache !== undefined) return new ApacheDriver(options.apache);
  const connection = await openConnection(options);
  return new RocketNestDriver(connection.transport, {
    clock: connection.clock,
    onClose: () => connection.close(),
  });
}

/** Opens a connection. Rejects `INVALID_OPTION` unless exactly one way to connect is given. */
export async function openConnection(options: ConnectionOptions): Promise<Connection> {
  checkOneWay(options);
  if (options.apache !== undefined) {
    throw new RocketError(
      'UNSUPPORTED',
      "an apache connection has no queue-level Transport (Apache's gRPC API is message-level): open it with openDriver() or new ApacheDriver(); RocketServer, RocketClient, RocketModule, RocketOutboxModule, OutboxRelay and the Express middleware take the apache option (docs/drivers.md)",
    );
  }
  const clock = options.clock ?? systemClock;
  if (options.transport) return connection(options.transport, undefined, [], clock);
  if (options.embedded) return openEmbedded(options.embedded, options.clock);
  const tcp = new TcpTransport({
    ...options.tcp,
    ...(options.nameServers ? { nameServers: options.nameServers } : {}),
    ...(options.brokers ? { brokers: options.brokers } : {}),
  });
  return connection(tcp, undefined, [() => tcp.close()], clock);
}

async function openEmbedded(options: EmbeddedBrokerOptions, clock: Clock | undefined): Promise<Connection> {
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
    for (const topic of options.topics ?? []) {
      const input: TopicInput = typeof topic === 'string' ? { topic } : topic;
      if (!broker.getTopic(input.topic)) broker.createTopic(input);
    }
  } catch (error) {
    await broker.close();
    await store.close();
    throw error;
  }
  return connection(
    new InProcessTransport(broker),
    broker,
    [() => broker.close(), () => store.close()],
    clock ?? systemClock,
  );
}

function connection(
  transport: Transport,
  broker: Broker | undefined,
  cleanups: ReadonlyArray<() => Promise<void>>,
  clock: Clock,
): Connection {
  let closing: Promise<void> | undefined;
  return Object.freeze({
    transport,
    broker,
    clock,
    close: () =>
      (closing ??= (async () => {
        for (const cleanup of cleanups) await cleanup();
      })()),
  });
}
