import 'reflect-metadata';
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createConnection } from 'mysql2/promise';
import { demoConfigFromEnv, type DemoConfig } from '../src/demo-config';
import { startDemo, type RunningDemo } from '../src/demo-app';
import { runSmokeChecks } from '../src/smoke-checks';
import { testDemoConfig } from './support/demo-test-app';

/**
 * The demo with its order service on MariaDB/MySQL (`DATABASE_URL=mysql://…`): the orders, the
 * outbox and the inbox in a database of its own per run (dropped afterwards); the payment service
 * stays on SQLite. The server is `TEST_MYSQL_URL`, else `mysql://root@127.0.0.1:3306/test`. On CI
 * (`CI=true`) an unreachable server fails the tests; elsewhere they are skipped with the reason.
 */
const SERVER_URL = process.env.TEST_MYSQL_URL || 'mysql://root@127.0.0.1:3306/test';
const DATABASE = `demo_test_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
const DATABASE_URL = SERVER_URL.replace(/\/[^/]*$/, `/${DATABASE}`);
const onCi = process.env.CI === 'true';

let unreachable: string | undefined;
let dataDir: string;
let demo: RunningDemo | undefined;

async function query<R>(sql: string, params: unknown[] = []): Promise<R[]> {
  const c = await createConnection({ uri: SERVER_URL, connectTimeout: 3_000 });
  try {
    return (await c.query(sql, params))[0] as R[];
  } finally {
    await c.end();
  }
}

beforeAll(async () => {
  try {
    await query(`CREATE DATABASE ${DATABASE}`);
  } catch (error) {
    unreachable = `MySQL/MariaDB at ${SERVER_URL} is unreachable: ${(error as Error).message}`;
    if (!onCi) console.warn(`demo-mysql.test.ts skipped: ${unreachable}`);
  }
});

afterAll(async () => {
  if (!unreachable) await query(`DROP DATABASE IF EXISTS ${DATABASE}`);
});

beforeEach(() => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'demo-orders-mysql-test-'));
});

afterEach(async () => {
  await demo?.close();
  demo = undefined;
  fs.rmSync(dataDir, { recursive: true, force: true });
});

function available(): boolean {
  if (!unreachable) return true;
  if (onCi) throw new Error(`${unreachable} (CI=true: MySQL/MariaDB is required)`);
  return false;
}

function config(overrides: Partial<DemoConfig> = {}): DemoConfig {
  return testDemoConfig(dataDir, { databaseUrl: DATABASE_URL, ...overrides });
}

describe('the demo with its order service on MySQL/MariaDB (DATABASE_URL=mysql://…)', () => {
  test('every path passes the smoke checks; the order rows are in MariaDB and survive a restart', async () => {
    if (!available()) return;
    demo = await startDemo(config(), { logger: false });
    const passed: string[] = [];
    await runSmokeChecks(demo.url, {
      orderTimeoutMs: 2_000,
      externalEventsToken: 'test-token',
      log: (line) => passed.push(line),
    });
    expect(passed).toHaveLength(6);
    const before = (await (await fetch(`${demo.url}/orders`)).json()) as Array<{
      id: string;
      status: string;
    }>;
    expect(before.map((o) => o.status).sort()).toEqual(['cancelled', 'failed', 'paid']);
    await demo.close();
    demo = undefined;

    // the order service wrote no SQLite file; the payment service did
    expect(fs.existsSync(path.join(dataDir, 'order-service.db'))).toBe(false);
    expect(fs.existsSync(path.join(dataDir, 'payment-service.db'))).toBe(true);
    const tables = await query<{ name: string }>(
      'SELECT table_name AS name FROM information_schema.tables WHERE table_schema = ? ORDER BY table_name',
      [DATABASE],
    );
    expect(tables.map((t) => t.name).sort()).toEqual([
      'order_timeline',
      'orders',
      'rocketnest_inbox',
      'rocketnest_outbox',
      'rocketnest_outbox_groups',
    ]);
    const orders = await query<{ status: string }>(`SELECT status FROM ${DATABASE}.orders`);
    expect(orders.map((o) => o.status).sort()).toEqual(['cancelled', 'failed', 'paid']);
    const outbox = await query<{ status: string; n: number }>(
      `SELECT status, count(*) AS n FROM ${DATABASE}.rocketnest_outbox GROUP BY status`,
    );
    // per order: created, timeout and its outcome (paid | failed | cancelled), plus the external note
    expect(outbox.map((r) => ({ status: r.status, n: Number(r.n) }))).toEqual([
      { status: 'published', n: 10 },
    ]);

    demo = await startDemo(config(), { logger: false });
    expect(await (await fetch(`${demo.url}/orders`)).json()).toEqual(before);
  }, 30_000);

  test('DATABASE_URL accepts mysql:// and mariadb:// (read as mysql://)', () => {
    expect(demoConfigFromEnv({ DATABASE_URL: 'mysql://root@127.0.0.1:3306/shop' })).toMatchObject({
      databaseUrl: 'mysql://root@127.0.0.1:3306/shop',
    });
    expect(demoConfigFromEnv({ DATABASE_URL: 'mariadb://root@127.0.0.1:3306/shop' })).toMatchObject({
      databaseUrl: 'mysql://root@127.0.0.1:3306/shop',
    });
    expect(() => demoConfigFromEnv({ DATABASE_URL: 'mongodb://localhost/db' })).toThrow(/DATABASE_URL/);
  });
});
