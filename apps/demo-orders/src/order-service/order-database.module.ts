import { Inject, Injectable, Module, type DynamicModule, type OnApplicationShutdown } from '@nestjs/common';
import { SqliteInbox, SqliteOutbox, type InboxMessage } from '@rocketnest/core-broker/outbox';
import { RocketConnection, RocketOutboxModule } from '@rocketnest/nest-transport';
import { ORDER_SERVICE_GROUP } from '../contracts';
import { openSqliteDatabase, type SqliteDatabase } from '../sqlite-database';

/** Injection token of the order service's SQLite connection (the application's). */
export const ORDER_DATABASE = Symbol('ORDER_DATABASE');
/** Injection token of the outbox relay's own connection to the same database. */
export const ORDER_RELAY_DATABASE = Symbol('ORDER_RELAY_DATABASE');
/** Producer group of the order service's outbox relay. */
export const ORDER_OUTBOX_PRODUCER_GROUP = 'order-service-outbox';

/** How long the relay's connection waits for the application's write lock before it retries later. */
const RELAY_BUSY_TIMEOUT_MS = 100;

/**
 * The inbox of the order service's consumers (core-broker's `SqliteInbox`, consumer = the group):
 * `once()` runs a handler's writes at most once per message, in one transaction with the message's
 * key. The key is the outbox row id of a message from an outbox, else the id the message was first
 * stored under. A handler that throws rolls its key back with its writes, so the redelivery runs.
 */
@Injectable()
export class OrderInbox {
  private readonly inbox: SqliteInbox;

  constructor(
    @Inject(ORDER_DATABASE) private readonly db: SqliteDatabase,
    connection: RocketConnection,
  ) {
    this.inbox = new SqliteInbox({ consumer: ORDER_SERVICE_GROUP, clock: connection.clock });
    this.inbox.migrate(db);
  }

  /** Runs `work` inside a transaction unless `message` was processed before; undefined for a duplicate. */
  once<T>(message: InboxMessage, work: () => T): T | undefined {
    return this.db.transaction(() => {
      const outcome = this.inbox.process(this.db, message, work);
      return outcome.status === 'processed' ? outcome.result : undefined;
    })();
  }
}

/** Closes the relay's connection, then the application's, after everything else has stopped. */
@Injectable()
class OrderDatabaseCloser implements OnApplicationShutdown {
  constructor(
    @Inject(ORDER_DATABASE) private readonly db: SqliteDatabase,
    @Inject(ORDER_RELAY_DATABASE) private readonly relayDb: SqliteDatabase,
  ) {}

  onApplicationShutdown(): void {
    if (this.relayDb.open) this.relayDb.close();
    if (this.db.open) this.db.close();
  }
}

/**
 * The order service's SQLite database and what lives in it besides orders: the transactional
 * outbox (nest-transport's `RocketOutboxModule`: `RocketOutbox.add()` inside the caller's
 * transaction, and the relay that publishes committed rows through the app's broker connection)
 * and the inbox.
 *
 * The relay gets its own connection to a file database (better-sqlite3 is synchronous; sharing
 * the application's would make it wait for the application's transactions); an in-memory
 * database (tests) has a single connection, which both share.
 */
@Module({})
export class OrderDatabaseModule {
  static forRoot(databaseFile: string): DynamicModule {
    const connections: DynamicModule = {
      module: class OrderDatabaseConnections {},
      providers: [
        { provide: ORDER_DATABASE, useFactory: () => openSqliteDatabase(databaseFile) },
        {
          provide: ORDER_RELAY_DATABASE,
          useFactory: (db: SqliteDatabase) =>
            db.memory ? db : openSqliteDatabase(databaseFile, RELAY_BUSY_TIMEOUT_MS),
          inject: [ORDER_DATABASE],
        },
        OrderDatabaseCloser,
      ],
      exports: [ORDER_DATABASE, ORDER_RELAY_DATABASE],
    };
    const outbox = RocketOutboxModule.forRootAsync({
      imports: [connections],
      inject: [ORDER_RELAY_DATABASE, RocketConnection],
      useFactory: (relayDb: SqliteDatabase, connection: RocketConnection) => {
        const sqliteOutbox = new SqliteOutbox({ db: relayDb, clock: connection.clock });
        // now rather than at bootstrap: listeners may run before the app's bootstrap hooks
        sqliteOutbox.migrate();
        return { outbox: sqliteOutbox, producerGroup: ORDER_OUTBOX_PRODUCER_GROUP };
      },
    });
    return {
      module: OrderDatabaseModule,
      imports: [connections, outbox],
      providers: [OrderInbox],
      exports: [connections, outbox, OrderInbox],
    };
  }
}
