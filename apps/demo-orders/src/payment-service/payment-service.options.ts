import type { PostgresLocation } from '../postgres-database';

/** Injection token of {@link PaymentServiceOptions}. */
export const PAYMENT_SERVICE_OPTIONS = Symbol('PAYMENT_SERVICE_OPTIONS');

export interface PaymentServiceOptions {
  /** SQLite file of the payment service, or `':memory:'` (unused when `postgres` is set). */
  databaseFile: string;
  /** PostgreSQL instead of SQLite: the server and the schema of the service's table. */
  postgres?: PostgresLocation | undefined;
  /** Share (0–1) of ordinary cards the simulated provider declines. */
  failureRate: number;
  /** Source of randomness for the simulated provider, `[0, 1)`. Default `Math.random`; tests inject their own. */
  random?: () => number;
}
