import {
  Inject,
  Injectable,
  Module,
  type BeforeApplicationShutdown,
  type DynamicModule,
  type InjectionToken,
  type ModuleMetadata,
  type OnApplicationBootstrap,
  type OptionalFactoryDependency,
} from '@nestjs/common';
import { Producer, RocketError, type DriverProducer } from '@rocketnest/core-broker';
import {
  MysqlOutbox,
  OutboxRelay,
  PostgresOutbox,
  SqliteOutbox,
  type InboxMessage,
  type MysqlConnectionLike,
  type OutboxMessage,
  type OutboxPublisher,
  type OutboxRelayOptions,
  type PgClientLike,
  type SqlTransaction,
  type SqliteDatabaseLike,
} from '@rocketnest/core-broker/outbox';
import { RocketConnection } from './rocket-connection';
import type { RocketContext } from './rocket.context';

/** Producer group of the relay's producer when none is given. */
export const DEFAULT_OUTBOX_PRODUCER_GROUP = 'RocketNestOutbox';

export interface RocketOutboxModuleOptions {
  /**
   * The outbox table: a `PostgresOutbox` (pg pool), a `MysqlOutbox` (mysql2 pool, MySQL 8 or
   * MariaDB 10.6+) or a `SqliteOutbox` (the relay's own better-sqlite3 connection).
   */
  outbox: PostgresOutbox | MysqlOutbox | SqliteOutbox;
  /** Run the outbox's idempotent `migrate()` at startup. Default false: migrations stay explicit. */
  migrate?: boolean;
  /** Start the relay with the app (stopped at shutdown). Default true; false in a process that only writes. */
  relay?: boolean;
  /** Producer group of the relay's producer. Default `RocketNestOutbox`. */
  producerGroup?: string;
  /** Relay tuning: batch size, poll interval, max attempts, backoff, retention… */
  relayOptions?: Omit<OutboxRelayOptions, 'outbox' | 'producer' | 'clock' | 'apache' | 'producerGroup'>;
}

/** `RocketOutboxModule.forRootAsync`: options from a factory (e.g. a pool from another provider). */
export interface RocketOutboxModuleAsyncOptions extends Pick<ModuleMetadata, 'imports'> {
  useFactory: (...args: never[]) => RocketOutboxModuleOptions | Promise<RocketOutboxModuleOptions>;
  inject?: Array<InjectionToken | OptionalFactoryDependency>;
}

const ROCKET_OUTBOX_OPTIONS = Symbol('ROCKET_OUTBOX_OPTIONS');

/**
 * Adds messages to the transactional outbox inside the caller's database transaction (the relay
 * publishes them after commit). Inject it where the business change is written.
 */
@Injectable()
export class RocketOutbox implements OnApplicationBootstrap, BeforeApplicationShutdown {
  /** The relay's producer: a `Producer` on the module's transport, or on Apache a driver producer. */
  private producer: { shutdown(): Promise<void> } | undefined;
  private running: OutboxRelay | undefined;

  constructor(
    @Inject(ROCKET_OUTBOX_OPTIONS) private readonly options: RocketOutboxModuleOptions,
    @Inject(RocketConnection) private readonly connection: RocketConnection,
  ) {
    const outbox = options?.outbox;
    if (
      !(outbox instanceof PostgresOutbox) &&
      !(outbox instanceof MysqlOutbox) &&
      !(outbox instanceof SqliteOutbox)
    ) {
      throw new RocketError(
        'INVALID_OPTION',
        'RocketOutboxModule option outbox must be a PostgresOutbox, a MysqlOutbox or a SqliteOutbox',
      );
    }
  }

  /** The outbox itself (counts, parked rows, `requeueParked()`). */
  get outbox(): PostgresOutbox | MysqlOutbox | SqliteOutbox {
    return this.options.outbox;
  }

  /** The running relay, when this app runs one. */
  get relay(): OutboxRelay | undefined {
    return this.running;
  }

  /** SQLite: inserts on the caller's better-sqlite3 connection, which must be inside a transaction; returns the row id. */
  add(db: SqliteDatabaseLike, message: OutboxMessage): string;
  /**
   * PostgreSQL (a `pg` client inside BEGIN … COMMIT), MySQL/MariaDB (a mysql2 connection after
   * `beginTransaction()`) or an ORM transaction adapter; resolves with the row id.
   */
  add(tx: PgClientLike | MysqlConnectionLike | SqlTransaction, message: OutboxMessage): Promise<string>;
  add(
    tx: SqliteDatabaseLike | PgClientLike | MysqlConnectionLike | SqlTransaction,
    message: OutboxMessage,
  ): string | Promise<string> {
    const outbox = this.options.outbox;
    if (outbox instanceof SqliteOutbox) return outbox.add(tx as SqliteDatabaseLike, message);
    if (outbox instanceof MysqlOutbox) return outbox.add(tx as MysqlConnectionLike | SqlTransaction, message);
    return outbox.add(tx as PgClientLike | SqlTransaction, message);
  }

  async onApplicationBootstrap(): Promise<void> {
    if (this.options.migrate) await this.options.outbox.migrate();
    if (this.options.relay === false) return;
    const group = this.options.producerGroup ?? DEFAULT_OUTBOX_PRODUCER_GROUP;
    let producer: OutboxPublisher;
    const driver = this.connection.driver;
    if (driver) {
      // RocketModule.forRoot({ apache }): the relay publishes through the Apache driver's producer
      const onApache: DriverProducer = await driver.createProducer({ group });
      this.producer = { shutdown: () => onApache.close() };
      producer = onApache;
    } else {
      const own = new Producer({ group, transport: this.connection.transport, clock: this.connection.clock });
      await own.start();
      this.producer = own;
      producer = own;
    }
    const relay = new OutboxRelay({
      ...this.options.relayOptions,
      outbox: this.options.outbox,
      producer,
      clock: this.connection.clock,
    });
    await relay.start();
    this.running = relay;
  }

  /** Before the RocketModule connection closes: the relay finishes and marks its batch, then its producer stops. */
  async beforeApplicationShutdown(): Promise<void> {
    await this.running?.close();
    await this.producer?.shutdown();
    this.running = undefined;
    this.producer = undefined;
  }
}

/**
 * The transactional outbox in a Nest app (docs/outbox.md): provides {@link RocketOutbox} to add
 * messages inside database transactions, and runs the relay that publishes committed rows through
 * the app's `RocketModule` connection (started at bootstrap, drained at shutdown). Import
 * `RocketModule` too.
 */
@Module({})
export class RocketOutboxModule {
  static forRoot(options: RocketOutboxModuleOptions): DynamicModule {
    return {
      module: RocketOutboxModule,
      providers: [{ provide: ROCKET_OUTBOX_OPTIONS, useValue: options }, RocketOutbox],
      exports: [RocketOutbox],
    };
  }

  static forRootAsync(options: RocketOutboxModuleAsyncOptions): DynamicModule {
    return {
      module: RocketOutboxModule,
      imports: options.imports ?? [],
      providers: [
        {
          provide: ROCKET_OUTBOX_OPTIONS,
          useFactory: options.useFactory as (...args: unknown[]) => Promise<RocketOutboxModuleOptions>,
          inject: options.inject ?? [],
        },
        RocketOutbox,
      ],
      exports: [RocketOutbox],
    };
  }
}

/**
 * The inbox's view of the message a `@RocketListener` handler is running, for an idempotent
 * handler: `await inbox.process(tx, inboxMessageOf(ctx), (tx) => …)` runs the handler's writes at
 * most once per outbox row (or message id), in the handler's own transaction.
 */
export function inboxMessageOf(ctx: RocketContext): InboxMessage {
  return { msgId: ctx.getMessageId(), keys: ctx.getKeys(), properties: ctx.getProperties() };
}
