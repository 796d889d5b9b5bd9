import { createPool, type Pool, type PoolConnection } from 'mysql2/promise';

/**
 * Opens a `mysql2/promise` pool on `url` (`mysql://user@host:3306/database`: the order service's
 * tables live in that database). The caller closes it with {@link closeMysqlPool}.
 */
export function openMysqlPool(url: string): Pool {
  return createPool({ uri: url, connectionLimit: 10 });
}

/**
 * Runs `work` in one transaction on one connection of `pool`: commit, or rollback when `work`
 * throws; the connection goes back to the pool, or is destroyed when the rollback failed, so a
 * broken connection is not reused.
 */
export async function inMysqlTransaction<T>(pool: Pool, work: (c: PoolConnection) => Promise<T>): Promise<T> {
  const c = await pool.getConnection();
  let broken = false;
  try {
    await c.beginTransaction();
    try {
      const result = await work(c);
      await c.commit();
      return result;
    } catch (error) {
      await c.rollback().catch(() => (broken = true));
      throw error;
    }
  } finally {
    if (broken) c.destroy();
    else c.release();
  }
}

const ended = new WeakSet<Pool>();

/** Ends `pool` (waits for its connections to be released) unless it was ended already. */
export async function closeMysqlPool(pool: Pool): Promise<void> {
  if (ended.has(pool)) return;
  ended.add(pool);
  await pool.end();
}
