import 'reflect-metadata';
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Client } from 'pg';
import { DemoConfigError, demoConfigFromEnv, type DemoConfig } from '../src/demo-config';
import { startDemo, type RunningDemo } from '../src/demo-app';
import { runSmokeChecks } from '../src/smoke-checks';
import { testDemoConfig } from './support/demo-test-app';

/**
 * The demo on PostgreSQL (`DATABASE_URL`): both services' tables, the outbox and the inbox in a
 * schema of its own per run (dropped afterwards). The server is `TEST_DATABASE_URL`, else
 * `DATABASE_URL`, else `postgres://postgres@127.0.0.1:5432/test`. On CI (`CI=true`) an unreachable
 * server fails the tests; elsewhere they are skipped with the reason.
 */
const DATABASE_URL =
  process.env.TEST_DATABASE_URL || process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test';
const onCi = process.env.CI === 'true';
const SCHEMA = `demo_test_${randomUUID().replace(/-/g, '').slice(0, 12)}`;

let unreachable: string | undefined;
let dataDir: string;
let demo: RunningDemo | undefined;

async function query<R>(sql: string, params: unknown[] = []): Promise<R[]> {
  const client = new Client({ connectionString: DATABASE_URL, connectionTimeoutMillis: 3_000 });
  await client.connect();
  try {
    return (await client.query(sql, params)).rows as R[];
  } finally {
    await client.end();
  }
}

beforeAll(async () => {
  try {
    await query('SELECT 1');
  } catch (error) {
    unreachable = `PostgreSQL at ${DATABASE_URL} is unreachable: ${(error as Error).message}`;
    if (!onCi) console.warn(`demo-postgres.test.ts skipped: ${unreachable}`);
  }
});

afterAll(async () => {
  if (!unreachable) await query(`DROP SCHEMA IF EXISTS ${SCHEMA} CASCADE`);
});

beforeEach(() => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'demo-orders-pg-test-'));
});

afterEach(async () => {
  await demo?.close();
  demo = undefined;
  fs.rmSync(dataDir, { recursive: true, force: true });
});

/** False (after logging why) when the test should be skipped; throws on CI. */
function available(): boolean {
  if (!unreachable) return true;
  if (onCi) throw new Error(`${unreachable} (CI=true: PostgreSQL is required)`);
  return false;
}

function config(overrides: Partial<DemoConfig> = {}): DemoConfig {
  return testDemoConfig(dataDir, { databaseUrl: DATABASE_URL, postgresSchema: SCHEMA, ...overrides });
}

describe('the demo on PostgreSQL (DATABASE_URL)', () => {
  test('every path passes the smoke checks; the rows are in PostgreSQL and survive a restart', async () => {
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

    // no SQLite file was written: the services' rows, the outbox and the inbox are in the schema
    expect(fs.existsSync(path.join(dataDir, 'order-service.db'))).toBe(false);
    expect(fs.existsSync(path.join(dataDir, 'payment-service.db'))).toBe(false);
    const tables = await query<{ table_name: string }>(
      'SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY table_name',
      [SCHEMA],
    );
    expect(tables.map((t) => t.table_name)).toEqual([
      'order_timeline',
      'orders',
      'payments',
      'rocketnest_inbox',
      'rocketnest_outbox',
    ]);
    const orders = await query<{ id: string; status: string }>(`SELECT id, status FROM ${SCHEMA}.orders`);
    expect(orders.map((o) => o.status).sort()).toEqual(['cancelled', 'failed', 'paid']);
    const payments = await query<{ status: string }>(`SELECT status FROM ${SCHEMA}.payments ORDER BY status`);
    expect(payments.map((p) => p.status)).toEqual(['failed', 'succeeded']);
    const outbox = await query<{ status: string; n: string }>(
      `SELECT status, count(*) AS n FROM ${SCHEMA}.rocketnest_outbox GROUP BY status`,
    );
    // per order: created, timeout and its outcome (paid | failed | cancelled), plus the external note
    expect(outbox).toEqual([{ status: 'published', n: '10' }]);

    // restart on the same schema: the tables are created idempotently, the orders are still there
    demo = await startDemo(config(), { logger: false });
    const after = await (await fetch(`${demo.url}/orders`)).json();
    expect(after).toEqual(before);
  }, 30_000);

  test('POST /orders writes the order and its outbox rows in one transaction', async () => {
    if (!available()) return;
    demo = await startDemo(config({ orderTimeoutMs: 60_000 }), { logger: false });
    const placed = await fetch(`${demo.url}/orders`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ amountCents: 1999, card: '4000000000000119' }), // never answered
    });
    expect(placed.status).toBe(201);
    const { id, status } = (await placed.json()) as { id: string; status: string };
    expect(status).toBe('created');
    // the delayed timeout carries the order id as its key, not as a message group (RocketMQ 5
    // refuses a message group on a delayed message)
    const rows = await query<{ tag: string; message_group: string | null; delayed: boolean }>(
      `SELECT tag, message_group, delivery_time_ms IS NOT NULL AS delayed
         FROM ${SCHEMA}.rocketnest_outbox WHERE message_group = $1 OR keys = $1 ORDER BY seq`,
      [id],
    );
    expect(rows).toEqual([
      { tag: 'created', message_group: id, delayed: false },
      { tag: 'timeout', message_group: null, delayed: true },
    ]);
    // a note for an order that does not exist is refused, and nothing is written
    const refused = await fetch(`${demo.url}/external/topics/order-notes/messages`, {
      method: 'POST',
      headers: {
        'content-type': 'application/vnd.rocketnest.message+json',
        authorization: 'Bearer test-token',
      },
      body: JSON.stringify({ tag: 'note', body: { orderId: 'ord-missing', text: 'hello' } }),
    });
    expect(refused.status).toBe(400);
    const notes = await query(
      `SELECT 1 FROM ${SCHEMA}.rocketnest_outbox WHERE message_group = 'ord-missing'`,
    );
    expect(notes).toEqual([]);
  }, 30_000);

  test('DATABASE_URL and DEMO_PG_SCHEMA are read and validated', () => {
    expect(demoConfigFromEnv({})).toMatchObject({
      databaseUrl: undefined,
      postgresSchema: 'rocketnest_demo',
    });
    expect(
      demoConfigFromEnv({
        DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/test',
        DEMO_PG_SCHEMA: 'demo_1',
      }),
    ).toMatchObject({ databaseUrl: 'postgres://postgres@127.0.0.1:5432/test', postgresSchema: 'demo_1' });
    expect(() => demoConfigFromEnv({ DATABASE_URL: 'oracle://localhost/db' })).toThrow(DemoConfigError);
    expect(() => demoConfigFromEnv({ DEMO_PG_SCHEMA: 'Robert"; DROP' })).toThrow(/DEMO_PG_SCHEMA/);
  });
});
