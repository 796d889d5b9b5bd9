import { RocketError } from '../common/errors';

/**
 * The outbox table, one row per message to publish. A superset of Debezium's outbox event router
 * columns (`id`, `aggregatetype`, `aggregateid`, `type`, `payload`), so a team can later point CDC
 * at the same table, plus what RocketNest's relay needs. Times are epoch milliseconds in `bigint`
 * (PostgreSQL) / `INTEGER` (SQLite) columns named with their unit, so the relay's injected clock is
 * the only clock involved.
 *
 * | column            | PostgreSQL                              | SQLite                             | meaning |
 * |-------------------|-----------------------------------------|------------------------------------|---------|
 * | `seq`             | `bigint generated always as identity`   | `INTEGER PRIMARY KEY AUTOINCREMENT`| insertion order; orders a message group |
 * | `id`              | `uuid primary key`                      | `TEXT NOT NULL UNIQUE`             | row id, sent as the message's first key |
 * | `aggregatetype`   | `text not null`                         | `TEXT NOT NULL`                    | Debezium: the aggregate's type (default: topic) |
 * | `aggregateid`     | `text not null`                         | `TEXT NOT NULL`                    | Debezium: the aggregate's id (default: message group, else id) |
 * | `type`            | `text not null`                         | `TEXT NOT NULL`                    | Debezium: the event type (default: tag, else `''`) |
 * | `payload`         | `bytea not null`                        | `BLOB NOT NULL`                    | the message body |
 * | `topic`           | `text not null`                         | `TEXT NOT NULL`                    | RocketNest topic |
 * | `tag`             | `text`                                  | `TEXT`                             | message tag |
 * | `keys`            | `text`                                  | `TEXT`                             | business keys, space separated |
 * | `message_group`   | `text`                                  | `TEXT`                             | FIFO group; the relay keeps its order |
 * | `headers`         | `jsonb`                                 | `TEXT` (JSON)                      | user properties of the message |
 * | `delivery_time_ms`| `bigint`                                | `INTEGER`                          | delayed delivery time, epoch ms |
 * | `created_at_ms`   | `bigint not null`                       | `INTEGER NOT NULL`                 | when `add()` ran |
 * | `available_at_ms` | `bigint not null`                       | `INTEGER NOT NULL`                 | not claimed before (retry backoff) |
 * | `attempts`        | `integer not null default 0`            | `INTEGER NOT NULL DEFAULT 0`       | publish attempts so far |
 * | `last_error`      | `text`                                  | `TEXT`                             | the last failure, for operators |
 * | `status`          | `text not null` (`pending`, `published`, `parked`) | same                    | lifecycle |
 * | `published_at_ms` | `bigint`                                | `INTEGER`                          | when the broker stored it |
 * | `locked_until_ms` | `bigint`                                | `INTEGER`                          | SQLite relay lease (unused on PostgreSQL, which locks rows) |
 * | `locked_by`       | `text`                                  | `TEXT`                             | relay holding the lease |
 *
 * MySQL and MariaDB (`MysqlOutbox`) keep the same columns and meanings with their own types:
 * `seq BIGINT AUTO_INCREMENT`, `id CHAR(36)`, `payload LONGBLOB`, `headers LONGTEXT` (JSON text),
 * `VARCHAR(255)` for the short texts, `BIGINT` epoch milliseconds (UTC by construction, millisecond
 * precision, no session time zone involved). `keys` is a reserved word there and is always quoted.
 *
 * Indexes: pending rows by (`available_at_ms`, `seq`) for the claim, pending rows by
 * (`message_group`, `seq`) for the per-group order check, published rows by `published_at_ms`
 * for retention cleanup.
 */
export const DEFAULT_OUTBOX_TABLE = 'rocketnest_outbox';
/** The inbox table: (`consumer`, `message_key`) primary key and `processed_at_ms`. */
export const DEFAULT_INBOX_TABLE = 'rocketnest_inbox';

/** Row states. A parked row is left alone by the relay until an operator requeues it. */
export type OutboxStatus = 'pending' | 'published' | 'parked';

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

/**
 * A table name as SQL: each dot-separated part (`schema.table` on PostgreSQL) must be a plain
 * identifier, and is double-quoted. Refuses anything else, so names never need escaping.
 */
export function quoteTable(name: string, allowSchema: boolean): string {
  const parts = typeof name === 'string' ? name.split('.') : [];
  if (parts.length === 0 || parts.length > (allowSchema ? 2 : 1) || !parts.every((p) => IDENTIFIER.test(p))) {
    throw new RocketError(
      'INVALID_OPTION',
      `table name ${JSON.stringify(name)} must be ${allowSchema ? '[schema.]' : ''}table made of letters, ` +
        'digits and _ (not starting with a digit, at most 63 characters each)',
    );
  }
  return parts.map((p) => `"${p}"`).join('.');
}

/** A name derived from a table name (index, channel): the dots become underscores. */
export function derivedName(table: string, suffix: string): string {
  return `${table.replace(/\./g, '_')}_${suffix}`.slice(0, 63);
}

export function postgresOutboxDdl(table: string): string[] {
  const t = quoteTable(table, true);
  // An index lives in its table's schema, so its name is derived from the table part only.
  const plain = table.split('.').pop() as string;
  const index = (suffix: string): string => `"${derivedName(plain, suffix)}"`;
  return [
    `CREATE TABLE IF NOT EXISTS ${t} (
      seq bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
      id uuid PRIMARY KEY,
      aggregatetype text NOT NULL,
      aggregateid text NOT NULL,
      type text NOT NULL,
      payload bytea NOT NULL,
      topic text NOT NULL,
      tag text,
      keys text,
      message_group text,
      headers jsonb,
      delivery_time_ms bigint,
      created_at_ms bigint NOT NULL,
      available_at_ms bigint NOT NULL,
      attempts integer NOT NULL DEFAULT 0,
      last_error text,
      status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'published', 'parked')),
      published_at_ms bigint,
      locked_until_ms bigint,
      locked_by text
    )`,
    `CREATE INDEX IF NOT EXISTS ${index('pending')} ON ${t} (available_at_ms, seq) WHERE status = 'pending'`,
    `CREATE INDEX IF NOT EXISTS ${index('group')} ON ${t} (message_group, seq) WHERE status = 'pending'`,
    `CREATE INDEX IF NOT EXISTS ${index('published')} ON ${t} (published_at_ms) WHERE status = 'published'`,
  ];
}

export function sqliteOutboxDdl(table: string): string[] {
  const t = quoteTable(table, false);
  const index = (suffix: string): string => `"${derivedName(table, suffix)}"`;
  return [
    `CREATE TABLE IF NOT EXISTS ${t} (
      seq INTEGER PRIMARY KEY AUTOINCREMENT,
      id TEXT NOT NULL UNIQUE,
      aggregatetype TEXT NOT NULL,
      aggregateid TEXT NOT NULL,
      type TEXT NOT NULL,
      payload BLOB NOT NULL,
      topic TEXT NOT NULL,
      tag TEXT,
      keys TEXT,
      message_group TEXT,
      headers TEXT,
      delivery_time_ms INTEGER,
      created_at_ms INTEGER NOT NULL,
      available_at_ms INTEGER NOT NULL,
      attempts INTEGER NOT NULL DEFAULT 0,
      last_error TEXT,
      status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'published', 'parked')),
      published_at_ms INTEGER,
      locked_until_ms INTEGER,
      locked_by TEXT
    )`,
    `CREATE INDEX IF NOT EXISTS ${index('pending')} ON ${t} (available_at_ms, seq) WHERE status = 'pending'`,
    `CREATE INDEX IF NOT EXISTS ${index('group')} ON ${t} (message_group, seq) WHERE status = 'pending'`,
    `CREATE INDEX IF NOT EXISTS ${index('published')} ON ${t} (published_at_ms) WHERE status = 'published'`,
  ];
}

export function postgresInboxDdl(table: string): string[] {
  return [
    `CREATE TABLE IF NOT EXISTS ${quoteTable(table, true)} (
      consumer text NOT NULL,
      message_key text NOT NULL,
      processed_at_ms bigint NOT NULL,
      PRIMARY KEY (consumer, message_key)
    )`,
  ];
}

export function sqliteInboxDdl(table: string): string[] {
  return [
    `CREATE TABLE IF NOT EXISTS ${quoteTable(table, false)} (
      consumer TEXT NOT NULL,
      message_key TEXT NOT NULL,
      processed_at_ms INTEGER NOT NULL,
      PRIMARY KEY (consumer, message_key)
    )`,
  ];
}

/**
 * A MySQL/MariaDB table name as SQL: `schema.table` or `table`, each part a plain identifier,
 * back-quoted (MySQL's identifier quote; double quotes are string literals unless ANSI_QUOTES).
 */
export function quoteMysqlTable(name: string): string {
  return quoteTable(name, true).replace(/"/g, '`');
}

/**
 * The outbox table on MySQL 8 / MariaDB 10.6+ (InnoDB, utf8mb4), and a one-row-per-group table
 * that `add()` locks so writers of one message group commit in `seq` order (MySQL has no
 * transaction-scoped advisory lock: GET_LOCK is held by the session, not the transaction).
 */
export function mysqlOutboxDdl(table: string): string[] {
  const t = quoteMysqlTable(table);
  const groups = quoteMysqlTable(mysqlGroupTable(table));
  return [
    `CREATE TABLE IF NOT EXISTS ${t} (
      seq BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
      id CHAR(36) NOT NULL,
      aggregatetype VARCHAR(255) NOT NULL,
      aggregateid VARCHAR(255) NOT NULL,
      type VARCHAR(255) NOT NULL,
      payload LONGBLOB NOT NULL,
      topic VARCHAR(255) NOT NULL,
      tag VARCHAR(255) NULL,
      \`keys\` TEXT NULL,
      message_group VARCHAR(255) NULL,
      headers LONGTEXT NULL,
      delivery_time_ms BIGINT NULL,
      created_at_ms BIGINT NOT NULL,
      available_at_ms BIGINT NOT NULL,
      attempts INT NOT NULL DEFAULT 0,
      last_error TEXT NULL,
      status VARCHAR(16) NOT NULL DEFAULT 'pending',
      published_at_ms BIGINT NULL,
      locked_until_ms BIGINT NULL,
      locked_by VARCHAR(64) NULL,
      CONSTRAINT ${derivedName(table.split('.').pop() as string, 'status')} CHECK (status IN ('pending', 'published', 'parked')),
      UNIQUE KEY id_unique (id),
      KEY pending_idx (status, available_at_ms, seq),
      KEY group_idx (message_group, status, seq),
      KEY published_idx (status, published_at_ms)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
    `CREATE TABLE IF NOT EXISTS ${groups} (
      message_group VARCHAR(255) NOT NULL PRIMARY KEY
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
  ];
}

/** The per-group lock table beside a MySQL outbox table: `<table>_groups`. */
export function mysqlGroupTable(table: string): string {
  return `${table}_groups`;
}

export function mysqlInboxDdl(table: string): string[] {
  return [
    `CREATE TABLE IF NOT EXISTS ${quoteMysqlTable(table)} (
      consumer VARCHAR(255) NOT NULL,
      message_key VARCHAR(255) NOT NULL,
      processed_at_ms BIGINT NOT NULL,
      PRIMARY KEY (consumer, message_key)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
  ];
}
