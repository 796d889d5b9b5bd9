import { RocketError } from '../common/errors';

/** The databases the outbox and inbox speak. */
export type SqlDialect = 'postgres' | 'sqlite' | 'mysql';

/**
 * A caller's open database transaction as the outbox and inbox use it when it comes from an ORM:
 * positional parameters (`$1` on PostgreSQL, `?` on SQLite and MySQL), rows back, and whether a
 * transaction is really open. Made by {@link typeOrmTransaction} and {@link prismaTransaction}.
 */
export interface SqlTransaction {
  readonly dialect: SqlDialect;
  /** Runs one statement; resolves with the rows it returned (`[]` when none). */
  query(sql: string, params: readonly unknown[]): Promise<Array<Record<string, unknown>>>;
  /**
   * Runs one statement that returns no rows; resolves with the number of rows it changed. MySQL
   * has no `RETURNING`, so its outbox and inbox count changed rows instead.
   */
  execute(sql: string, params: readonly unknown[]): Promise<number>;
  /** True when the handle is inside a transaction. */
  inTransaction(): Promise<boolean>;
}

/**
 * The part of a TypeORM `EntityManager` the adapter uses: the manager handed to
 * `dataSource.transaction(async (manager) => …)` has a query runner whose `isTransactionActive`
 * TypeORM keeps itself, and `connection.options.type` names the driver.
 */
export interface TypeOrmEntityManagerLike {
  readonly queryRunner?: { readonly isTransactionActive: boolean } | undefined;
  readonly connection: { readonly options: { readonly type: string } };
  query(sql: string, parameters?: unknown[]): Promise<unknown>;
}

/**
 * The part of a Prisma interactive-transaction client (the `tx` of `prisma.$transaction(async
 * (tx) => …)`) the adapter uses. Prisma removes `$transaction` from that client; its presence
 * means the handle is the root client, outside any transaction.
 */
export interface PrismaTransactionClientLike {
  $queryRawUnsafe(query: string, ...values: unknown[]): Promise<unknown>;
  /** Resolves with the number of rows changed; needed on MySQL. */
  $executeRawUnsafe?(query: string, ...values: unknown[]): Promise<number>;
  readonly $transaction?: unknown;
}

const DIALECT_OF_TYPEORM: Record<string, SqlDialect> = {
  postgres: 'postgres',
  'better-sqlite3': 'sqlite',
  sqlite: 'sqlite',
  mysql: 'mysql',
  mariadb: 'mysql',
};

/** The changed-row count of a driver's answer to a non-reading statement, whatever its shape. */
function affectedRowsOf(result: unknown): number {
  // TypeORM's mysql driver answers a write with the driver's result header; on PostgreSQL it is
  // [rows, count]; better-sqlite3 gives a run result with `changes`.
  if (typeof result === 'number') return result;
  if (Array.isArray(result)) {
    if (result.length === 2 && typeof result[1] === 'number') return result[1];
    return result.length;
  }
  const r = result as { affectedRows?: unknown; changes?: unknown } | null;
  if (typeof r?.affectedRows === 'number') return r.affectedRows;
  if (typeof r?.changes === 'number') return r.changes;
  return 0;
}

function rowsOf(result: unknown): Array<Record<string, unknown>> {
  // TypeORM answers UPDATE/DELETE on PostgreSQL with [rows, count] and a non-reading statement
  // on SQLite with a run result; every statement the outbox sends through it has RETURNING or is a SELECT.
  if (!Array.isArray(result)) return [];
  if (result.length === 2 && Array.isArray(result[0]) && typeof result[1] === 'number')
    return result[0] as Array<Record<string, unknown>>;
  return result as Array<Record<string, unknown>>;
}

/**
 * Adapts a TypeORM `EntityManager` inside `dataSource.transaction(…)` (PostgreSQL or SQLite). The
 * transaction check is TypeORM's own `queryRunner.isTransactionActive`.
 */
export function typeOrmTransaction(manager: TypeOrmEntityManagerLike): SqlTransaction {
  const type = manager?.connection?.options?.type;
  const dialect = type === undefined ? undefined : DIALECT_OF_TYPEORM[type];
  if (!dialect) {
    throw new RocketError(
      'INVALID_ARGUMENT',
      `typeOrmTransaction supports the postgres, better-sqlite3, sqlite, mysql and mariadb drivers; got ${String(type)}`,
    );
  }
  return {
    dialect,
    query: async (sql, params) => rowsOf(await manager.query(sql, [...params])),
    execute: async (sql, params) => affectedRowsOf(await manager.query(sql, [...params])),
    inTransaction: async () => manager.queryRunner?.isTransactionActive === true,
  };
}

/**
 * Adapts a Prisma interactive-transaction client. Prisma does not say which database it talks to
 * through the client, so the caller names it. The transaction check is structural: the
 * transaction client is the one without `$transaction`.
 */
export function prismaTransaction(tx: PrismaTransactionClientLike, dialect: SqlDialect): SqlTransaction {
  if (!tx || typeof tx.$queryRawUnsafe !== 'function')
    throw new RocketError(
      'INVALID_ARGUMENT',
      'prismaTransaction needs a Prisma client (with $queryRawUnsafe)',
    );
  if (dialect !== 'postgres' && dialect !== 'sqlite' && dialect !== 'mysql')
    throw new RocketError(
      'INVALID_ARGUMENT',
      `prismaTransaction dialect must be 'postgres', 'sqlite' or 'mysql'; got ${String(dialect)}`,
    );
  return {
    dialect,
    query: async (sql, params) => rowsOf(await tx.$queryRawUnsafe(sql, ...params)),
    execute: async (sql, params) => {
      if (typeof tx.$executeRawUnsafe !== 'function')
        throw new RocketError('INVALID_ARGUMENT', 'prismaTransaction needs $executeRawUnsafe on the client');
      return tx.$executeRawUnsafe(sql, ...params);
    },
    inTransaction: async () => typeof tx.$transaction !== 'function',
  };
}

/** True for an adapted transaction rather than a raw driver handle. */
export function isSqlTransaction(value: unknown): value is SqlTransaction {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as SqlTransaction).inTransaction === 'function' &&
    typeof (value as SqlTransaction).dialect === 'string'
  );
}

/** The error for a handle outside a transaction. */
export function notInTransaction(what: string, detail: string): RocketError {
  return new RocketError(
    'NOT_IN_TRANSACTION',
    `${what} must run inside the caller's database transaction (${detail}); ` +
      'begin a transaction and pass its connection, so the row commits or rolls back with the business change',
  );
}

/**
 * mysql2 error codes after which the same work can succeed on a retry: a deadlock or lock-wait
 * timeout (the server rolled back the statement or transaction), or a lost connection.
 */
const MYSQL_RETRIABLE = new Set([
  'ER_LOCK_DEADLOCK',
  'ER_LOCK_WAIT_TIMEOUT',
  'PROTOCOL_CONNECTION_LOST',
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'ETIMEDOUT',
  'ER_CON_COUNT_ERROR',
  'ER_SERVER_SHUTDOWN',
]);

/** Wraps a driver error as `DATABASE_ERROR`, with a hint when the table is missing. */
export function databaseError(what: string, error: unknown): RocketError {
  if (error instanceof RocketError) return error;
  // pg rejects a failed statement before the server's ReadyForQuery ('E') arrives, so a status
  // check right after a failure can still read 'T'; the server then refuses with 25P02.
  if ((error as { code?: unknown })?.code === '25P02')
    return notInTransaction(what, 'the transaction has failed; roll it back');
  const text = error instanceof Error ? error.message : String(error);
  const code = (error as { code?: unknown })?.code;
  const missing = code === '42P01' || code === 'ER_NO_SUCH_TABLE' || /no such table/i.test(text);
  const retriable =
    code === '40001' ||
    code === '40P01' ||
    (typeof code === 'string' && code.startsWith('08')) ||
    code === 'SQLITE_BUSY' ||
    (typeof code === 'string' && MYSQL_RETRIABLE.has(code));
  return new RocketError(
    'DATABASE_ERROR',
    `${what} failed: ${text}${missing ? ' (has migrate() run for this table?)' : ''}`,
    { cause: error, retriable },
  );
}
