// @rocketnest/core-broker/outbox: the transactional outbox and inbox (docs/outbox.md). Tables on
// PostgreSQL (pg), MySQL/MariaDB (mysql2) or SQLite (better-sqlite3), handed in by the caller; ORM adapters; the relay that
// publishes committed rows; the inbox that makes a consumer idempotent.
export { PostgresOutbox } from '../outbox/postgres-outbox';
export type { PostgresOutboxOptions } from '../outbox/postgres-outbox';
export { SqliteOutbox } from '../outbox/sqlite-outbox';
export { MysqlOutbox } from '../outbox/mysql-outbox';
export type { MysqlOutboxOptions } from '../outbox/mysql-outbox';
export type { SqliteOutboxOptions } from '../outbox/sqlite-outbox';
export { OutboxRelay } from '../outbox/outbox-relay';
export type {
  OutboxRelayOptions,
  OutboxRelayEvents,
  OutboxPublisher,
  RelayBatchReport,
} from '../outbox/outbox-relay';
export type { RelaySource, ClaimedBatch } from '../outbox/relay-source';
export { PostgresInbox, SqliteInbox, MysqlInbox } from '../outbox/inbox';
export type { InboxOptions, InboxOutcome } from '../outbox/inbox';
export {
  OUTBOX_ID_PROPERTY,
  OUTBOX_AGGREGATE_TYPE_PROPERTY,
  OUTBOX_AGGREGATE_ID_PROPERTY,
  OUTBOX_EVENT_TYPE_PROPERTY,
  defaultInboxKey,
} from '../outbox/outbox-message';
export type { OutboxMessage, OutboxRow, InboxMessage } from '../outbox/outbox-message';
export { DEFAULT_OUTBOX_TABLE, DEFAULT_INBOX_TABLE } from '../outbox/outbox-schema';
export type { OutboxStatus } from '../outbox/outbox-schema';
export { typeOrmTransaction, prismaTransaction } from '../outbox/sql-transaction';
export type {
  SqlTransaction,
  SqlDialect,
  TypeOrmEntityManagerLike,
  PrismaTransactionClientLike,
} from '../outbox/sql-transaction';
export type {
  PgQueryable,
  PgClientLike,
  PgPoolLike,
  PgPoolClientLike,
  PgResult,
  SqliteDatabaseLike,
  SqliteStatementLike,
  MysqlConnectionLike,
  MysqlPoolConnectionLike,
  MysqlPoolLike,
} from '../outbox/database-types';
