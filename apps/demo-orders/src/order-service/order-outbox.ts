import {
  Inject,
  Injectable,
  Logger,
  type BeforeApplicationShutdown,
  type OnApplicationBootstrap,
} from '@nestjs/common';
import { OutboxRelay, SqliteInbox, SqliteOutbox, type OutboxMessage } from '@rocketnest/core-broker';
import { RocketConnection, RocketRuntime } from '@rocketnest/nest-transport';
import { ORDER_SERVICE_GROUP } from '../contracts';
import { openSqliteDatabase, type SqliteDatabase } from '../sqlite-database';
import { ORDER_DATABASE } from './order.repository';

/** How long the relay's own connection waits for the application's write lock before it retries later. */
const RELAY_BUSY_TIMEOUT_MS = 100;

/**
 * The order service's transactional outbox and inbox, in its own SQLite database.
 *
 * - `add(message)` writes an outbox row on the service's connection; call it inside the same
 *   `db.transaction()` as the business change, so the message exists if and only if the change
 *   committed. A relay publishes the rows through the app's `RocketModule` producer.
 * - `inbox` deduplicates consumed messages (key: the outbox row id of messages from an outbox, else
 *   the id the message was first stored under), in the handler's transaction.
 *
 * The relay gets its own connection to a file database (better-sqlite3 is synchronous; sharing the
 * application's would make it wait for the application's transactions); an in-memory database
 * (tests) has only one connection, which it shares.
 */
@Injectable()
export class OrderOutbox implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger(OrderOutbox.name);
  private readonly outbox: SqliteOutbox;
  private readonly relayDb: SqliteDatabase | undefined;
  private relay: OutboxRelay | undefined;
  readonly inbox: SqliteInbox;

  constructor(
    @Inject(ORDER_DATABASE) private readonly db: SqliteDatabase,
    private readonly runtime: RocketRuntime,
    private readonly connection: RocketConnection,
  ) {
    this.relayDb = db.memory ? undefined : openSqliteDatabase(db.name, RELAY_BUSY_TIMEOUT_MS);
    this.outbox = new SqliteOutbox({ db: this.relayDb ?? db, clock: connection.clock });
    this.outbox.migrate();
    this.inbox = new SqliteInbox({ consumer: ORDER_SERVICE_GROUP, clock: connection.clock });
    this.inbox.migrate(db);
  }

  /** Writes `message` to the outbox; only inside a transaction of the service's connection. Returns the row id. */
  add(message: OutboxMessage): string {
    return this.outbox.add(this.db, message);
  }

  /** Rows not published yet, published, and parked after too many failed attempts. */
  counts(): { pending: number; published: number; parked: number } {
    return this.outbox.counts();
  }

  /** The outbox itself, for `@rocketnest/express`'s outbox writer. */
  get sqliteOutbox(): SqliteOutbox {
    return this.outbox;
  }

  async onApplicationBootstrap(): Promise<void> {
    const relay = new OutboxRelay({
      outbox: this.outbox,
      producer: this.runtime.producer,
      clock: this.connection.clock,
      relayId: ORDER_SERVICE_GROUP,
    });
    relay.on('outbox.failed', (e) =>
      this.logger.warn(`outbox row ${e.id}: send failed (attempt ${e.attempts})`),
    );
    relay.on('outbox.parked', (e) =>
      this.logger.error(`outbox row ${e.id}: parked after ${e.attempts} attempts`),
    );
    relay.on('outbox.error', (e) =>
      this.logger.warn(`outbox relay: ${e.operation} failed: ${String(e.error)}`),
    );
    await relay.start();
    this.relay = relay;
  }

  /** Stops the relay (the batch in flight is finished and marked) before the producer and database close. */
  async beforeApplicationShutdown(): Promise<void> {
    const relay = this.relay;
    this.relay = undefined;
    await relay?.close();
    if (this.relayDb?.open) this.relayDb.close();
  }
}
