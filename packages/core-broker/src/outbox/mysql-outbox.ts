import type { Clock, Timer } from '../common/clock';
import { systemClock } from '../common/clock';
import { RocketError } from '../common/errors';
import { intOption } from '../common/options';
import { DEFAULT_MAX_BODY_BYTES } from '../message/validation';
import type { MysqlConnectionLike, MysqlPoolConnectionLike, MysqlPoolLike } from './database-types';
import type { OutboxMessage, RowOutcome } from './outbox-message';
import { insertParams, prepareOutboxInsert, rowFromDatabase } from './outbox-message';
import { DEFAULT_OUTBOX_TABLE, mysqlGroupTable, mysqlOutboxDdl, quoteMysqlTable } from './outbox-schema';
import type { ClaimedBatch, RelaySource } from './relay-source';
import type { SqlTransaction } from './sql-transaction';
import { databaseError, isSqlTransaction, notInTransaction } from './sql-transaction';

/**
 * After an `add()` in this process, relays are woken at these delays (ms): MySQL has no
 * LISTEN/NOTIFY and no commit hook, so the wake-ups poll with backoff across the moment the
 * caller's transaction usually commits. Rows committed later, or by other processes, are found by
 * the relay's own poll (`pollIntervalMs`).
 */
export const MYSQL_WAKE_BACKOFF_MS: readonly number[] = [0, 10, 40, 160];

/** `SERVER_STATUS_IN_TRANS`: bit 0 of the status flags in every MySQL OK/EOF packet. */
const SERVER_STATUS_IN_TRANS = 0x0001;

export interface MysqlOutboxOptions {
  /**
   * A `mysql2/promise` pool. `migrate()` runs on it, and a relay takes one connection per batch;
   * never closed here. MySQL 8 or MariaDB 10.6+ (both have `SKIP LOCKED`).
   */
  pool: MysqlPoolLike;
  /** Table name, optionally schema-qualified (`app.outbox`). Default {@link DEFAULT_OUTBOX_TABLE}. */
  table?: string;
  /** Default: the system clock. Stamps `created_at_ms`, resolves `delayMs`, times wake-ups. */
  clock?: Clock;
  /** Largest body `add()` accepts, in bytes. Default {@link DEFAULT_MAX_BODY_BYTES} (RocketMQ `maxMessageSize`). */
  maxBodyBytes?: number;
}

const INSERT_COLUMNS =
  'id, aggregatetype, aggregateid, type, payload, topic, tag, `keys`, message_group, headers, delivery_time_ms, created_at_ms, available_at_ms';

/**
 * The transactional outbox on MySQL 8 and MariaDB 10.6+ through `mysql2`.
 *
 * - `add(connection, message)` inserts on the caller's connection, which must be inside a
 *   transaction: the server's `SERVER_STATUS_IN_TRANS` flag, which mysql2 keeps from the last
 *   reply, must be set (no round trip); without it the outbox runs `SAVEPOINT`/`RELEASE
 *   SAVEPOINT`, whose release fails outside a transaction. A grouped message first upserts its
 *   group's row in `<table>_groups`, an exclusive row lock held to commit, so writers of one group
 *   commit in `seq` order and the relay's order is the commit order.
 * - Relays claim with `SELECT … FOR UPDATE SKIP LOCKED` at READ COMMITTED in a transaction held
 *   while the batch is sent and marked; a relay that dies releases its rows when its connection
 *   drops.
 * - Wake-ups: see {@link MYSQL_WAKE_BACKOFF_MS}.
 */
export class MysqlOutbox implements RelaySource {
  readonly table: string;
  readonly description: string;
  private readonly pool: MysqlPoolLike;
  private readonly clock: Clock;
  private readonly maxBodyBytes: number;
  private readonly sql: ReturnType<typeof statements>;
  private readonly wakers = new Set<() => void>();
  private readonly wakeTimers = new Set<Timer>();

  constructor(options: MysqlOutboxOptions) {
    if (!options?.pool || typeof options.pool.getConnection !== 'function')
      throw new RocketError('INVALID_OPTION', 'mysql outbox option pool (a mysql2/promise Pool) is required');
    this.pool = options.pool;
    this.table = options.table ?? DEFAULT_OUTBOX_TABLE;
    this.sql = statements(quoteMysqlTable(this.table), quoteMysqlTable(mysqlGroupTable(this.table)));
    this.description = `mysql outbox ${this.table}`;
    this.clock = options.clock ?? systemClock;
    this.maxBodyBytes = intOption(
      'mysql outbox',
      'maxBodyBytes',
      options.maxBodyBytes,
      DEFAULT_MAX_BODY_BYTES,
      1,
    );
  }

  /** Creates the tables and their indexes if they do not exist. Idempotent. */
  async migrate(): Promise<void> {
    try {
      for (const ddl of mysqlOutboxDdl(this.table)) await this.pool.query(ddl);
    } catch (error) {
      throw databaseError(`${this.description}: migrate`, error);
    }
  }

  /**
   * Writes `message` in the caller's transaction; it is published after that transaction commits
   * and never if it rolls back. Resolves with the row id (the message's first key). Rejects with
   * `NOT_IN_TRANSACTION` when `tx` is not inside a transaction, `INVALID_ARGUMENT` for a message
   * the producer would refuse.
   */
  async add(tx: MysqlConnectionLike | SqlTransaction, message: OutboxMessage): Promise<string> {
    const insert = prepareOutboxInsert(message, this.clock, this.maxBodyBytes);
    await ensureMysqlTransaction(tx, 'mysql outbox add()');
    const run = executor(tx);
    try {
      if (insert.messageGroup !== null) await run(this.sql.lockGroup, [insert.messageGroup]);
      const changed = await run(this.sql.insert, insertParams(insert));
      if (changed !== 1) throw new Error(`insert changed ${changed} rows`);
    } catch (error) {
      throw databaseError(`${this.description}: add`, error);
    }
    this.wakeRelays();
    return insert.id;
  }

  /** Row counts by status, for operators and tests. */
  async counts(): Promise<{ pending: number; published: number; parked: number }> {
    const out = { pending: 0, published: 0, parked: 0 };
    try {
      const [rows] = await this.pool.query(this.sql.counts);
      for (const row of rows as Array<Record<string, unknown>>)
        out[row.status as keyof typeof out] = Number(row.n);
    } catch (error) {
      throw databaseError(`${this.description}: counts`, error);
    }
    return out;
  }

  /**
   * Puts parked rows back to pending with their attempts reset (all parked rows, or those ids);
   * resolves with how many. For an operator after fixing the cause.
   */
  async requeueParked(ids?: readonly string[]): Promise<number> {
    const now = this.clock.now();
    if (ids && ids.length === 0) return 0;
    try {
      const [result] = await this.pool.query(
        ids ? this.sql.requeueIds(ids.length) : this.sql.requeueAll,
        ids ? [now, ...ids] : [now],
      );
      return (result as { affectedRows: number }).affectedRows;
    } catch (error) {
      throw databaseError(`${this.description}: requeueParked`, error);
    }
  }

  /** @internal {@link RelaySource.claim}: a transaction with the rows locked until complete/abandon. */
  async claim(limit: number, nowMs: number): Promise<ClaimedBatch> {
    let connection: MysqlPoolConnectionLike;
    try {
      connection = await this.pool.getConnection();
    } catch (error) {
      throw databaseError(`${this.description}: claim (connect)`, error);
    }
    let rows;
    try {
      // READ COMMITTED: the per-group check reads the latest committed rows, not a snapshot.
      await connection.query('SET TRANSACTION ISOLATION LEVEL READ COMMITTED');
      await connection.beginTransaction();
      const [found] = await connection.query(this.sql.claim, [nowMs, limit]);
      rows = (found as Array<Record<string, unknown>>).map(rowFromDatabase);
    } catch (error) {
      await connection.rollback().catch(() => undefined);
      connection.destroy();
      throw databaseError(`${this.description}: claim`, error);
    }
    let done = false;
    const finish = async (work: () => Promise<void>, what: string): Promise<void> => {
      if (done) return;
      done = true;
      try {
        await work();
        connection.release();
      } catch (error) {
        await connection.rollback().catch(() => undefined);
        // A connection in an unknown state is not returned to the pool.
        connection.destroy();
        throw databaseError(`${this.description}: ${what}`, error);
      }
    };
    return {
      rows,
      complete: (outcomes) =>
        finish(async () => {
          await this.record(connection, outcomes);
          await connection.commit();
        }, 'mark claimed rows'),
      abandon: () => finish(() => connection.rollback().then(() => undefined), 'abandon claim'),
    };
  }

  /** @internal {@link RelaySource.deletePublished}. */
  async deletePublished(beforeMs: number, limit: number): Promise<number> {
    try {
      const [result] = await this.pool.query(this.sql.cleanup, [beforeMs, limit]);
      return (result as { affectedRows: number }).affectedRows;
    } catch (error) {
      throw databaseError(`${this.description}: cleanup`, error);
    }
  }

  /** @internal {@link RelaySource.subscribe}: in-process wake-ups after `add()` (see {@link MYSQL_WAKE_BACKOFF_MS}). */
  async subscribe(wake: () => void): Promise<() => Promise<void>> {
    this.wakers.add(wake);
    return async () => {
      this.wakers.delete(wake);
      if (this.wakers.size === 0) {
        for (const timer of this.wakeTimers) timer.cancel();
        this.wakeTimers.clear();
      }
    };
  }

  private wakeRelays(): void {
    if (this.wakers.size === 0) return;
    for (const delayMs of MYSQL_WAKE_BACKOFF_MS) {
      const timer = this.clock.setTimer(delayMs, () => {
        this.wakeTimers.delete(timer);
        for (const wake of this.wakers) wake();
      });
      this.wakeTimers.add(timer);
    }
  }

  private async record(connection: MysqlConnectionLike, outcomes: readonly RowOutcome[]): Promise<void> {
    const published = outcomes.filter((o) => o.status === 'published');
    if (published.length > 0) {
      await connection.query(this.sql.markPublished(published.length), [
        published[0]!.atMs,
        ...published.map((o) => o.seq),
      ]);
    }
    for (const o of outcomes) {
      if (o.status === 'published') continue;
      await connection.query(this.sql.markFailed, [o.attempts, o.error, o.availableAtMs, o.status, o.seq]);
    }
  }
}

/** Runs a non-reading statement on the caller's transaction; resolves with the changed rows. */
function executor(
  tx: MysqlConnectionLike | SqlTransaction,
): (sql: string, params: unknown[]) => Promise<number> {
  if (isSqlTransaction(tx)) return (sql, params) => tx.execute(sql, params);
  return async (sql, params) => {
    const [result] = await tx.query(sql, params);
    return (result as { affectedRows?: number }).affectedRows ?? 0;
  };
}

/**
 * Throws `NOT_IN_TRANSACTION` unless `tx` is inside an open transaction; see {@link MysqlOutbox}
 * for how each kind of handle is checked.
 */
export async function ensureMysqlTransaction(
  tx: MysqlConnectionLike | SqlTransaction,
  what: string,
): Promise<void> {
  if (isSqlTransaction(tx)) {
    if (tx.dialect !== 'mysql')
      throw new RocketError('INVALID_ARGUMENT', `${what} needs a MySQL transaction; got a ${tx.dialect} one`);
    if (!(await tx.inTransaction())) throw notInTransaction(what, 'the ORM reports no active transaction');
    return;
  }
  if (!tx || typeof tx.query !== 'function')
    throw new RocketError('INVALID_ARGUMENT', `${what} needs a mysql2 connection inside a transaction`);
  if ('getConnection' in tx)
    throw notInTransaction(what, 'got a mysql2 Pool; each pool query runs on its own connection');
  const status = (tx.connection as { serverStatus?: unknown } | undefined)?.serverStatus ?? tx.serverStatus;
  if (typeof status === 'number') {
    if ((status & SERVER_STATUS_IN_TRANS) !== 0) return;
    throw notInTransaction(what, 'the connection is not in a transaction (call beginTransaction() first)');
  }
  try {
    await tx.query('SAVEPOINT rocketnest_tx_check');
    await tx.query('RELEASE SAVEPOINT rocketnest_tx_check');
  } catch (error) {
    // With autocommit on, the savepoint ends with its implicit transaction: the release finds none.
    if ((error as { code?: unknown }).code === 'ER_SP_DOES_NOT_EXIST')
      throw notInTransaction(what, 'MySQL ran the savepoint outside a transaction');
    throw databaseError(`${what}: transaction check`, error);
  }
}

function statements(t: string, groups: string) {
  const placeholders = (n: number): string => Array.from({ length: n }, () => '?').join(', ');
  return {
    // An upsert takes the group row's exclusive lock (held to commit) whether or not it exists.
    lockGroup: `INSERT INTO ${groups} (message_group) VALUES (?) ON DUPLICATE KEY UPDATE message_group = message_group`,
    insert: `INSERT INTO ${t} (${INSERT_COLUMNS}) VALUES (${placeholders(13)})`,
    claim: `SELECT o.* FROM ${t} o
      WHERE o.status = 'pending' AND o.available_at_ms <= ?
        AND (o.message_group IS NULL OR NOT EXISTS (
          SELECT 1 FROM ${t} p WHERE p.message_group = o.message_group AND p.status = 'pending' AND p.seq < o.seq))
      ORDER BY o.seq LIMIT ? FOR UPDATE SKIP LOCKED`,
    markPublished: (n: number) =>
      `UPDATE ${t} SET status = 'published', published_at_ms = ?, attempts = attempts + 1, last_error = NULL
        WHERE seq IN (${placeholders(n)})`,
    markFailed: `UPDATE ${t} SET attempts = ?, last_error = ?, available_at_ms = ?, status = ? WHERE seq = ?`,
    cleanup: `DELETE FROM ${t} WHERE status = 'published' AND published_at_ms < ? ORDER BY published_at_ms LIMIT ?`,
    counts: `SELECT status, count(*) AS n FROM ${t} GROUP BY status`,
    requeueAll: `UPDATE ${t} SET status = 'pending', attempts = 0, available_at_ms = ? WHERE status = 'parked'`,
    requeueIds: (n: number) =>
      `UPDATE ${t} SET status = 'pending', attempts = 0, available_at_ms = ?
        WHERE status = 'parked' AND id IN (${placeholders(n)})`,
  };
}
