import type { Clock } from '../common/clock';
import { systemClock } from '../common/clock';
import { RocketError } from '../common/errors';
import type {
  MysqlConnectionLike,
  MysqlPoolLike,
  PgClientLike,
  PgQueryable,
  SqliteDatabaseLike,
} from './database-types';
import { ensureMysqlTransaction } from './mysql-outbox';
import type { InboxMessage } from './outbox-message';
import { defaultInboxKey } from './outbox-message';
import {
  DEFAULT_INBOX_TABLE,
  mysqlInboxDdl,
  postgresInboxDdl,
  quoteMysqlTable,
  quoteTable,
  sqliteInboxDdl,
} from './outbox-schema';
import { ensurePostgresTransaction } from './postgres-outbox';
import type { SqlTransaction } from './sql-transaction';
import { databaseError, isSqlTransaction, notInTransaction } from './sql-transaction';

/** Longest deduplication key, in characters. */
export const MAX_INBOX_KEY_LENGTH = 255;

export interface InboxOptions {
  /**
   * Who is consuming (usually the consumer group): keys are deduplicated per consumer, so two
   * services sharing a database each process a message once.
   */
  consumer: string;
  /** Table name (`schema.table` allowed on PostgreSQL). Default `rocketnest_inbox`. */
  table?: string;
  /**
   * The deduplication key of a message. Default: its `OUTBOX_ID` property (the outbox row id, the
   * same on every re-send), else the id it was first stored under (`__ORIGIN_MSG_ID` of a retry
   * copy, the same on every redelivery of one send), else its message id.
   */
  keyOf?: (message: InboxMessage) => string;
  /** Default: the system clock; stamps `processed_at_ms`. */
  clock?: Clock;
}

/** What `process()` did: ran the handler (and recorded the key), or skipped a duplicate. */
export type InboxOutcome<T> =
  { status: 'processed'; key: string; result: T } | { status: 'duplicate'; key: string };

function resolve(options: InboxOptions, allowSchema: boolean) {
  if (
    !options ||
    typeof options.consumer !== 'string' ||
    options.consumer.length === 0 ||
    options.consumer.length > 255
  )
    throw new RocketError(
      'INVALID_OPTION',
      'inbox option consumer must be a non-empty string of at most 255 characters',
    );
  const table = options.table ?? DEFAULT_INBOX_TABLE;
  return {
    table,
    quoted: quoteTable(table, allowSchema),
    keyOf: options.keyOf ?? defaultInboxKey,
    clock: options.clock ?? systemClock,
  };
}

function keyFor(keyOf: (message: InboxMessage) => string, message: InboxMessage): string {
  const key = keyOf(message);
  if (typeof key !== 'string' || key.length === 0 || key.length > MAX_INBOX_KEY_LENGTH)
    throw new RocketError(
      'INVALID_ARGUMENT',
      `inbox key must be a non-empty string of at most ${MAX_INBOX_KEY_LENGTH} characters`,
    );
  return key;
}

/**
 * The idempotent consumer on PostgreSQL: `process(tx, message, handler)` inserts (consumer, key)
 * in the caller's transaction with `ON CONFLICT DO NOTHING`; a new key runs `handler(tx)`, a known
 * one is a duplicate and the handler does not run. The handler's writes and the key commit or roll
 * back together; a concurrent duplicate waits on the key's unique index until the first commits.
 */
export class PostgresInbox {
  readonly consumer: string;
  readonly table: string;
  private readonly quoted: string;
  private readonly keyOf: (message: InboxMessage) => string;
  private readonly clock: Clock;

  constructor(options: InboxOptions) {
    const resolved = resolve(options, true);
    this.consumer = options.consumer;
    this.table = resolved.table;
    this.quoted = resolved.quoted;
    this.keyOf = resolved.keyOf;
    this.clock = resolved.clock;
  }

  /** Creates the inbox table if it does not exist. Idempotent. */
  async migrate(db: PgQueryable): Promise<void> {
    try {
      for (const ddl of postgresInboxDdl(this.table)) await db.query(ddl);
    } catch (error) {
      // Two first migrations racing on CREATE TABLE IF NOT EXISTS: the loser sees a duplicate type or table.
      const code = (error as { code?: unknown }).code;
      if (code === '23505' || code === '42P07') return;
      throw databaseError(`postgres inbox ${this.table}: migrate`, error);
    }
  }

  async process<Tx extends PgClientLike | SqlTransaction, T>(
    tx: Tx,
    message: InboxMessage,
    handler: (tx: Tx) => T | Promise<T>,
  ): Promise<InboxOutcome<T>> {
    const key = keyFor(this.keyOf, message);
    await ensurePostgresTransaction(tx, 'postgres inbox process()');
    const sql = `INSERT INTO ${this.quoted} (consumer, message_key, processed_at_ms) VALUES ($1, $2, $3)
      ON CONFLICT DO NOTHING RETURNING message_key`;
    const params = [this.consumer, key, this.clock.now()];
    let inserted: number;
    try {
      inserted = isSqlTransaction(tx)
        ? (await tx.query(sql, params)).length
        : (await tx.query(sql, params)).rows.length;
    } catch (error) {
      throw databaseError(`postgres inbox ${this.table}: record key`, error);
    }
    if (inserted === 0) return { status: 'duplicate', key };
    return { status: 'processed', key, result: await handler(tx) };
  }
}

/**
 * The idempotent consumer on SQLite. With a better-sqlite3 `Database` it is synchronous (call it
 * inside `db.transaction(() => …)()`; the handler's return value is passed through, a promise
 * too); through an ORM adapter it returns a promise.
 */
export class SqliteInbox {
  readonly consumer: string;
  readonly table: string;
  private readonly quoted: string;
  private readonly keyOf: (message: InboxMessage) => string;
  private readonly clock: Clock;

  constructor(options: InboxOptions) {
    const resolved = resolve(options, false);
    this.consumer = options.consumer;
    this.table = resolved.table;
    this.quoted = resolved.quoted;
    this.keyOf = resolved.keyOf;
    this.clock = resolved.clock;
  }

  /** Creates the inbox table if it does not exist. Idempotent. */
  migrate(db: SqliteDatabaseLike): void {
    try {
      for (const ddl of sqliteInboxDdl(this.table)) db.exec(ddl);
    } catch (error) {
      throw databaseError(`sqlite inbox ${this.table}: migrate`, error);
    }
  }

  process<T>(
    db: SqliteDatabaseLike,
    message: InboxMessage,
    handler: (db: SqliteDatabaseLike) => T,
  ): InboxOutcome<T>;
  process<T>(
    tx: SqlTransaction,
    message: InboxMessage,
    handler: (tx: SqlTransaction) => T | Promise<T>,
  ): Promise<InboxOutcome<T>>;
  process<T>(
    tx: SqliteDatabaseLike | SqlTransaction,
    message: InboxMessage,
    handler: (tx: never) => T | Promise<T>,
  ): InboxOutcome<T> | Promise<InboxOutcome<T>> {
    const key = keyFor(this.keyOf, message);
    const sql = `INSERT INTO ${this.quoted} (consumer, message_key, processed_at_ms) VALUES (?, ?, ?)
      ON CONFLICT DO NOTHING RETURNING message_key`;
    const params = [this.consumer, key, this.clock.now()];
    if (isSqlTransaction(tx)) {
      return (async (): Promise<InboxOutcome<T>> => {
        if (tx.dialect !== 'sqlite')
          throw new RocketError(
            'INVALID_ARGUMENT',
            `sqlite inbox process() needs a SQLite transaction; got ${tx.dialect}`,
          );
        if (!(await tx.inTransaction()))
          throw notInTransaction('sqlite inbox process()', 'the ORM reports no active transaction');
        let rows;
        try {
          rows = await tx.query(sql, params);
        } catch (error) {
          throw databaseError(`sqlite inbox ${this.table}: record key`, error);
        }
        if (rows.length === 0) return { status: 'duplicate', key };
        return {
          status: 'processed',
          key,
          result: await (handler as (tx: SqlTransaction) => T | Promise<T>)(tx),
        };
      })();
    }
    if (!tx || typeof tx.prepare !== 'function')
      throw new RocketError(
        'INVALID_ARGUMENT',
        'sqlite inbox process() needs a better-sqlite3 Database inside a transaction',
      );
    if (!tx.inTransaction) throw notInTransaction('sqlite inbox process()', 'db.inTransaction is false');
    let row: unknown;
    try {
      row = tx.prepare(sql).get(...params);
    } catch (error) {
      throw databaseError(`sqlite inbox ${this.table}: record key`, error);
    }
    if (row === undefined) return { status: 'duplicate', key };
    return { status: 'processed', key, result: (handler as (db: SqliteDatabaseLike) => T)(tx) };
  }
}

/**
 * The idempotent consumer on MySQL 8 / MariaDB 10.6+: `process(tx, message, handler)` runs
 * `INSERT IGNORE` of (consumer, key) in the caller's transaction; one changed row means a new key
 * and `handler(tx)` runs, none means a duplicate and it does not. The handler's writes and the key
 * commit or roll back together; a concurrent duplicate waits on the primary key's row lock until
 * the first commits (then finds the key) or rolls back (then inserts it).
 */
export class MysqlInbox {
  readonly consumer: string;
  readonly table: string;
  private readonly quoted: string;
  private readonly keyOf: (message: InboxMessage) => string;
  private readonly clock: Clock;

  constructor(options: InboxOptions) {
    const resolved = resolve(options, true);
    this.consumer = options.consumer;
    this.table = resolved.table;
    this.quoted = quoteMysqlTable(resolved.table);
    this.keyOf = resolved.keyOf;
    this.clock = resolved.clock;
  }

  /** Creates the inbox table if it does not exist. Idempotent. */
  async migrate(db: MysqlPoolLike | MysqlConnectionLike): Promise<void> {
    try {
      for (const ddl of mysqlInboxDdl(this.table)) await db.query(ddl);
    } catch (error) {
      throw databaseError(`mysql inbox ${this.table}: migrate`, error);
    }
  }

  async process<Tx extends MysqlConnectionLike | SqlTransaction, T>(
    tx: Tx,
    message: InboxMessage,
    handler: (tx: Tx) => T | Promise<T>,
  ): Promise<InboxOutcome<T>> {
    const key = keyFor(this.keyOf, message);
    await ensureMysqlTransaction(tx, 'mysql inbox process()');
    // The key's length is checked above, so IGNORE can only skip the duplicate-key case.
    const sql = `INSERT IGNORE INTO ${this.quoted} (consumer, message_key, processed_at_ms) VALUES (?, ?, ?)`;
    const params = [this.consumer, key, this.clock.now()];
    let inserted: number;
    try {
      if (isSqlTransaction(tx)) inserted = await tx.execute(sql, params);
      else {
        const [result] = await (tx as MysqlConnectionLike).query(sql, params);
        inserted = (result as { affectedRows: number }).affectedRows;
      }
    } catch (error) {
      throw databaseError(`mysql inbox ${this.table}: record key`, error);
    }
    if (inserted === 0) return { status: 'duplicate', key };
    return { status: 'processed', key, result: await handler(tx) };
  }
}
