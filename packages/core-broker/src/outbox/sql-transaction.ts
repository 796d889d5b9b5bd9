import { RocketError } from '../common/errors';

/**
 * A caller's open database transaction as the outbox and inbox use it when it comes from an ORM:
 * positional parameters (`$1` on PostgreSQL, `?` on SQLite), rows back, and whether a transaction
 * is really open. Made by {@link typeOrmTransaction} and {@link prismaTransaction}.
 */
export interface SqlTransaction {
  readonly dialect: 'postgres' | 'sqlite';
  /** Runs one statement; resolves with the rows it returned (`[]` when none). */
  query(sql: string, params: readonly unknown[]): Promise<Array<Record<string, unknown>>>;
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
  readonly $transaction?: unknown;
}

const DIALECT_OF_TYPEORM: Record<string, 'postgres' | 'sqlite'> = {
  postgres: 'postgres',
  'better-sqlite3': 'sqlite',
  sqlite: 'sqlite',
};

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
      `typeOrmTransaction supports the postgres, better-sqlite3 and sqlite drivers; got ${String(type)}`,
    );
  }
  return {
    dialect,
    query: async (sql, params) => rowsOf(await manager.query(sql, [...params])),
    inTransaction: async () => manager.queryRunner?.isTransactionActive === true,
  };
}

/**
 * Adapts a Prisma interactive-transaction client. Prisma does not say which database it talks to
 * through the client, so the caller names it. The transaction check is structural: the
 * transaction client is the one without `$transaction`.
 */
export function prismaTransaction(
  tx: PrismaTransactionClientLike,
  dialect: 'postgres' | 'sqlite',
): SqlTransaction {
  if (!tx || typeof tx.$queryRawUnsafe !== 'function')
    throw new RocketError(
      'INVALID_ARGUMENT',
      'prismaTransaction needs a Prisma client (with $queryRawUnsafe)',
    );
  if (dialect !== 'postgres' && dialect !== 'sqlite')
    throw new RocketError(
      'INVALID_ARGUMENT',
      `prismaTransaction dialect must be 'postgres' or 'sqlite'; got ${String(dialect)}`,
    );
  return {
    dialect,
    query: async (sql, params) => rowsOf(await tx.$queryRawUnsafe(sql, ...params)),
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

/** Wraps a driver error as `DATABASE_ERROR`, with a hint when the table is missing. */
export function databaseError(what: string, error: unknown): RocketError {
  if (error instanceof RocketError) return error;
  // pg rejects a failed statement before the server's ReadyForQuery ('E') arrives, so a status
  // check right after a failure can still read 'T'; the server then refuses with 25P02.
  if ((error as { code?: unknown })?.code === '25P02')
    return notInTransaction(what, 'the transaction has failed; roll it back');
  const text = error instanceof Error ? error.message : String(error);
  const code = (error as { code?: unknown })?.code;
  const missing = code === '42P01' || /no such table/i.test(text);
  const retriable =
    code === '40001' ||
    code === '40P01' ||
    (typeof code === 'string' && code.startsWith('08')) ||
    code === 'SQLITE_BUSY';
  return new RocketError(
    'DATABASE_ERROR',
    `${what} failed: ${text}${missing ? ' (has migrate() run for this table?)' : ''}`,
    { cause: error, retriable },
  );
}
