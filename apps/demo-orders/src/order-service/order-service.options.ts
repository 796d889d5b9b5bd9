import type { PostgresLocation } from '../postgres-database';

/** Injection token of {@link OrderServiceOptions}. */
export const ORDER_SERVICE_OPTIONS = Symbol('ORDER_SERVICE_OPTIONS');

export interface OrderServiceOptions {
  /** SQLite file of the order service, or `':memory:'` (unused when `postgres` is set). */
  databaseFile: string;
  /** PostgreSQL instead of SQLite: the server and the schema of the service's tables. */
  postgres?: PostgresLocation | undefined;
  /** MySQL 8 / MariaDB 10.6+ instead of SQLite: `mysql://user@host:3306/database` (its database holds the tables). */
  mysqlUrl?: string | undefined;
  /** Unpaid orders are cancelled this long after they were created (the delayed `orders`/`timeout`). */
  orderTimeoutMs: number;
  /**
   * Bearer token outside systems present to `POST /external/topics/order-notes/messages`
   * (`@rocketnest/express`). Unset: the endpoint is not mounted.
   */
  externalEventsToken?: string;
  /** Serve the push channel (`/push`) on the app's HTTP server. Default true. */
  push?: boolean;
}
