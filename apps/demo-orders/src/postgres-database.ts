import { Pool, type PoolClient } from 'pg';

/** Where a service keeps its tables on PostgreSQL: the server, and the schema (created when absent). */
export interface PostgresLocation {
  /** `postgres://user@host:5432/database` (env `DATABASE_URL`). */
  url: string;
  /** Schema of the service's tables (env `DEMO_PG_SCHEMA`, default `rocketnest_demo`). */
  schema: string;
}

/** Default schema of the demo's tables on PostgreSQL. */
export const DEFAULT_PG_SCHEMA = 'rocketnest_demo';

/** Schema names the demo accepts (it interpolates them into SQL). */
export const PG_SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * Opens a `pg.Pool` whose connections resolve unqualified table names in `location.schema`, and
 * creates that schema when absent. The caller closes the pool (`pool.end()`).
 */
export async function openPostgresPool(location: PostgresLocation): Promise<Pool> {
  if (!PG_SCHEMA_NAME.test(location.schema)) {
    throw new RangeError(`invalid PostgreSQL schema name "${location.schema}"`);
  }
  const pool = new Pool({
    connectionString: location.url,
    max: 10,
    options: `-c search_path=${location.schema}`,
  });
  // an idle client's connection dropping is reported here; the pool replaces it on the next checkout
  pool.on('error', (error) => console.warn(`PostgreSQL pool (${location.schema}): ${error.message}`));
  try {
    // two services starting at once may both try to create it: serialize on an advisory lock
    const client = await pool.connect();
    try {
      await client.query('SELECT pg_advisory_lock(hashtext($1))', [`rocketnest-demo:${location.schema}`]);
      try {
        await client.query(`CREATE SCHEMA IF NOT EXISTS ${location.schema}`);
      } finally {
        await client.query('SELECT pg_advisory_unlock(hashtext($1))', [`rocketnest-demo:${location.schema}`]);
      }
    } finally {
      client.release();
    }
  } catch (error) {
    await pool.end();
    throw error;
  }
  return pool;
}

/**
 * Runs `work` in one transaction on one client checked out of `pool`: BEGIN, then COMMIT, or
 * ROLLBACK when `work` throws; the client goes back to the pool in every case (destroyed when
 * the rollback failed, so a broken connection is not reused).
 */
export async function inPostgresTransaction<T>(
  pool: Pool,
  work: (client: PoolClient) => Promise<T>,
): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    await client.query('BEGIN');
    try {
      const result = await work(client);
      await client.query('COMMIT');
      return result;
    } catch (error) {
      await client.query('ROLLBACK').catch((rollbackError: unknown) => {
        broken = rollbackError instanceof Error ? rollbackError : new Error(String(rollbackError));
      });
      throw error;
    }
  } finally {
    client.release(broken);
  }
}

/** Ends `pool` (waits for checked-out clients to be released) unless it was ended already. */
export async function closePostgresPool(pool: Pool): Promise<void> {
  if (!pool.ended) await pool.end();
}
