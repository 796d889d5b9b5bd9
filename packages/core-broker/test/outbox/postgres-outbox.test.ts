import type { Pool, PoolClient } from 'pg';
import { OutboxRelay } from '../../src/outbox/outbox-relay';
import { PostgresOutbox } from '../../src/outbox/postgres-outbox';
import { PostgresInbox } from '../../src/outbox/inbox';
import { prismaTransaction, typeOrmTransaction } from '../../src/outbox/sql-transaction';
import { OUTBOX_ID_PROPERTY } from '../../src/outbox/outbox-message';
import { ManualClock } from '../support/manual-clock';
import { freshSchema, requirePostgres } from './pg-support';
import { startBrokerAndProducer, text } from './relay-harness';

let available = false;
let db: Awaited<ReturnType<typeof freshSchema>>;
let pool: Pool;
let env: Awaited<ReturnType<typeof startBrokerAndProducer>>;
let clock: ManualClock;
let outbox: PostgresOutbox;

beforeAll(async () => {
  available = await requirePostgres();
});

beforeEach(async () => {
  if (!available) return;
  db = await freshSchema();
  pool = db.pool;
  await pool.query(`CREATE TABLE ${db.schema}.orders (id int PRIMARY KEY, total int NOT NULL)`);
  // messages with a message group go to a FIFO topic (the broker refuses them on a normal one)
  env = await startBrokerAndProducer(['orders', 'payments', { topic: 'order-steps', fifo: true }]);
  clock = new ManualClock();
  outbox = new PostgresOutbox({ pool, table: `${db.schema}.outbox`, clock });
  await outbox.migrate();
});

afterEach(async () => {
  if (!available) return;
  await env.close();
  await db.drop();
});

/** Runs `work` in a transaction on a pooled client; commits, or rolls back on a throw. */
async function inTransaction<T>(work: (client: PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (error) {
    await client.query('ROLLBACK');
    throw error;
  } finally {
    client.release();
  }
}

function relay(options: Partial<ConstructorParameters<typeof OutboxRelay>[0]> = {}): OutboxRelay {
  return new OutboxRelay({ outbox, producer: env.producer, clock, ...options });
}

const pgTest = (name: string, fn: () => Promise<void>, timeoutMs?: number): void =>
  test(
    name,
    async () => {
      if (available) await fn();
    },
    timeoutMs,
  );

pgTest('migrate twice, and from two callers at once, is fine', async () => {
  await outbox.migrate();
  const other = new PostgresOutbox({ pool, table: `${db.schema}.outbox2` });
  await Promise.all([other.migrate(), other.migrate(), outbox.migrate()]);
  const { rows } = await pool.query(
    `SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'outbox'`,
    [db.schema],
  );
  expect(rows.map((r) => r.column_name)).toEqual(
    expect.arrayContaining([
      'id',
      'aggregatetype',
      'aggregateid',
      'type',
      'payload',
      'topic',
      'message_group',
    ]),
  );
});

pgTest('add() is refused outside a transaction, on a pool, and in a failed transaction', async () => {
  const client = await pool.connect();
  try {
    await client.query('SELECT 1');
    await expect(outbox.add(client, { topic: 'orders', body: 'x' })).rejects.toMatchObject({
      code: 'NOT_IN_TRANSACTION',
    });
    await expect(outbox.add(pool, { topic: 'orders', body: 'x' })).rejects.toMatchObject({
      code: 'NOT_IN_TRANSACTION',
    });
    await client.query('BEGIN');
    await expect(client.query('SELECT 1/0')).rejects.toThrow();
    await expect(outbox.add(client, { topic: 'orders', body: 'x' })).rejects.toMatchObject({
      code: 'NOT_IN_TRANSACTION',
      message: expect.stringMatching(/failed/),
    });
    await client.query('ROLLBACK');
    // A client without getTransactionStatus (older pg) is checked with a savepoint.
    const old = { query: (text: string, values?: unknown[]) => client.query(text, values) };
    await expect(outbox.add(old, { topic: 'orders', body: 'x' })).rejects.toMatchObject({
      code: 'NOT_IN_TRANSACTION',
    });
    await client.query('BEGIN');
    await outbox.add(old, { topic: 'orders', body: 'old client' });
    await client.query('COMMIT');
  } finally {
    client.release(true); // never back to the pool mid-transaction if an assertion failed
  }
  expect(await outbox.counts()).toEqual({ pending: 1, published: 0, parked: 0 });
});

pgTest('rollback publishes nothing', async () => {
  await expect(
    inTransaction(async (client) => {
      await client.query(`INSERT INTO ${db.schema}.orders VALUES (1, 10)`);
      await outbox.add(client, { topic: 'orders', tag: 'created', body: '{"id":1}' });
      throw new Error('payment declined');
    }),
  ).rejects.toThrow('payment declined');
  expect((await relay().runOnce()).claimed).toBe(0);
  expect(await env.read('orders')).toEqual([]);
  expect(await outbox.counts()).toEqual({ pending: 0, published: 0, parked: 0 });
});

pgTest('commit publishes exactly what was written', async () => {
  const ids = await inTransaction(async (client) => {
    await client.query(`INSERT INTO ${db.schema}.orders VALUES (1, 10)`);
    return [
      await outbox.add(client, {
        topic: 'orders',
        tag: 'created',
        keys: ['order-1'],
        properties: { region: 'eu' },
        body: '{"id":1}',
      }),
      await outbox.add(client, {
        topic: 'order-steps',
        messageGroup: 'order-1',
        body: Buffer.from([0, 255, 7]),
      }),
      await outbox.add(client, { topic: 'payments', body: 'charge', delayMs: 0 }),
    ];
  });
  expect(await relay().runOnce()).toEqual({ claimed: 3, published: 3, failed: 0, parked: 0 });
  const orders = await env.read('orders');
  const steps = await env.read('order-steps');
  expect(orders.map((m) => m.keys[0])).toEqual(ids.slice(0, 1));
  expect(steps.map((m) => m.keys[0])).toEqual(ids.slice(1, 2));
  expect(orders[0]).toMatchObject({ tag: 'created', keys: [ids[0], 'order-1'] });
  expect(orders[0]!.properties).toMatchObject({ region: 'eu', [OUTBOX_ID_PROPERTY]: ids[0] });
  expect(text(orders[0]!)).toBe('{"id":1}');
  expect([...steps[0]!.body]).toEqual([0, 255, 7]);
  expect((await env.read('payments')).map(text)).toEqual(['charge']);
  expect(await outbox.counts()).toEqual({ pending: 0, published: 3, parked: 0 });
  expect((await relay().runOnce()).claimed).toBe(0);
});

pgTest('a poison row is parked after max attempts, then its group moves on', async () => {
  await inTransaction(async (client) => {
    await outbox.add(client, { topic: 'missing-topic', messageGroup: 'g', body: 'poison' });
    await outbox.add(client, { topic: 'order-steps', messageGroup: 'g', body: 'after' });
  });
  const r = relay({ maxAttempts: 2, retryBackoffMinMs: 50 });
  expect(await r.runOnce()).toMatchObject({ claimed: 1, failed: 1 });
  expect((await r.runOnce()).claimed).toBe(0);
  clock.advance(50);
  expect(await r.runOnce()).toMatchObject({ claimed: 1, parked: 1 });
  const { rows } = await pool.query(
    `SELECT status, attempts, last_error FROM ${db.schema}.outbox WHERE topic = 'missing-topic'`,
  );
  expect(rows[0]).toMatchObject({ status: 'parked', attempts: 2 });
  expect(rows[0].last_error).toMatch(/missing-topic/);
  expect(await r.runOnce()).toMatchObject({ claimed: 1, published: 1 });
  expect((await env.read('order-steps')).map(text)).toEqual(['after']);
  expect(await outbox.requeueParked()).toBe(1);
});

pgTest('cleanup deletes published rows past retention', async () => {
  await inTransaction(async (client) => {
    for (let i = 0; i < 5; i++) await outbox.add(client, { topic: 'orders', body: `m${i}` });
  });
  const r = relay({ retentionMs: 1000, cleanupBatchSize: 2 });
  await r.runOnce();
  expect(await r.cleanup()).toBe(0);
  clock.advance(1001);
  expect(await r.cleanup()).toBe(5);
  expect(await outbox.counts()).toEqual({ pending: 0, published: 0, parked: 0 });
});

pgTest('LISTEN/NOTIFY wakes a relay at commit (its clock never moves, so it never polls)', async () => {
  const live = new PostgresOutbox({ pool, table: `${db.schema}.outbox` });
  // the relay's clock never moves: it never polls, so only a NOTIFY can wake it
  const still = new ManualClock(Date.now() + 60_000);
  const r = new OutboxRelay({ outbox: live, producer: env.producer, pollIntervalMs: 1_000, clock: still });
  await r.start();
  try {
    // Let the first (empty) batch finish so the relay is asleep.
    await new Promise((resolve) => setTimeout(resolve, 100));
    await inTransaction((client) => live.add(client, { topic: 'orders', body: 'notified' }));
    for (let i = 0; i < 200 && (await live.counts()).published === 0; i++)
      await new Promise((r2) => setTimeout(r2, 10));
    expect((await live.counts()).published).toBe(1);
  } finally {
    await r.close();
  }
});

pgTest('a relay whose LISTEN connection is killed listens again and is still woken by NOTIFY', async () => {
  const live = new PostgresOutbox({ pool, table: `${db.schema}.outbox` });
  // the relay's clock never moves: it never polls, so only a NOTIFY can wake it
  const still = new ManualClock(Date.now() + 60_000);
  const r = new OutboxRelay({ outbox: live, producer: env.producer, pollIntervalMs: 1_000, clock: still });
  const errors: string[] = [];
  r.on('outbox.error', (e) => errors.push(e.operation));
  await r.start();
  const listeners = async (): Promise<number[]> =>
    (
      await pool.query(`SELECT pid FROM pg_stat_activity WHERE query = $1 AND state = 'idle'`, [
        `LISTEN "${live.channel}"`,
      ])
    ).rows.map((row) => row.pid as number);
  try {
    const [first] = await listeners();
    expect(first).toBeDefined();
    await pool.query('SELECT pg_terminate_backend($1)', [first]);
    for (let i = 0; i < 200 && !errors.includes('listen'); i++)
      await new Promise((resolve) => setTimeout(resolve, 10));
    expect(errors).toContain('listen');
    let again: number[] = [];
    for (let i = 0; i < 200 && again.length === 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
      again = await listeners();
    }
    expect(again).toHaveLength(1);
    expect(again[0]).not.toBe(first);
    await inTransaction((client) => live.add(client, { topic: 'orders', body: 'after reconnect' }));
    for (let i = 0; i < 200 && (await live.counts()).published === 0; i++)
      await new Promise((resolve) => setTimeout(resolve, 10));
    expect((await live.counts()).published).toBe(1);
  } finally {
    await r.close();
  }
});

pgTest(
  'two relays never publish a row twice and keep every group in order',
  async () => {
    const groups = ['a', 'b', 'c', 'd'];
    const perGroup = 25;
    const relays = [0, 1].map(
      (i) =>
        new OutboxRelay({
          outbox: new PostgresOutbox({ pool, table: `${db.schema}.outbox` }),
          producer: env.producer,
          batchSize: 3,
          pollIntervalMs: 20,
          relayId: `relay-${i}`,
        }),
    );
    const byRelay = [0, 0];
    relays.forEach((r, i) => r.on('outbox.published', () => byRelay[i]!++));
    await Promise.all(relays.map((r) => r.start()));
    try {
      // Writers for every group at once, several rows per transaction, while the relays run.
      await Promise.all(
        groups.map(async (group) => {
          for (let n = 0; n < perGroup; n += 5) {
            await inTransaction(async (client) => {
              for (let k = n; k < n + 5; k++)
                await outbox.add(client, {
                  topic: 'order-steps',
                  messageGroup: group,
                  body: `${group}:${k}`,
                });
              await outbox.add(client, { topic: 'payments', body: `${group}:${n}` });
            });
          }
        }),
      );
      const total = groups.length * perGroup;
      for (let i = 0; i < 500 && (await outbox.counts()).published < total + total / 5; i++)
        await new Promise((resolve) => setTimeout(resolve, 20));
    } finally {
      await Promise.all(relays.map((r) => r.close()));
    }
    const orders = await env.read('order-steps');
    const ids = orders.map((m) => m.properties[OUTBOX_ID_PROPERTY]);
    expect(new Set(ids).size).toBe(ids.length);
    expect(orders).toHaveLength(groups.length * perGroup);
    for (const group of groups) {
      const seen = orders.filter((m) => m.messageGroup === group).map((m) => Number(text(m).split(':')[1]));
      expect(seen).toEqual(Array.from({ length: perGroup }, (_, k) => k));
    }
    expect(await env.read('payments')).toHaveLength((groups.length * perGroup) / 5);
    expect(byRelay[0]! + byRelay[1]!).toBe(groups.length * perGroup * 1.2);
    // Both relays took part (batches of 3 while rows keep arriving).
    expect(Math.min(...byRelay)).toBeGreaterThan(0);
  },
  60_000,
);

pgTest(
  'inbox: a duplicate is skipped; a concurrent duplicate waits for the first and is skipped',
  async () => {
    const inbox = new PostgresInbox({ consumer: 'payments', table: `${db.schema}.inbox` });
    await inbox.migrate(pool);
    await inbox.migrate(pool);
    await pool.query(`CREATE TABLE ${db.schema}.charges (order_id text)`);
    const message = { msgId: 'm1', properties: { [OUTBOX_ID_PROPERTY]: 'row-1' } };
    const handle = (m: typeof message) =>
      inTransaction((client) =>
        inbox.process(client, m, async (tx) => {
          await tx.query(`INSERT INTO ${db.schema}.charges VALUES ('o1')`, []);
          return 'charged';
        }),
      );
    expect(await handle(message)).toEqual({ status: 'processed', key: 'row-1', result: 'charged' });
    expect(await handle({ ...message, msgId: 'm2' })).toEqual({ status: 'duplicate', key: 'row-1' });
    const concurrent = await Promise.all([
      handle({ ...message, msgId: 'x', properties: { [OUTBOX_ID_PROPERTY]: 'row-2' } }),
      handle({ ...message, msgId: 'y', properties: { [OUTBOX_ID_PROPERTY]: 'row-2' } }),
    ]);
    expect(concurrent.map((o) => o.status).sort()).toEqual(['duplicate', 'processed']);
    expect((await pool.query(`SELECT count(*)::int AS n FROM ${db.schema}.charges`)).rows[0].n).toBe(2);
    await expect(inbox.process(pool, message, () => 1)).rejects.toMatchObject({ code: 'NOT_IN_TRANSACTION' });
  },
);

pgTest('TypeORM and Prisma adapters over pg: add() inside their transaction, refused outside', async () => {
  const client = await pool.connect();
  try {
    let active = false;
    const manager = {
      get queryRunner() {
        return { isTransactionActive: active };
      },
      connection: { options: { type: 'postgres' } },
      async query(sql: string, params: unknown[] = []) {
        return (await client.query(sql, params)).rows;
      },
    };
    await expect(
      outbox.add(typeOrmTransaction(manager), { topic: 'orders', body: 'x' }),
    ).rejects.toMatchObject({
      code: 'NOT_IN_TRANSACTION',
    });
    await client.query('BEGIN');
    active = true;
    await outbox.add(typeOrmTransaction(manager), { topic: 'orders', body: 'typeorm' });
    await client.query('COMMIT');
    active = false;

    const query = async (sql: string, ...values: unknown[]) => (await client.query(sql, values)).rows;
    await expect(
      outbox.add(prismaTransaction({ $queryRawUnsafe: query, $transaction: () => undefined }, 'postgres'), {
        topic: 'orders',
        body: 'x',
      }),
    ).rejects.toMatchObject({ code: 'NOT_IN_TRANSACTION' });
    await client.query('BEGIN');
    await outbox.add(prismaTransaction({ $queryRawUnsafe: query }, 'postgres'), {
      topic: 'orders',
      body: 'prisma',
    });
    await client.query('ROLLBACK');
    await client.query('BEGIN');
    await outbox.add(prismaTransaction({ $queryRawUnsafe: query }, 'postgres'), {
      topic: 'orders',
      body: 'prisma 2',
    });
    await client.query('COMMIT');
  } finally {
    client.release(true); // never back to the pool mid-transaction if an assertion failed
  }
  await relay().runOnce();
  expect((await env.read('orders')).map(text)).toEqual(['typeorm', 'prisma 2']);
});
