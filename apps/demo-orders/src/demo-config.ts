import * as path from 'node:path';
import { DEFAULT_PG_SCHEMA, PG_SCHEMA_NAME } from './postgres-database';

/** Default time after which an unpaid order is cancelled. */
export const DEFAULT_ORDER_TIMEOUT_MS = 15_000;
/** Default share of ordinary cards the simulated provider declines. */
export const DEFAULT_PAYMENT_FAILURE_RATE = 0.2;
/** Default HTTP port of the order service. */
export const DEFAULT_PORT = 3000;
/** Default interface the order service listens on (loopback: it is a demo). */
export const DEFAULT_HOST = '127.0.0.1';
/** Default data directory (broker store, one SQLite file per service unless DATABASE_URL), relative to the working directory. */
export const DEFAULT_DATA_DIR = path.join('data', 'demo-orders');

/** Default bearer token of the external events endpoint (the demo listens on loopback only by default). */
export const DEFAULT_EXTERNAL_EVENTS_TOKEN = 'demo-external-token';

/** A configuration value that cannot be used; the message names the variable and what it accepts. */
export class DemoConfigError extends Error {
  override readonly name = 'DemoConfigError';
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(`${variable}: ${message}`);
  }
}

/** Everything the demo process can be told, resolved from the environment by {@link demoConfigFromEnv}. */
export interface DemoConfig {
  /** HTTP port of the order service; 0 picks a free one. Env `PORT`, default 3000. */
  port: number;
  /** Env `HOST`, default 127.0.0.1. */
  host: string;
  /** Broker store (`<dir>/broker`) and the services' SQLite files. Env `DEMO_DATA_DIR`, default `data/demo-orders`. */
  dataDir: string;
  /** Unpaid orders are cancelled after this. Env `ORDER_TIMEOUT_MS`, default 15 000. */
  orderTimeoutMs: number;
  /** Share (0–1) of ordinary cards declined. Env `PAYMENT_FAILURE_RATE`, default 0.2. */
  paymentFailureRate: number;
  /** Bearer token of `POST /external/topics/order-notes/messages`. Env `EXTERNAL_EVENTS_TOKEN`, default `demo-external-token`. */
  externalEventsToken: string;
  /**
   * Env `DATABASE_URL`: `postgres://…` puts both services on PostgreSQL; `mysql://…` (or
   * `mariadb://…`, read as `mysql://`) puts the order service on MySQL 8 / MariaDB 10.6+, in that
   * URL's database, and leaves the payment service on SQLite. Unset: SQLite files in `dataDir`.
   */
  databaseUrl?: string | undefined;
  /** Schema of the services' tables on PostgreSQL (env `DEMO_PG_SCHEMA`, default `rocketnest_demo`). */
  postgresSchema?: string | undefined;
  /** Name servers of a standalone broker or cluster (env `ROCKETNEST_NAMESRV`, comma-separated); none: embedded broker. */
  nameServers: string[] | undefined;
  /**
   * Apache RocketMQ 5's proxy (env `ROCKETMQ_PROXY`, gRPC `host:port`): both services run on that
   * cluster through the Apache driver. Its topics must exist with their types (`APACHE_DEMO_TOPICS` in apache-cluster.ts:
   * `pnpm demo:apache` starts a local cluster with them). Not with `ROCKETNEST_NAMESRV`.
   */
  apacheProxy?: string | undefined;
}

function integer(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new DemoConfigError(name, `expected an integer from ${min} to ${max}, got "${raw}"`);
  }
  return value;
}

function databaseUrl(raw: string | undefined): string | undefined {
  const value = raw?.trim();
  if (!value) return undefined;
  if (/^mariadb:\/\//.test(value)) return value.replace(/^mariadb:/, 'mysql:');
  if (!/^(postgres(ql)?|mysql):\/\//.test(value)) {
    throw new DemoConfigError(
      'DATABASE_URL',
      'expected postgres://user@host:5432/database or mysql://user@host:3306/database',
    );
  }
  return value;
}

function postgresSchema(raw: string | undefined): string {
  const value = raw?.trim();
  if (!value) return DEFAULT_PG_SCHEMA;
  if (!PG_SCHEMA_NAME.test(value)) {
    throw new DemoConfigError(
      'DEMO_PG_SCHEMA',
      `expected a lower-case schema name (letters, digits, _; 63 at most), got "${value}"`,
    );
  }
  return value;
}

/** Reads and validates the demo's environment variables. Throws {@link DemoConfigError}. */
export function demoConfigFromEnv(env: NodeJS.ProcessEnv = process.env): DemoConfig {
  const rate = env.PAYMENT_FAILURE_RATE;
  const paymentFailureRate = rate === undefined || rate === '' ? DEFAULT_PAYMENT_FAILURE_RATE : Number(rate);
  if (!(paymentFailureRate >= 0 && paymentFailureRate <= 1)) {
    throw new DemoConfigError('PAYMENT_FAILURE_RATE', `expected a number from 0 to 1, got "${rate}"`);
  }
  const namesrv = env.ROCKETNEST_NAMESRV?.trim();
  const nameServers = namesrv
    ? namesrv
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean)
    : undefined;
  for (const address of nameServers ?? []) {
    if (!/^[^:\s]+:\d{1,5}$/.test(address)) {
      throw new DemoConfigError('ROCKETNEST_NAMESRV', `expected host:port[,host:port…], got "${address}"`);
    }
  }
  const apacheProxy = env.ROCKETMQ_PROXY?.trim() || undefined;
  if (apacheProxy !== undefined && !/^[^:\s;]+:\d{1,5}(;[^:\s;]+:\d{1,5})*$/.test(apacheProxy)) {
    throw new DemoConfigError(
      'ROCKETMQ_PROXY',
      `expected host:port (the proxy's gRPC port), got "${apacheProxy}"`,
    );
  }
  if (apacheProxy !== undefined && nameServers !== undefined) {
    throw new DemoConfigError(
      'ROCKETMQ_PROXY',
      'set ROCKETMQ_PROXY (Apache RocketMQ) or ROCKETNEST_NAMESRV (RocketNest brokers), not both',
    );
  }
  return {
    port: integer(env, 'PORT', DEFAULT_PORT, 0, 65_535),
    host: env.HOST || DEFAULT_HOST,
    dataDir: path.resolve(env.DEMO_DATA_DIR || DEFAULT_DATA_DIR),
    orderTimeoutMs: integer(env, 'ORDER_TIMEOUT_MS', DEFAULT_ORDER_TIMEOUT_MS, 100, 24 * 3_600_000),
    paymentFailureRate,
    externalEventsToken: env.EXTERNAL_EVENTS_TOKEN || DEFAULT_EXTERNAL_EVENTS_TOKEN,
    databaseUrl: databaseUrl(env.DATABASE_URL),
    postgresSchema: postgresSchema(env.DEMO_PG_SCHEMA),
    nameServers,
    apacheProxy,
  };
}

/** True when `DATABASE_URL` names MySQL/MariaDB (the order service only; see {@link DemoConfig.databaseUrl}). */
export function isMysqlUrl(url: string | undefined): url is string {
  return url !== undefined && url.startsWith('mysql://');
}
