import type { Request } from 'express';
import type {
  OutboxMessage,
  PgPoolLike,
  PostgresOutbox,
  SqliteDatabaseLike,
  SqliteOutbox,
} from '@rocketnest/core-broker/outbox';

/**
 * Writes messages to an outbox in one transaction of its own and resolves with their row ids; used
 * by `rocketProduceRouter({ outbox })`, which then answers 202. Write your own to add business
 * rows in the same transaction.
 */
export type OutboxWriter = (messages: readonly OutboxMessage[], req: Request) => Promise<string[]>;

/** An {@link OutboxWriter} over a `PostgresOutbox`: BEGIN, add each, COMMIT on a pooled client. */
export function postgresOutboxWriter(outbox: PostgresOutbox, pool: PgPoolLike): OutboxWriter {
  return async (messages) => {
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      const ids: string[] = [];
      for (const message of messages) ids.push(await outbox.add(client, message));
      await client.query('COMMIT');
      client.release();
      return ids;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      client.release();
      throw error;
    }
  };
}

/** An {@link OutboxWriter} over a `SqliteOutbox`: one `BEGIN IMMEDIATE` … `COMMIT` on `db`. */
export function sqliteOutboxWriter(outbox: SqliteOutbox, db: SqliteDatabaseLike): OutboxWriter {
  return async (messages) => {
    db.exec('BEGIN IMMEDIATE');
    try {
      const ids = messages.map((message) => outbox.add(db, message));
      db.exec('COMMIT');
      return ids;
    } catch (error) {
      if (db.inTransaction) db.exec('ROLLBACK');
      throw error;
    }
  };
}
