import { randomBytes } from 'node:crypto';
import { createPool, type Pool } from 'mysql2/promise';

/** The MariaDB/MySQL server the project's tests use (running locally and on CI). */
export const MYSQL_URL = process.env.ROCKETNEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test';

let reachable: Promise<string | undefined> | undefined;

/** Undefined when the server answers; else why not. Cached for the test file. */
export function mysqlUnavailable(): Promise<string | undefined> {
  reachable ??= (async () => {
    const pool = createPool({ uri: MYSQL_URL, connectionLimit: 1, connectTimeout: 3000 });
    try {
      await pool.query('SELECT 1');
      return undefined;
    } catch (error) {
      return `MySQL/MariaDB at ${MYSQL_URL} is unreachable: ${(error as Error).message}`;
    } finally {
      await pool.end();
    }
  })();
  return reachable;
}

/**
 * Skips (with a printed reason) when the server is unreachable, except under CI=true, where the
 * test fails instead: CI must run these tests.
 */
export async function requireMysql(): Promise<boolean> {
  const why = await mysqlUnavailable();
  if (why === undefined) return true;
  if (process.env.CI === 'true') throw new Error(`${why} (CI=true: MySQL tests must run)`);
  console.warn(`skipping MySQL test: ${why}`);
  return false;
}

/** A database (MySQL's schema) of its own, unique per call, with a pool on it; dropped by `drop()`. */
export async function freshMysqlSchema(
  connectionLimit = 10,
): Promise<{ pool: Pool; schema: string; url: string; drop(): Promise<void> }> {
  const schema = `rn_test_${randomBytes(5).toString('hex')}`;
  const admin = createPool({ uri: MYSQL_URL, connectionLimit: 1 });
  try {
    await admin.query(`CREATE DATABASE ${schema}`);
  } finally {
    await admin.end();
  }
  const url = MYSQL_URL.replace(/\/[^/]*$/, `/${schema}`);
  const pool = createPool({ uri: url, connectionLimit });
  return {
    pool,
    schema,
    url,
    drop: async () => {
      try {
        await pool.query(`DROP DATABASE IF EXISTS ${schema}`);
      } finally {
        await pool.end();
      }
    },
  };
}
