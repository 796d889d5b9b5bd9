import type { Clock } from '../common/clock';
import { systemClock } from '../common/clock';
import { RocketError } from '../common/errors';
import { intOption } from '../common/options';
import { DEFAULT_MAX_BODY_BYTES } from '../message/validation';
import type { SqliteDatabaseLike, SqliteStatementLike } from './database-types';
import type { OutboxInsert, OutboxMessage, RowOutcome } from './outbox-message';
import { insertParams, prepareOutboxInsert, rowFromDatabase } from './outbox-message';
import { DEFAULT_OUTBOX_TABLE, quoteTable, sqliteOutboxDdl } from './outbox-schema';
import type { ClaimedBatch, RelaySource } from './relay-source';
import type { SqlTransaction } from './sql-transaction';
import { databaseError, isSqlTransaction, notInTransaction } from './sql-transaction';

/** How long a relay waits for the shared connection to leave the application's transaction, in ms. */
export const DEFAULT_SQLITE_BUSY_WAIT_MS = 5_000;
/** Poll step of that wait, in ms. */
const BUSY_POLL_MS = 5;

export interface SqliteOutboxOptions {
  /**
   * The better-sqlite3 `Database` the relay claims and marks rows on and `migrate()` runs on.
   * Give a relay its own connection to a file database (with a short `timeout`): better-sqlite3
   * is synchronous, so a relay sharing the application's connection waits for its transactions.
   * Never closed here.
   */
  db: SqliteDatabaseLike;
  /** Table name. Default `rocketnest_outbox`. */
  table?: string;
  /** Default: the system clock. */
  clock?: Clock;
  /** Largest body `add()` accepts, in bytes. Default 4 MiB (RocketMQ `maxMessageSize`). */
  maxBodyBytes?: number;
  /** How long the relay waits for `db` to leave an application transaction before giving up, in ms. Default 5000. */
  busyWaitMs?: number;
}

const INSERT_SQL = (t: string): string =>
  `INSERT INTO ${t} (id, aggregatetype, aggregateid, type, payload, topic, tag, keys, message_group, headers,
     delivery_time_ms, created_at_ms, available_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`;

/**
 * The transactional outbox on SQLite through better-sqlite3 (the embedded default).
 *
 * - `add(db, message)` inserts on the caller's connection, synchronously, and refuses unless
 *   `db.inTransaction` (better-sqlite3's own flag): call it inside `db.transaction(() => …)()` or
 *   between your `BEGIN` and `COMMIT`. Through an ORM adapter it returns a promise.
 * - SQLite has no row locks to skip, so a relay claims rows with a lease (`locked_until_ms`,
 *   `locked_by`) written in a short `BEGIN IMMEDIATE` transaction; a relay that dies leaves its
 *   rows to be claimed again once the lease expires.
 * - Relays in this process are woken right after an `add()`; others poll.
 */
export class SqliteOutbox implements RelaySource {
  readonly table: string;
  readonly description: string;
  private readonly db: SqliteDatabaseLike;
  private readonly clock: Clock;
  private readonly maxBodyBytes: number;
  private readonly busyWaitMs: number;
  private readonly quoted: string;
  private readonly statementCache = new Map<string, SqliteStatementLike>();
  private readonly wakers = new Set<() => void>();
  /** The prepared insert of each connection `add()` was called with. */
  private readonly insertStatements = new WeakMap<SqliteDatabaseLike, SqliteStatementLike>();

  constructor(options: SqliteOutboxOptions) {
    if (!options?.db || typeof options.db.prepare !== 'function')
      throw new RocketError(
        'INVALID_OPTION',
        'sqlite outbox option db (a better-sqlite3 Database) is required',
      );
    this.db = options.db;
    this.table = options.table ?? DEFAULT_OUTBOX_TABLE;
    this.quoted = quoteTable(this.table, false);
    this.description = `sqlite outbox ${this.table}`;
    this.clock = options.clock ?? systemClock;
    this.maxBodyBytes = intOption(
      'sqlite outbox',
      'maxBodyBytes',
      options.maxBodyBytes,
      DEFAULT_MAX_BODY_BYTES,
      1,
    );
    this.busyWaitMs = intOption(
      'sqlite outbox',
      'busyWaitMs',
      options.busyWaitMs,
      DEFAULT_SQLITE_BUSY_WAIT_MS,
      0,
    );
  }

  /** Creates the table and its indexes if they do not exist (in one transaction). Idempotent. */
  migrate(): void {
    try {
      this.db.exec('BEGIN IMMEDIATE');
      try {
        for (const ddl of sqliteOutboxDdl(this.table)) this.db.exec(ddl);
        this.db.exec('COMMIT');
      } catch (error) {
        this.db.exec('ROLLBACK');
        throw error;
      }
    } catch (error) {
      throw databaseError(`${this.description}: migrate`, error);
    }
  }

  /**
   * Writes `message` in the caller's transaction; it is published after the transaction commits
   * and never if it rolls back. Returns the row id. Throws `NOT_IN_TRANSACTION` outside a
   * transaction, `INVALID_ARGUMENT` for a message the producer would refuse.
   */
  add(db: SqliteDatabaseLike, message: OutboxMessage): string;
  add(tx: SqlTransaction, message: OutboxMessage): Promise<string>;
  add(tx: SqliteDatabaseLike | SqlTransaction, message: OutboxMessage): string | Promise<string> {
    const insert = prepareOutboxInsert(message, this.clock, this.maxBodyBytes);
    if (isSqlTransaction(tx)) return this.addThrough(tx, insert);
    if (!tx || typeof tx.prepare !== 'function')
      throw new RocketError(
        'INVALID_ARGUMENT',
        'sqlite outbox add() needs a better-sqlite3 Database inside a transaction',
      );
    if (!tx.inTransaction) throw notInTransaction('sqlite outbox add()', 'db.inTransaction is false');
    try {
      let statement = this.insertStatements.get(tx);
      if (!statement) {
        statement = tx.prepare(INSERT_SQL(this.quoted));
        this.insertStatements.set(tx, statement);
      }
      statement.run(...insertParams(insert));
    } catch (error) {
      throw databaseError(`${this.description}: add`, error);
    }
    this.wakeSoon();
    return insert.id;
  }

  /** Row counts by status, for operators and tests. */
  counts(): { pending: number; published: number; parked: number } {
    const out = { pending: 0, published: 0, parked: 0 };
    const rows = this.statement(
      `SELECT status, count(*) AS n FROM ${this.quoted} GROUP BY status`,
    ).all() as Array<{
      status: keyof typeof out;
      n: number;
    }>;
    for (const row of rows) out[row.status] = Number(row.n);
    return out;
  }

  /** Puts parked rows (all, or those ids) back to pending with attempts reset; returns how many. */
  requeueParked(ids?: readonly string[]): number {
    const now = this.clock.now();
    const sql = `UPDATE ${this.quoted} SET status = 'pending', attempts = 0, available_at_ms = ?, locked_until_ms = NULL
      WHERE status = 'parked'`;
    if (!ids) return this.statement(sql).run(now).changes;
    let changed = 0;
    for (const id of ids) changed += this.statement(`${sql} AND id = ?`).run(now, id).changes;
    return changed;
  }

  /** @internal {@link RelaySource.claim}: leases the rows to `owner` until `nowMs + leaseMs`. */
  async claim(limit: number, nowMs: number, leaseMs: number, owner: string): Promise<ClaimedBatch> {
    await this.waitOutOfTransaction('claim');
    let rows;
    try {
      rows = this.immediate(() => {
        const found = (
          this.statement(this.claimSql()).all(nowMs, nowMs, limit) as Array<Record<string, unknown>>
        ).map(rowFromDatabase);
        const lease = this.statement(
          `UPDATE ${this.quoted} SET locked_until_ms = ?, locked_by = ? WHERE seq = ?`,
        );
        for (const row of found) lease.run(nowMs + leaseMs, owner, row.seq);
        return found;
      });
    } catch (error) {
      throw databaseError(`${this.description}: claim`, error);
    }
    let done = false;
    return {
      rows,
      complete: async (outcomes) => {
        if (done) return;
        done = true;
        await this.waitOutOfTransaction('mark claimed rows');
        try {
          this.immediate(() => this.record(outcomes));
        } catch (error) {
          throw databaseError(`${this.description}: mark claimed rows`, error);
        }
      },
      abandon: async () => {
        if (done) return;
        done = true;
        await this.waitOutOfTransaction('abandon claim');
        try {
          const release = this.statement(
            `UPDATE ${this.quoted} SET locked_until_ms = NULL, locked_by = NULL WHERE seq = ? AND locked_by = ?`,
          );
          this.immediate(() => rows.forEach((row) => release.run(row.seq, owner)));
        } catch (error) {
          throw databaseError(`${this.description}: abandon claim`, error);
        }
      },
    };
  }

  /** @internal {@link RelaySource.deletePublished}. */
  async deletePublished(beforeMs: number, limit: number): Promise<number> {
    await this.waitOutOfTransaction('cleanup');
    try {
      return this.statement(
        `DELETE FROM ${this.quoted} WHERE seq IN (SELECT seq FROM ${this.quoted}
           WHERE status = 'published' AND published_at_ms < ? ORDER BY published_at_ms LIMIT ?)`,
      ).run(beforeMs, limit).changes;
    } catch (error) {
      throw databaseError(`${this.description}: cleanup`, error);
    }
  }

  /** @internal {@link RelaySource.subscribe}: in-process wake-ups after `add()`. */
  async subscribe(wake: () => void): Promise<() => Promise<void>> {
    this.wakers.add(wake);
    return async () => void this.wakers.delete(wake);
  }

  private claimSql(): string {
    const t = this.quoted;
    return `SELECT o.* FROM ${t} o
      WHERE o.status = 'pending' AND o.available_at_ms <= ?
        AND (o.locked_until_ms IS NULL OR o.locked_until_ms <= ?)
        AND (o.message_group IS NULL OR NOT EXISTS (
          SELECT 1 FROM ${t} p WHERE p.message_group = o.message_group AND p.status = 'pending' AND p.seq < o.seq))
      ORDER BY o.seq LIMIT ?`;
  }

  private record(outcomes: readonly RowOutcome[]): void {
    const published = this.statement(
      `UPDATE ${this.quoted} SET status = 'published', published_at_ms = ?, attempts = attempts + 1, last_error = NULL,
         locked_until_ms = NULL, locked_by = NULL WHERE seq = ?`,
    );
    const failed = this.statement(
      `UPDATE ${this.quoted} SET attempts = ?, last_error = ?, available_at_ms = ?, status = ?,
         locked_until_ms = NULL, locked_by = NULL WHERE seq = ?`,
    );
    for (const o of outcomes) {
      if (o.status === 'published') published.run(o.atMs, o.seq);
      else failed.run(o.attempts, o.error, o.availableAtMs, o.status, o.seq);
    }
  }

  private immediate<T>(work: () => T): T {
    this.db.exec('BEGIN IMMEDIATE');
    try {
      const result = work();
      this.db.exec('COMMIT');
      return result;
    } catch (error) {
      if (this.db.inTransaction) this.db.exec('ROLLBACK');
      throw error;
    }
  }

  /** Waits (on the clock) while the shared connection is inside the application's transaction. */
  private async waitOutOfTransaction(what: string): Promise<void> {
    const deadline = this.clock.now() + this.busyWaitMs;
    while (this.db.inTransaction) {
      if (this.clock.now() >= deadline) {
        throw new RocketError(
          'DATABASE_ERROR',
          `${this.description}: ${what}: the relay's connection stayed inside another transaction for ` +
            `${this.busyWaitMs} ms; give the relay its own better-sqlite3 connection`,
        );
      }
      await new Promise<void>((resolve) => this.clock.setTimer(BUSY_POLL_MS, resolve));
    }
  }

  private async addThrough(tx: SqlTransaction, insert: OutboxInsert): Promise<string> {
    if (tx.dialect !== 'sqlite')
      throw new RocketError(
        'INVALID_ARGUMENT',
        `sqlite outbox add() needs a SQLite transaction; got a ${tx.dialect} one`,
      );
    if (!(await tx.inTransaction()))
      throw notInTransaction('sqlite outbox add()', 'the ORM reports no active transaction');
    try {
      const rows = await tx.query(INSERT_SQL(this.quoted), insertParams(insert));
      if (rows.length !== 1) throw new Error(`insert returned ${rows.length} rows`);
    } catch (error) {
      throw databaseError(`${this.description}: add`, error);
    }
    this.wakeSoon();
    return insert.id;
  }

  private wakeSoon(): void {
    // After the caller's synchronous transaction has had the chance to commit.
    for (const wake of this.wakers) this.clock.setTimer(0, wake);
  }

  private statement(sql: string): SqliteStatementLike {
    let statement = this.statementCache.get(sql);
    if (!statement) {
      statement = this.db.prepare(sql);
      this.statementCache.set(sql, statement);
    }
    return statement;
  }
}
