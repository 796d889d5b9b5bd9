import type { Clock } from '../common/clock';
import { systemClock } from '../common/clock';
import { RocketError } from '../common/errors';
import { intOption } from '../common/options';
import { DEFAULT_MAX_BODY_BYTES } from '../message/validation';
import type { PgClientLike, PgPoolClientLike, PgPoolLike, PgQueryable } from './database-types';
import type { OutboxMessage, RowOutcome } from './outbox-message';
import { insertParams, prepareOutboxInsert, rowFromDatabase } from './outbox-message';
import { DEFAULT_OUTBOX_TABLE, derivedName, postgresOutboxDdl, quoteTable } from './outbox-schema';
import type { ClaimedBatch, RelaySource } from './relay-source';
import type { SqlTransaction } from './sql-transaction';
import { databaseError, isSqlTransaction, notInTransaction } from './sql-transaction';

export interface PostgresOutboxOptions {
  /**
   * A `pg.Pool` (or anything with its `query`/`connect`). `migrate()` runs on it, and a relay takes
   * one client per batch plus one held for LISTEN; size the pool for that. Never closed here.
   */
  pool: PgPoolLike;
  /** Table name, optionally schema-qualified (`app.outbox`). Default `rocketnest_outbox`. */
  table?: string;
  /** Default: the system clock. Stamps `created_at_ms` and resolves `delayMs`. */
  clock?: Clock;
  /** Largest body `add()` accepts, in bytes. Default 4 MiB (RocketMQ `maxMessageSize`). */
  maxBodyBytes?: number;
}

/** Inserted columns, in the order of {@link insertValues}. */
const INSERT_COLUMNS =
  'id, aggregatetype, aggregateid, type, payload, topic, tag, keys, message_group, headers, delivery_time_ms, created_at_ms, available_at_ms';

/**
 * The transactional outbox on PostgreSQL through `pg`.
 *
 * - `add(client, message)` inserts a row on the caller's client, which must be inside a
 *   transaction: with pg ≥ 8.14 the client's `getTransactionStatus()` (the server's own
 *   ReadyForQuery state, no round trip) must be `T`; with older clients the outbox runs
 *   `SAVEPOINT …; RELEASE SAVEPOINT …`, which PostgreSQL refuses outside a transaction block.
 *   A grouped message first takes a transaction-scoped advisory lock on (table, group), so writers
 *   of one group commit in `seq` order and the relay's order is the commit order.
 * - The insert also `pg_notify`s the table's channel, delivered at commit, which wakes relays.
 * - Relays claim with `SELECT … FOR UPDATE SKIP LOCKED` in a transaction held while the batch is
 *   sent and marked; a relay that dies releases its rows when its connection drops.
 */
export class PostgresOutbox implements RelaySource {
  readonly table: string;
  /** The LISTEN/NOTIFY channel: `<table>_added`, dots as underscores. */
  readonly channel: string;
  readonly description: string;
  private readonly pool: PgPoolLike;
  private readonly clock: Clock;
  private readonly maxBodyBytes: number;
  private readonly sql: ReturnType<typeof statements>;

  constructor(options: PostgresOutboxOptions) {
    if (!options?.pool || typeof options.pool.connect !== 'function')
      throw new RocketError('INVALID_OPTION', 'postgres outbox option pool (a pg.Pool) is required');
    this.pool = options.pool;
    this.table = options.table ?? DEFAULT_OUTBOX_TABLE;
    const t = quoteTable(this.table, true);
    this.channel = derivedName(this.table, 'added');
    this.description = `postgres outbox ${this.table}`;
    this.clock = options.clock ?? systemClock;
    this.maxBodyBytes = intOption(
      'postgres outbox',
      'maxBodyBytes',
      options.maxBodyBytes,
      DEFAULT_MAX_BODY_BYTES,
      1,
    );
    this.sql = statements(t);
  }

  /**
   * Creates the table and its indexes if they do not exist. Idempotent, and safe to run from
   * several processes at once (it holds an advisory lock on the table name while it runs).
   */
  async migrate(): Promise<void> {
    const client = await this.connect('migrate');
    try {
      await client.query('BEGIN');
      await client.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [
        `rocketnest:migrate:${this.table}`,
      ]);
      for (const ddl of postgresOutboxDdl(this.table)) await client.query(ddl);
      await client.query('COMMIT');
      client.release();
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      client.release(true);
      throw databaseError(`${this.description}: migrate`, error);
    }
  }

  /**
   * Writes `message` in the caller's transaction; it is published after that transaction commits
   * and never if it rolls back. Resolves with the row id (the message's first key). Rejects with
   * `NOT_IN_TRANSACTION` when `tx` is not inside a transaction, `INVALID_ARGUMENT` for a message
   * the producer would refuse.
   */
  async add(tx: PgClientLike | SqlTransaction, message: OutboxMessage): Promise<string> {
    const insert = prepareOutboxInsert(message, this.clock, this.maxBodyBytes);
    const run = await this.runner(tx, 'postgres outbox add()');
    try {
      if (insert.messageGroup !== null) {
        // No void column in the result (ORMs such as Prisma refuse to read one).
        await run(
          'SELECT count(*) AS locked FROM (SELECT pg_advisory_xact_lock(hashtextextended($1, 0))) l',
          [`rocketnest:outbox:${this.table}:${insert.messageGroup}`],
        );
      }
      const rows = await run(this.sql.insert, [...insertParams(insert), this.channel]);
      if (rows.length !== 1) throw new Error(`insert returned ${rows.length} rows`);
      return insert.id;
    } catch (error) {
      throw databaseError(`${this.description}: add`, error);
    }
  }

  /** Row counts by status, for operators and tests. */
  async counts(): Promise<{ pending: number; published: number; parked: number }> {
    const result = await this.pool
      .query(this.sql.counts)
      .catch((error: unknown) => Promise.reject(databaseError(`${this.description}: counts`, error)));
    const out = { pending: 0, published: 0, parked: 0 };
    for (const row of result.rows) out[row.status as keyof typeof out] = Number(row.n);
    return out;
  }

  /**
   * Puts parked rows back to pending with their attempts reset (all parked rows, or those ids);
   * resolves with how many. For an operator after fixing the cause.
   */
  async requeueParked(ids?: readonly string[]): Promise<number> {
    const now = this.clock.now();
    const result = await this.pool
      .query(ids ? this.sql.requeueIds : this.sql.requeueAll, ids ? [now, [...ids]] : [now])
      .catch((error: unknown) => Promise.reject(databaseError(`${this.description}: requeueParked`, error)));
    return result.rowCount ?? 0;
  }

  /** @internal {@link RelaySource.claim}: a transaction with the rows locked until complete/abandon. */
  async claim(limit: number, nowMs: number): Promise<ClaimedBatch> {
    const client = await this.connect('claim');
    let rows;
    try {
      await client.query('BEGIN ISOLATION LEVEL READ COMMITTED');
      rows = (await client.query(this.sql.claim, [nowMs, limit])).rows.map(rowFromDatabase);
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      client.release(true);
      throw databaseError(`${this.description}: claim`, error);
    }
    let done = false;
    const finish = async (work: () => Promise<void>, what: string): Promise<void> => {
      if (done) return;
      done = true;
      try {
        await work();
        client.release();
      } catch (error) {
        await client.query('ROLLBACK').catch(() => undefined);
        client.release(true);
        throw databaseError(`${this.description}: ${what}`, error);
      }
    };
    return {
      rows,
      complete: (outcomes) =>
        finish(async () => {
          await this.record(client, outcomes);
          await client.query('COMMIT');
        }, 'mark claimed rows'),
      abandon: () => finish(() => client.query('ROLLBACK').then(() => undefined), 'abandon claim'),
    };
  }

  /** @internal {@link RelaySource.deletePublished}. */
  async deletePublished(beforeMs: number, limit: number): Promise<number> {
    try {
      return (await this.pool.query(this.sql.cleanup, [beforeMs, limit])).rowCount ?? 0;
    } catch (error) {
      throw databaseError(`${this.description}: cleanup`, error);
    }
  }

  /** @internal {@link RelaySource.subscribe}: LISTEN on a client held until the returned stop. */
  async subscribe(wake: () => void, onError: (error: unknown) => void): Promise<() => Promise<void>> {
    const client = await this.connect('listen');
    const onNotification = (message: { channel: string }): void => {
      if (message.channel === this.channel) wake();
    };
    let broken = false;
    const onClientError = (error: Error): void => {
      broken = true;
      onError(databaseError(`${this.description}: listen`, error));
    };
    client.on('notification', onNotification);
    client.on('error', onClientError);
    try {
      await client.query(`LISTEN "${this.channel}"`);
    } catch (error) {
      client.removeListener('notification', onNotification);
      client.removeListener('error', onClientError);
      client.release(true);
      throw databaseError(`${this.description}: listen`, error);
    }
    return async () => {
      client.removeListener('notification', onNotification);
      if (!broken) await client.query(`UNLISTEN "${this.channel}"`).catch(() => (broken = true));
      client.removeListener('error', onClientError);
      client.release(broken);
    };
  }

  private async record(client: PgQueryable, outcomes: readonly RowOutcome[]): Promise<void> {
    const published = outcomes.filter((o) => o.status === 'published');
    if (published.length > 0) {
      await client.query(this.sql.markPublished, [published.map((o) => o.seq), published[0]!.atMs]);
    }
    for (const o of outcomes) {
      if (o.status === 'published') continue;
      await client.query(this.sql.markFailed, [o.seq, o.attempts, o.error, o.availableAtMs, o.status]);
    }
  }

  private async connect(what: string): Promise<PgPoolClientLike> {
    try {
      return await this.pool.connect();
    } catch (error) {
      throw databaseError(`${this.description}: ${what} (connect)`, error);
    }
  }

  /** A statement runner on the caller's transaction, after checking it is one. */
  private async runner(
    tx: PgClientLike | SqlTransaction,
    what: string,
  ): Promise<(sql: string, params: unknown[]) => Promise<Array<Record<string, unknown>>>> {
    await ensurePostgresTransaction(tx, what);
    if (isSqlTransaction(tx)) return (sql, params) => tx.query(sql, params);
    return async (sql, params) => (await tx.query(sql, params)).rows;
  }
}

/**
 * Throws `NOT_IN_TRANSACTION` unless `tx` is inside an open (not failed) transaction; see
 * {@link PostgresOutbox} for how each kind of handle is checked.
 */
export async function ensurePostgresTransaction(
  tx: PgClientLike | SqlTransaction,
  what: string,
): Promise<void> {
  if (isSqlTransaction(tx)) {
    if (tx.dialect !== 'postgres')
      throw new RocketError(
        'INVALID_ARGUMENT',
        `${what} needs a PostgreSQL transaction; got a ${tx.dialect} one`,
      );
    if (!(await tx.inTransaction())) throw notInTransaction(what, 'the ORM reports no active transaction');
    return;
  }
  if (!tx || typeof tx.query !== 'function')
    throw new RocketError('INVALID_ARGUMENT', `${what} needs a pg client inside a transaction`);
  if ('connect' in tx && 'totalCount' in tx)
    throw notInTransaction(what, 'got a pg.Pool; each pool query runs on its own connection');
  if (typeof tx.getTransactionStatus === 'function') {
    const status = tx.getTransactionStatus();
    if (status === 'T') return;
    throw notInTransaction(
      what,
      status === 'E'
        ? 'the transaction has failed; roll it back'
        : 'the client is not in a transaction block',
    );
  }
  try {
    await tx.query('SAVEPOINT rocketnest_tx_check; RELEASE SAVEPOINT rocketnest_tx_check');
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (code === '25P01')
      throw notInTransaction(what, 'PostgreSQL refused a savepoint: no transaction block');
    if (code === '25P02') throw notInTransaction(what, 'the transaction has failed; roll it back');
    throw databaseError(`${what}: transaction check`, error);
  }
}

function statements(t: string) {
  const publishable = `o.status = 'pending' AND o.available_at_ms <= $1
      AND (o.message_group IS NULL OR NOT EXISTS (
        SELECT 1 FROM ${t} p WHERE p.message_group = o.message_group AND p.status = 'pending' AND p.seq < o.seq))`;
  return {
    insert: `WITH ins AS (
        INSERT INTO ${t} (${INSERT_COLUMNS})
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb, $11, $12, $13) RETURNING id)
      SELECT id, (SELECT count(*) FROM (SELECT pg_notify($14, '')) n) AS notified FROM ins`,
    claim: `SELECT o.* FROM ${t} o WHERE ${publishable} ORDER BY o.seq LIMIT $2 FOR UPDATE OF o SKIP LOCKED`,
    markPublished: `UPDATE ${t} SET status = 'published', published_at_ms = $2, attempts = attempts + 1,
      last_error = NULL WHERE seq = ANY($1::bigint[])`,
    markFailed: `UPDATE ${t} SET attempts = $2, last_error = $3, available_at_ms = $4, status = $5 WHERE seq = $1`,
    cleanup: `DELETE FROM ${t} WHERE seq IN (
      SELECT seq FROM ${t} WHERE status = 'published' AND published_at_ms < $1 ORDER BY published_at_ms LIMIT $2)`,
    counts: `SELECT status, count(*) AS n FROM ${t} GROUP BY status`,
    requeueAll: `UPDATE ${t} SET status = 'pending', attempts = 0, available_at_ms = $1 WHERE status = 'parked'`,
    requeueIds: `UPDATE ${t} SET status = 'pending', attempts = 0, available_at_ms = $1
      WHERE status = 'parked' AND id = ANY($2::uuid[])`,
  };
}
