import type { Pool, PoolConnection } from 'mysql2/promise';
import { OutboxRelay } from '../../src/outbox/outbox-relay';
import { MysqlOutbox } from '../../src/outbox/mysql-outbox';
import { MysqlInbox } from '../../src/outbox/inbox';
import { prismaTransaction, typeOrmTransaction } from '../../src/outbox/sql-transaction';
import { OUTBOX_ID_PROPERTY } from '../../src/outbox/outbox-message';
import { ManualClock } from '../support/manual-clock';
import { freshMysqlSchema, requireMysql } from './mysql-support';
import { startBrokerAndProducer, text } from './relay-harness';

/**
 * The outbox and inbox contract on the MariaDB (or MySQL 8) server of the machine, each test in a
 * database of its own: the cases of postgres-outbox.test.ts, plus MySQL's own failure paths.
 */
let available = false;
let db: Awaited<ReturnType<typeof freshMysqlSchema>>;
let pool: Pool;
let env: Awaited<ReturnType<typeof startBrokerAndProducer>>;
let clock: ManualClock;
let outbox: MysqlOutbox;

beforeAll(async () => {
  available = await requireMysql();
});

beforeEach(async () => {
  if (!available) return;
  db = await freshMysqlSchema();
  pool = db.pool;
  await pool.query('CREATE TABLE orders (id INT PRIMARY KEY, total INT NOT NULL) ENGINE=InnoDB');
  env = await startBrokerAndProducer(['orders', 'payments']);
  clock = new ManualClock();
  outbox = new MysqlOutbox({ pool, table: 'outbox', clock });
  await outbox.migrate();
});

afterEach(async () => {
  if (!available) return;
  await env.close();
  await db.drop();
});

/** Runs `work` in a transaction on a pooled connection; commits, or rolls back on a throw. */
async function inTransaction<T>(work: (c: PoolConnection) => Promise<T>): Promise<T> {
  const c = await pool.getConnection();
  try {
    await c.beginTransaction();
    const result = await work(c);
    await c.commit();
    return result;
  } catch (error) {
    await c.rollback();
    throw error;
  } finally {
    c.release();
  }
}

function relay(options: Partial<ConstructorParameters<typeof OutboxRelay>[0]> = {}): OutboxRelay {
  return new OutboxRelay({ outbox, producer: env.producer, clock, ...options });
}

const myTest = (name: string, fn: () => Promise<void>, timeoutMs?: number): void =>
  test(
    name,
    async () => {
      if (available) await fn();
    },
    timeoutMs,
  );

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

myTest(
  'migrate twice, and from two callers at once, is fine; bodies are LONGBLOB, times BIGINT ms',
  async () => {
    await outbox.migrate();
    const other = new MysqlOutbox({ pool, table: 'outbox2' });
    await Promise.all([other.migrate(), other.migrate(), outbox.migrate()]);
    const [rows] = await pool.query(
      `SELECT column_name AS name, data_type AS type FROM information_schema.columns
      WHERE table_schema = ? AND table_name = 'outbox'`,
      [db.schema],
    );
    const types = Object.fromEntries(
      (rows as Array<{ name: string; type: string }>).map((r) => [r.name, r.type]),
    );
    expect(types).toMatchObject({
      id: 'char',
      payload: 'longblob',
      keys: 'text',
      created_at_ms: 'bigint',
      available_at_ms: 'bigint',
      status: 'varchar',
    });
  },
);

myTest(
  'add() refuses a pool, a connection outside a transaction, and a wrong-dialect ORM handle',
  async () => {
    const c = await pool.getConnection();
    try {
      await expect(outbox.add(c, { topic: 'orders', body: 'x' })).rejects.toMatchObject({
        code: 'NOT_IN_TRANSACTION',
      });
      await expect(outbox.add(pool, { topic: 'orders', body: 'x' })).rejects.toMatchObject({
        code: 'NOT_IN_TRANSACTION',
        message: expect.stringMatching(/Pool/),
      });
      // A handle without mysql2's serverStatus is checked with a savepoint.
      const bare = { query: (sql: string, values?: unknown[]) => c.query(sql, values) };
      await expect(outbox.add(bare, { topic: 'orders', body: 'x' })).rejects.toMatchObject({
        code: 'NOT_IN_TRANSACTION',
      });
      await c.beginTransaction();
      await outbox.add(bare, { topic: 'orders', body: 'bare handle' });
      await outbox.add(c, { topic: 'orders', body: 'connection' });
      await c.commit();
      const pg = {
        dialect: 'postgres' as const,
        query: async () => [],
        execute: async () => 0,
        inTransaction: async () => true,
      };
      await expect(outbox.add(pg, { topic: 'orders', body: 'x' })).rejects.toMatchObject({
        code: 'INVALID_ARGUMENT',
      });
    } finally {
      c.destroy(); // never back to the pool mid-transaction if an assertion failed
    }
    expect(await outbox.counts()).toEqual({ pending: 2, published: 0, parked: 0 });
  },
);

myTest('rollback publishes nothing', async () => {
  await expect(
    inTransaction(async (c) => {
      await c.query('INSERT INTO orders VALUES (1, 10)');
      await outbox.add(c, { topic: 'orders', tag: 'created', body: '{"id":1}' });
      throw new Error('payment declined');
    }),
  ).rejects.toThrow('payment declined');
  expect((await relay().runOnce()).claimed).toBe(0);
  expect(await env.read('orders')).toEqual([]);
  expect(await outbox.counts()).toEqual({ pending: 0, published: 0, parked: 0 });
});

myTest('commit publishes exactly what was written, once', async () => {
  const ids = await inTransaction(async (c) => {
    await c.query('INSERT INTO orders VALUES (1, 10)');
    return [
      await outbox.add(c, {
        topic: 'orders',
        tag: 'created',
        keys: ['order-1'],
        properties: { region: 'eu' },
        body: '{"id":1}',
      }),
      await outbox.add(c, { topic: 'orders', messageGroup: 'order-1', body: Buffer.from([0, 255, 7]) }),
      await outbox.add(c, { topic: 'payments', body: 'charge', delayMs: 0 }),
    ];
  });
  expect(await relay().runOnce()).toEqual({ claimed: 3, published: 3, failed: 0, parked: 0 });
  const orders = await env.read('orders');
  expect(orders.map((m) => m.keys[0])).toEqual(ids.slice(0, 2));
  expect(orders[0]).toMatchObject({ tag: 'created', keys: [ids[0], 'order-1'] });
  expect(orders[0]!.properties).toMatchObject({ region: 'eu', [OUTBOX_ID_PROPERTY]: ids[0] });
  expect(text(orders[0]!)).toBe('{"id":1}');
  expect([...orders[1]!.body]).toEqual([0, 255, 7]);
  expect((await env.read('payments')).map(text)).toEqual(['charge']);
  expect(await outbox.counts()).toEqual({ pending: 0, published: 3, parked: 0 });
  expect((await relay().runOnce()).claimed).toBe(0);
});

myTest(
  'a poison row is parked after max attempts, then its group moves on; requeue and cleanup',
  async () => {
    await inTransaction(async (c) => {
      await outbox.add(c, { topic: 'missing-topic', messageGroup: 'g', body: 'poison' });
      await outbox.add(c, { topic: 'orders', messageGroup: 'g', body: 'after' });
    });
    const r = relay({ maxAttempts: 2, retryBackoffMinMs: 50, retentionMs: 1000, cleanupBatchSize: 1 });
    expect(await r.runOnce()).toMatchObject({ claimed: 1, failed: 1 });
    expect((await r.runOnce()).claimed).toBe(0);
    clock.advance(50);
    expect(await r.runOnce()).toMatchObject({ claimed: 1, parked: 1 });
    const [rows] = await pool.query(
      `SELECT status, attempts, last_error FROM outbox WHERE topic = 'missing-topic'`,
    );
    expect((rows as Array<Record<string, unknown>>)[0]).toMatchObject({ status: 'parked', attempts: 2 });
    expect(await r.runOnce()).toMatchObject({ claimed: 1, published: 1 });
    expect((await env.read('orders')).map(text)).toEqual(['after']);
    expect(await outbox.requeueParked()).toBe(1);
    clock.advance(1001);
    expect(await r.cleanup()).toBe(1);
    expect(await outbox.counts()).toEqual({ pending: 1, published: 0, parked: 0 });
  },
);

myTest(
  'an add() in this process wakes a sleeping relay soon after commit (its clock never polls)',
  async () => {
    const live = new MysqlOutbox({ pool, table: 'outbox' });
    // The relay's clock never moves: it never polls, so only the outbox's wake-ups can run it.
    const still = new ManualClock(Date.now() + 60_000);
    const r = new OutboxRelay({ outbox: live, producer: env.producer, pollIntervalMs: 1_000, clock: still });
    await r.start();
    try {
      await sleep(100);
      await inTransaction((c) => live.add(c, { topic: 'orders', body: 'woken' }));
      for (let i = 0; i < 200 && (await live.counts()).published === 0; i++) await sleep(10);
      expect((await live.counts()).published).toBe(1);
    } finally {
      await r.close();
    }
  },
);

myTest(
  'two relays never publish a row twice and keep every group in order',
  async () => {
    const groups = ['a', 'b', 'c', 'd'];
    const perGroup = 25;
    const relays = [0, 1].map(
      (i) =>
        new OutboxRelay({
          outbox: new MysqlOutbox({ pool, table: 'outbox' }),
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
            await inTransaction(async (c) => {
              for (let k = n; k < n + 5; k++)
                await outbox.add(c, { topic: 'orders', messageGroup: group, body: `${group}:${k}` });
              await outbox.add(c, { topic: 'payments', body: `${group}:${n}` });
            });
          }
        }),
      );
      const total = groups.length * perGroup;
      for (let i = 0; i < 500 && (await outbox.counts()).published < total + total / 5; i++) await sleep(20);
    } finally {
      await Promise.all(relays.map((r) => r.close()));
    }
    const orders = await env.read('orders');
    const ids = orders.map((m) => m.properties[OUTBOX_ID_PROPERTY]);
    expect(new Set(ids).size).toBe(ids.length);
    expect(orders).toHaveLength(groups.length * perGroup);
    for (const group of groups) {
      const seen = orders.filter((m) => m.messageGroup === group).map((m) => Number(text(m).split(':')[1]));
      expect(seen).toEqual(Array.from({ length: perGroup }, (_, k) => k));
    }
    expect(await env.read('payments')).toHaveLength((groups.length * perGroup) / 5);
    expect(byRelay[0]! + byRelay[1]!).toBe(groups.length * perGroup * 1.2);
  },
  60_000,
);

myTest('writers of one group commit in seq order: a second writer waits for the first', async () => {
  const first = await pool.getConnection();
  const second = await pool.getConnection();
  try {
    await first.beginTransaction();
    await outbox.add(first, { topic: 'orders', messageGroup: 'g', body: 'first' });
    await second.beginTransaction();
    let secondDone = false;
    const secondAdd = outbox
      .add(second, { topic: 'orders', messageGroup: 'g', body: 'second' })
      .then(() => (secondDone = true));
    await sleep(200);
    expect(secondDone).toBe(false); // blocked on the group's row lock
    await first.commit();
    await secondAdd;
    await second.commit();
  } finally {
    first.release();
    second.release();
  }
  await relay().runOnce();
  await relay().runOnce();
  expect((await env.read('orders')).map(text)).toEqual(['first', 'second']);
});

myTest('a lock-wait timeout on add() is a retriable DATABASE_ERROR and leaves no row', async () => {
  const holder = await pool.getConnection();
  const waiter = await pool.getConnection();
  try {
    await holder.beginTransaction();
    await outbox.add(holder, { topic: 'orders', messageGroup: 'g', body: 'holder' });
    await waiter.query('SET SESSION innodb_lock_wait_timeout = 1');
    await waiter.beginTransaction();
    await expect(
      outbox.add(waiter, { topic: 'orders', messageGroup: 'g', body: 'waiter' }),
    ).rejects.toMatchObject({
      code: 'DATABASE_ERROR',
      retriable: true,
      message: expect.stringMatching(/Lock wait timeout/i),
    });
    await waiter.rollback();
    await holder.rollback();
  } finally {
    holder.release();
    waiter.destroy();
  }
  expect(await outbox.counts()).toEqual({ pending: 0, published: 0, parked: 0 });
});

myTest(
  'a connection lost mid-transaction: add() rejects retriable, the transaction is gone, no row',
  async () => {
    const victim = await pool.getConnection();
    try {
      await victim.beginTransaction();
      await outbox.add(victim, { topic: 'orders', body: 'before the cut' });
      const [[{ id }]] = (await victim.query('SELECT CONNECTION_ID() AS id')) as unknown as [
        [{ id: number }],
      ];
      await pool.query(`KILL ${id}`);
      await expect(outbox.add(victim, { topic: 'orders', body: 'after the cut' })).rejects.toMatchObject({
        code: 'DATABASE_ERROR',
        retriable: true,
      });
    } finally {
      victim.destroy();
    }
    expect(await outbox.counts()).toEqual({ pending: 0, published: 0, parked: 0 });
    expect((await relay().runOnce()).claimed).toBe(0);
  },
);

myTest('a claim whose connection dies is released: another relay publishes the rows', async () => {
  await inTransaction((c) => outbox.add(c, { topic: 'orders', body: 'held' }));
  const batch = await outbox.claim(10, clock.now());
  expect(batch.rows).toHaveLength(1);
  // Another relay skips the locked row meanwhile.
  expect((await relay().runOnce()).claimed).toBe(0);
  const [threads] = await pool.query(
    `SELECT id FROM information_schema.processlist WHERE db = ? AND id <> CONNECTION_ID() AND command = 'Sleep'`,
    [db.schema],
  );
  // Kill every idle connection of this schema: the claim's among them (the pool reconnects the rest).
  for (const { id } of threads as Array<{ id: number }>)
    await pool.query(`KILL ${id}`).catch(() => undefined);
  await expect(
    batch.complete([{ seq: batch.rows[0]!.seq, status: 'published', atMs: clock.now() }]),
  ).rejects.toMatchObject({
    code: 'DATABASE_ERROR',
  });
  let report = await relay().runOnce();
  for (let i = 0; i < 50 && report.claimed === 0; i++) {
    await sleep(50);
    report = await relay().runOnce();
  }
  expect(report).toMatchObject({ claimed: 1, published: 1 });
  expect((await env.read('orders')).map(text)).toEqual(['held']);
});

myTest(
  'inbox: a duplicate is skipped; a concurrent duplicate waits for the first and is skipped',
  async () => {
    const inbox = new MysqlInbox({ consumer: 'billing', table: 'inbox' });
    await inbox.migrate(pool);
    await inbox.migrate(pool);
    await pool.query('CREATE TABLE charges (order_id VARCHAR(32) NOT NULL) ENGINE=InnoDB');
    const message = { msgId: 'm-1', properties: { [OUTBOX_ID_PROPERTY]: 'row-1' } };
    const charge = (c: PoolConnection) => c.query(`INSERT INTO charges VALUES ('1')`);
    const first = await inTransaction((c) => inbox.process(c, message, charge));
    expect(first).toMatchObject({ status: 'processed', key: 'row-1' });
    expect(await inTransaction((c) => inbox.process(c, message, charge))).toEqual({
      status: 'duplicate',
      key: 'row-1',
    });

    // A handler that throws rolls the key back with its writes: the redelivery runs it again.
    const other = { msgId: 'm-2' };
    await expect(
      inTransaction((c) =>
        inbox.process(c, other, async (tx) => {
          await charge(tx);
          throw new Error('handler failed');
        }),
      ),
    ).rejects.toThrow('handler failed');
    expect(await inTransaction((c) => inbox.process(c, other, charge))).toMatchObject({
      status: 'processed',
    });

    // Two deliveries of one message at once: the second waits on the key's lock, then is a duplicate.
    const third = { msgId: 'm-3' };
    const a = await pool.getConnection();
    const b = await pool.getConnection();
    try {
      await a.beginTransaction();
      await b.beginTransaction();
      expect(await inbox.process(a, third, charge)).toMatchObject({ status: 'processed' });
      const later = inbox.process(b, third, charge);
      await sleep(100);
      await a.commit();
      expect(await later).toMatchObject({ status: 'duplicate' });
      await b.commit();
    } finally {
      a.release();
      b.release();
    }
    const [[{ n }]] = (await pool.query('SELECT count(*) AS n FROM charges')) as unknown as [[{ n: number }]];
    expect(Number(n)).toBe(3);
    await expect(inbox.process(pool as never, third, charge)).rejects.toMatchObject({
      code: 'NOT_IN_TRANSACTION',
    });
  },
);

myTest('TypeORM (mysql/mariadb driver) and Prisma transactions through the adapters', async () => {
  const c = await pool.getConnection();
  try {
    const query = async (sql: string, params?: unknown[]) => (await c.query(sql, params))[0];
    const manager = (active: boolean) => ({
      queryRunner: { isTransactionActive: active },
      connection: { options: { type: 'mariadb' } },
      query,
    });
    await expect(
      outbox.add(typeOrmTransaction(manager(false)), { topic: 'orders', body: 'x' }),
    ).rejects.toMatchObject({
      code: 'NOT_IN_TRANSACTION',
    });
    await c.beginTransaction();
    await outbox.add(typeOrmTransaction(manager(true)), {
      topic: 'orders',
      messageGroup: 'g',
      body: 'typeorm',
    });
    const prisma = {
      $queryRawUnsafe: (sql: string, ...values: unknown[]) => query(sql, values),
      $executeRawUnsafe: async (sql: string, ...values: unknown[]) =>
        ((await c.query(sql, values))[0] as { affectedRows: number }).affectedRows,
    };
    await expect(
      outbox.add(prismaTransaction({ ...prisma, $transaction: () => undefined }, 'mysql'), {
        topic: 'orders',
        body: 'x',
      }),
    ).rejects.toMatchObject({ code: 'NOT_IN_TRANSACTION' });
    await outbox.add(prismaTransaction(prisma, 'mysql'), {
      topic: 'orders',
      messageGroup: 'g',
      body: 'prisma',
    });
    const inbox = new MysqlInbox({ consumer: 'c', table: 'inbox' });
    await inbox.migrate(pool);
    const tx = prismaTransaction(prisma, 'mysql');
    expect((await inbox.process(tx, { msgId: 'x' }, () => 1)).status).toBe('processed');
    expect((await inbox.process(tx, { msgId: 'x' }, () => 1)).status).toBe('duplicate');
    await c.commit();
  } finally {
    c.release();
  }
  await relay().runOnce();
  await relay().runOnce();
  expect((await env.read('orders')).map(text)).toEqual(['typeorm', 'prisma']);
});
