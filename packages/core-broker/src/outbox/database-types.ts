/**
 * The shapes of the database clients the outbox uses, typed structurally so that core-broker
 * depends on neither `pg` nor `better-sqlite3` (optional peers: users hand in their own instances).
 */

/** A `pg` result: rows and the affected row count. */
export interface PgResult {
  rows: Array<Record<string, unknown>>;
  rowCount: number | null;
}

/** Anything that runs a parameterised query: a `pg.Client`, `pg.PoolClient` or `pg.Pool`. */
export interface PgQueryable {
  query(text: string, values?: unknown[]): Promise<PgResult>;
}

/**
 * A connected `pg` client. `getTransactionStatus()` (pg ≥ 8.14) reports the server's own
 * transaction state from its last ReadyForQuery message; without it the outbox asks the server.
 */
export interface PgClientLike extends PgQueryable {
  getTransactionStatus?(): string | null;
}

/** A pooled client: released back to the pool when done. */
export interface PgPoolClientLike extends PgClientLike {
  release(error?: Error | boolean): void;
  on(event: 'notification', listener: (message: { channel: string; payload?: string }) => void): unknown;
  on(event: 'error', listener: (error: Error) => void): unknown;
  removeListener(
    event: 'notification',
    listener: (message: { channel: string; payload?: string }) => void,
  ): unknown;
  removeListener(event: 'error', listener: (error: Error) => void): unknown;
}

/** A `pg.Pool`: the relay takes a client for each batch, and one for LISTEN. */
export interface PgPoolLike extends PgQueryable {
  connect(): Promise<PgPoolClientLike>;
}

/** A better-sqlite3 prepared statement. */
export interface SqliteStatementLike {
  run(...params: unknown[]): { changes: number; lastInsertRowid: number | bigint };
  all(...params: unknown[]): unknown[];
  get(...params: unknown[]): unknown;
}

/** A better-sqlite3 `Database`. */
export interface SqliteDatabaseLike {
  prepare(sql: string): SqliteStatementLike;
  exec(sql: string): unknown;
  /** better-sqlite3 tracks whether the connection is inside a transaction. */
  readonly inTransaction: boolean;
  readonly open?: boolean;
}

/**
 * A `mysql2/promise` connection (`PoolConnection`): `query()` resolves with `[rows, fields]`,
 * where rows is an array for a SELECT and a result header (`affectedRows`) otherwise.
 */
export interface MysqlConnectionLike {
  query(sql: string, values?: unknown[]): Promise<[unknown, unknown]>;
  /**
   * The callback-style connection underneath the promise wrapper. mysql2 keeps the server's status
   * flags of the last reply in `serverStatus`; bit 0 is `SERVER_STATUS_IN_TRANS`.
   */
  readonly connection?: unknown;
  readonly serverStatus?: unknown;
}

/** A pooled `mysql2/promise` connection, released back to its pool when done. */
export interface MysqlPoolConnectionLike extends MysqlConnectionLike {
  beginTransaction(): Promise<unknown>;
  commit(): Promise<unknown>;
  rollback(): Promise<unknown>;
  release(): void;
  /** Closes the connection instead of returning it to the pool (after an error). */
  destroy(): void;
}

/** A `mysql2/promise` `Pool`: the relay takes a connection for each batch. */
export interface MysqlPoolLike {
  query(sql: string, values?: unknown[]): Promise<[unknown, unknown]>;
  getConnection(): Promise<MysqlPoolConnectionLike>;
}
