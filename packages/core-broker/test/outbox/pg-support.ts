import { randomBytes } from 'node:crypto';
import { Pool } from 'pg';

/** The database the project's tests use (running locally and on CI). */
export const PG_URL = process.env.ROCKETNEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

let reachable: Promise<string | undefined> | undefined;

/** Undefined when PostgreSQL answers; else why not. Cached for the test file. */
export function postgresUnavailable(): Promise<string | undefined> {
  reachable ??= (async () => {
    const pool = new Pool({ connectionString: PG_URL, max: 1, connectionTimeoutMillis: 3000 });
    try {
      await pool.query('SELECT 1');
      return undefined;
    } catch (error) {
      return `PostgreSQL at ${PG_URL} is unreachable: ${(error as Error).message}`;
    } finally {
      await pool.end();
    }
  })();
  return reachable;
}

/**
 * Skips (with a printed reason) when PostgreSQL is unreachable, except under CI=true, where the
 * first test fails instead: CI must run these tests.
 */
export async function requirePostgres(): Promise<boolean> {
  const why = await postgresUnavailable();
  if (why === undefined) return true;
  if (process.env.CI === 'true') throw new Error(`${why} (CI=true: PostgreSQL tests must run)`);
  console.warn(`skipping PostgreSQL test: ${why}`);
  return false;
}

/** A pool and a schema of its own (unique per run), dropped by `drop()`. */
export async function freshSchema(max = 10): Promise<{ pool: Pool; schema: string; drop(): Promise<void> }> {
  const schema = `rn_test_${randomBytes(5).toString('hex')}`;
  const pool = new Pool({ connectionString: PG_URL, max });
  await pool.query(`CREATE SCHEMA ${schema}`);
  return {
    pool,
    schema,
    drop: async () => {
      try {
        await pool.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      } finally {
        await pool.end();
      }
    },
  };
}
