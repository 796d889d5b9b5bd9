import Database from 'better-sqlite3';
import * as fs from 'node:fs';
import * as path from 'node:path';

/** A better-sqlite3 connection, the only database handle the services use. */
export type SqliteDatabase = Database.Database;

/** How long a statement waits for another connection's write lock before `SQLITE_BUSY`. */
export const SQLITE_BUSY_TIMEOUT_MS = 5_000;

/**
 * Opens (creating it and its directory when absent) a service's SQLite file, or an in-memory
 * database for `':memory:'`. File databases run in WAL mode so readers never wait for the writer.
 */
export function openSqliteDatabase(file: string, busyTimeoutMs = SQLITE_BUSY_TIMEOUT_MS): SqliteDatabase {
  if (file !== ':memory:') fs.mkdirSync(path.dirname(file), { recursive: true });
  const db = new Database(file, { timeout: busyTimeoutMs });
  if (file !== ':memory:') db.pragma('journal_mode = WAL');
  db.pragma('foreign_keys = ON');
  return db;
}
