import type { InboxMessage } from '../../src/outbox/outbox-message';
import Database from 'better-sqlite3';
import type { Database as SqliteDatabase } from 'better-sqlite3';
import { OutboxRelay } from '../../src/outbox/outbox-relay';
import { SqliteOutbox } from '../../src/outbox/sqlite-outbox';
import { SqliteInbox } from '../../src/outbox/inbox';
import { OUTBOX_ID_PROPERTY } from '../../src/outbox/outbox-message';
import { prismaTransaction, typeOrmTransaction } from '../../src/outbox/sql-transaction';
import { isRocketError } from '../../src/common/errors';
import { systemClock } from '../../src/common/clock';
import { ManualClock } from '../support/manual-clock';
import { flakyPublisher, startBrokerAndProducer, text, waitFor } from './relay-harness';

let db: SqliteDatabase;
let env: Awaited<ReturnType<typeof startBrokerAndProducer>>;
let clock: ManualClock;
let outbox: SqliteOutbox;

beforeEach(async () => {
  db = new Database(':memory:');
  db.exec('CREATE TABLE orders (id INTEGER PRIMARY KEY, total INTEGER NOT NULL)');
  // messages with a message group go to a FIFO topic (the broker refuses them on a normal one)
  env = await startBrokerAndProducer(['orders', 'payments', { topic: 'order-steps', fifo: true }]);
  clock = new ManualClock();
  outbox = new SqliteOutbox({ db, clock });
  outbox.migrate();
});

afterEach(async () => {
  await env.close();
  db.close();
});

function relay(options: Partial<ConstructorParameters<typeof OutboxRelay>[0]> = {}): OutboxRelay {
  return new OutboxRelay({ outbox, producer: env.producer, clock, ...options });
}

test('migrate twice is fine and the table has Debezium outbox columns', () => {
  outbox.migrate();
  const columns = (db.prepare(`PRAGMA table_info(rocketnest_outbox)`).all() as Array<{ name: string }>).map(
    (c) => c.name,
  );
  expect(columns).toEqual(expect.arrayContaining(['id', 'aggregatetype', 'aggregateid', 'type', 'payload']));
  expect(columns).toEqual(
    expect.arrayContaining(['topic', 'tag', 'keys', 'message_group', 'headers', 'attempts']),
  );
});

test('add() outside a transaction is refused and writes nothing', () => {
  let error: unknown;
  try {
    outbox.add(db, { topic: 'orders', body: 'x' });
  } catch (e) {
    error = e;
  }
  expect(isRocketError(error, 'NOT_IN_TRANSACTION')).toBe(true);
  expect((error as Error).message).toMatch(/inside the caller's database transaction/);
  expect(outbox.counts()).toEqual({ pending: 0, published: 0, parked: 0 });
});

test('a message the producer would refuse is refused by add() with INVALID_ARGUMENT', () => {
  const tx = db.transaction(() => outbox.add(db, { topic: 'bad topic!', body: 'x' }));
  expect(() => tx()).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  const empty = db.transaction(() => outbox.add(db, { topic: 'orders', body: '' }));
  expect(() => empty()).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
});

test('rollback publishes nothing', async () => {
  const placeOrder = db.transaction(() => {
    db.prepare('INSERT INTO orders (id, total) VALUES (1, 10)').run();
    outbox.add(db, { topic: 'orders', tag: 'created', body: '{"id":1}' });
    throw new Error('payment declined');
  });
  expect(() => placeOrder()).toThrow('payment declined');
  const report = await relay().runOnce();
  expect(report.claimed).toBe(0);
  expect(await env.read('orders')).toEqual([]);
  expect(db.prepare('SELECT count(*) AS n FROM orders').get()).toEqual({ n: 0 });
});

test('commit publishes exactly what was written, the row id as first key and OUTBOX_ID', async () => {
  const ids = db.transaction(() => {
    db.prepare('INSERT INTO orders (id, total) VALUES (1, 10)').run();
    return [
      outbox.add(db, {
        topic: 'orders',
        tag: 'created',
        keys: ['order-1'],
        body: '{"id":1}',
        properties: { region: 'eu' },
        aggregateType: 'Order',
        aggregateId: '1',
        type: 'OrderCreated',
      }),
      outbox.add(db, {
        topic: 'order-steps',
        tag: 'paid',
        messageGroup: 'order-1',
        body: Buffer.from([1, 2, 3]),
      }),
      outbox.add(db, { topic: 'payments', body: 'charge 10' }),
    ];
  })();
  const report = await relay().runOnce();
  expect(report).toEqual({ claimed: 3, published: 3, failed: 0, parked: 0 });
  const orders = await env.read('orders');
  const steps = await env.read('order-steps');
  expect(orders.map((m) => m.keys[0])).toEqual([ids[0]]);
  expect(steps.map((m) => m.keys[0])).toEqual([ids[1]]);
  expect(text(orders[0]!)).toBe('{"id":1}');
  expect(orders[0]!.tag).toBe('created');
  expect(orders[0]!.keys).toEqual([ids[0], 'order-1']);
  expect(orders[0]!.properties).toMatchObject({
    region: 'eu',
    [OUTBOX_ID_PROPERTY]: ids[0],
    OUTBOX_AGGREGATE_TYPE: 'Order',
    OUTBOX_AGGREGATE_ID: '1',
    OUTBOX_EVENT_TYPE: 'OrderCreated',
  });
  expect([...steps[0]!.body]).toEqual([1, 2, 3]);
  expect(steps[0]!.messageGroup).toBe('order-1');
  expect((await env.read('payments')).map(text)).toEqual(['charge 10']);
  expect(outbox.counts()).toEqual({ pending: 0, published: 3, parked: 0 });
  // Nothing is published twice.
  expect((await relay().runOnce()).claimed).toBe(0);
  expect(await env.read('orders')).toHaveLength(1);
  expect(await env.read('order-steps')).toHaveLength(1);
});

test('a message group is published strictly in order: row n+1 waits while row n is retried', async () => {
  const failFirst = new Set<string>();
  const publisher = flakyPublisher(env.producer, (m) => {
    const id = m.keys![0]!;
    if (!failFirst.has(id) && m.body.toString() === 'g-1') {
      failFirst.add(id);
      return true;
    }
    return false;
  });
  db.transaction(() => {
    for (let i = 1; i <= 3; i++) outbox.add(db, { topic: 'order-steps', messageGroup: 'g', body: `g-${i}` });
    outbox.add(db, { topic: 'orders', body: 'loose' });
  })();
  const r = relay({ producer: publisher, retryBackoffMinMs: 1000 });
  expect(await r.runOnce()).toMatchObject({ claimed: 2, published: 1, failed: 1 });
  expect((await env.read('orders')).map(text)).toEqual(['loose']);
  // Still backing off: the group's head is not available, so nothing of the group is claimed.
  expect((await r.runOnce()).claimed).toBe(0);
  clock.advance(1000);
  for (let i = 0; i < 3; i++) expect((await r.runOnce()).published).toBe(1);
  expect((await env.read('orders')).map(text)).toEqual(['loose']);
  expect((await env.read('order-steps')).map(text)).toEqual(['g-1', 'g-2', 'g-3']);
  const row = db
    .prepare(`SELECT attempts, last_error FROM rocketnest_outbox WHERE payload = ?`)
    .get(Buffer.from('g-1'));
  expect(row).toEqual({ attempts: 2, last_error: null });
});

test('a poison row is retried with backoff, parked after max attempts, and stops holding its group back', async () => {
  const failed: number[] = [];
  db.transaction(() => {
    outbox.add(db, { topic: 'no-such-topic', messageGroup: 'g', body: 'poison' });
    outbox.add(db, { topic: 'order-steps', messageGroup: 'g', body: 'next' });
  })();
  const r = relay({ maxAttempts: 3, retryBackoffMinMs: 100, retryBackoffMaxMs: 150 });
  let parked = 0;
  r.on('outbox.failed', (e) => failed.push(e.retryAtMs - clock.now()));
  r.on('outbox.parked', () => parked++);
  expect(await r.runOnce()).toMatchObject({ claimed: 1, failed: 1 });
  clock.advance(99);
  expect((await r.runOnce()).claimed).toBe(0);
  clock.advance(1);
  expect(await r.runOnce()).toMatchObject({ claimed: 1, failed: 1 });
  clock.advance(150);
  expect(await r.runOnce()).toMatchObject({ claimed: 1, parked: 1 });
  expect(failed).toEqual([100, 150]);
  expect(parked).toBe(1);
  const poison = db
    .prepare(`SELECT status, attempts, last_error FROM rocketnest_outbox WHERE topic = 'no-such-topic'`)
    .get() as {
    status: string;
    attempts: number;
    last_error: string;
  };
  expect(poison.status).toBe('parked');
  expect(poison.attempts).toBe(3);
  expect(poison.last_error).toMatch(/TOPIC_NOT_FOUND|no-such-topic/);
  // The group moves on past the parked row.
  expect(await r.runOnce()).toMatchObject({ claimed: 1, published: 1 });
  expect((await env.read('order-steps')).map(text)).toEqual(['next']);
  expect(outbox.requeueParked()).toBe(1);
  expect(outbox.counts()).toEqual({ pending: 1, published: 1, parked: 0 });
});

test('cleanup deletes published rows past retention and keeps pending and parked ones', async () => {
  db.transaction(() => {
    outbox.add(db, { topic: 'orders', body: 'a' });
    outbox.add(db, { topic: 'orders', body: 'b' });
  })();
  const r = relay({ retentionMs: 10_000, cleanupBatchSize: 1 });
  await r.runOnce();
  db.transaction(() => outbox.add(db, { topic: 'orders', body: 'c' }))();
  clock.advance(9_999);
  expect(await r.cleanup()).toBe(0);
  clock.advance(2);
  expect(await r.cleanup()).toBe(2);
  expect(outbox.counts()).toEqual({ pending: 1, published: 0, parked: 0 });
});

test('a started relay is woken by add() and close() lets the batch in flight finish and be marked', async () => {
  const live = new SqliteOutbox({ db });
  const r = new OutboxRelay({ outbox: live, producer: env.producer, pollIntervalMs: 60_000 });
  await r.start();
  db.transaction(() => live.add(db, { topic: 'orders', body: 'woken' }))();
  await waitFor(() => live.counts().published === 1, 'the relay to publish after add()');
  expect((await env.read('orders')).map(text)).toEqual(['woken']);
  // A batch in flight when close() is called is finished and marked.
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  const slow = {
    send: async (m: Parameters<typeof env.producer.send>[0]) => {
      await held;
      return env.producer.send(m);
    },
  };
  await r.close();
  const r2 = new OutboxRelay({ outbox: live, producer: slow, pollIntervalMs: 60_000, clock: systemClock });
  await r2.start();
  db.transaction(() => live.add(db, { topic: 'orders', body: 'in flight' }))();
  await waitFor(
    () =>
      live.counts().pending === 1 &&
      db.prepare(`SELECT locked_by FROM rocketnest_outbox WHERE status = 'pending'`).get() !== undefined &&
      (
        db.prepare(`SELECT locked_by FROM rocketnest_outbox WHERE status = 'pending'`).get() as {
          locked_by: string | null;
        }
      ).locked_by !== null,
    'the row to be claimed',
  );
  const closed = r2.close();
  release();
  await closed;
  expect(live.counts()).toEqual({ pending: 0, published: 2, parked: 0 });
  await expect(r2.runOnce()).rejects.toMatchObject({ code: 'CLOSED' });
});

test('inbox: a duplicate is skipped, so the handler effect happens once; a failed handler records nothing', () => {
  const inbox = new SqliteInbox({ consumer: 'payment-service' });
  inbox.migrate(db);
  inbox.migrate(db);
  db.exec('CREATE TABLE charges (order_id TEXT)');
  const message = { msgId: 'm-1', keys: ['row-1'], properties: { [OUTBOX_ID_PROPERTY]: 'row-1' } };
  const consume = db.transaction((m: InboxMessage) =>
    inbox.process(db, m, (tx) => tx.prepare('INSERT INTO charges VALUES (?)').run('order-1')),
  );
  expect(consume(message).status).toBe('processed');
  // A re-send has another message id but the same outbox id.
  expect(consume({ ...message, msgId: 'm-2' }).status).toBe('duplicate');
  expect(db.prepare('SELECT count(*) AS n FROM charges').get()).toEqual({ n: 1 });
  // A retry copy of a plain send has its own id and names the original in __ORIGIN_MSG_ID.
  const plain = { msgId: 'p-1', keys: [] as string[], properties: {} as Record<string, string> };
  expect(consume(plain).status).toBe('processed');
  expect(consume({ ...plain, msgId: 'p-2', properties: { __ORIGIN_MSG_ID: 'p-1' } }).status).toBe(
    'duplicate',
  );
  expect(db.prepare('SELECT count(*) AS n FROM charges').get()).toEqual({ n: 2 });
  // Another consumer processes it for itself.
  const other = new SqliteInbox({ consumer: 'audit' });
  expect(db.transaction(() => other.process(db, message, () => 'ok'))()).toEqual({
    status: 'processed',
    key: 'row-1',
    result: 'ok',
  });
  // A handler that throws rolls back the key with its work; the next delivery processes it.
  const failing = db.transaction(() =>
    inbox.process(db, { msgId: 'm-3' }, () => {
      throw new Error('handler failed');
    }),
  );
  expect(() => failing()).toThrow('handler failed');
  expect(db.transaction(() => inbox.process(db, { msgId: 'm-3' }, () => 1))().status).toBe('processed');
  expect(() => inbox.process(db, { msgId: 'm-4' }, () => 1)).toThrow(
    expect.objectContaining({ code: 'NOT_IN_TRANSACTION' }),
  );
});

/** A TypeORM EntityManager's shape over a real better-sqlite3 connection, with TypeORM's own BEGIN tracking. */
function typeOrmManager(conn: SqliteDatabase) {
  const queryRunner = { isTransactionActive: false };
  return {
    queryRunner,
    connection: { options: { type: 'better-sqlite3' } },
    async query(sql: string, parameters: unknown[] = []) {
      const statement = conn.prepare(sql);
      return statement.reader ? statement.all(...parameters) : statement.run(...parameters);
    },
    async transaction<T>(work: () => Promise<T>): Promise<T> {
      conn.exec('BEGIN');
      queryRunner.isTransactionActive = true;
      try {
        const result = await work();
        conn.exec('COMMIT');
        return result;
      } catch (error) {
        conn.exec('ROLLBACK');
        throw error;
      } finally {
        queryRunner.isTransactionActive = false;
      }
    },
  };
}

test('TypeORM and Prisma adapters on SQLite: add() in their transaction, refused outside it', async () => {
  const manager = typeOrmManager(db);
  await expect(outbox.add(typeOrmTransaction(manager), { topic: 'orders', body: 'x' })).rejects.toMatchObject(
    {
      code: 'NOT_IN_TRANSACTION',
    },
  );
  const id = await manager.transaction(() =>
    outbox.add(typeOrmTransaction(manager), { topic: 'orders', body: 'typeorm' }),
  );
  await expect(
    manager.transaction(async () => {
      await outbox.add(typeOrmTransaction(manager), { topic: 'orders', body: 'rolled back' });
      throw new Error('abort');
    }),
  ).rejects.toThrow('abort');

  const prismaRoot = {
    $transaction: async () => undefined,
    $queryRawUnsafe: async (sql: string, ...values: unknown[]) => db.prepare(sql).all(...values),
  };
  const prismaTx = { $queryRawUnsafe: prismaRoot.$queryRawUnsafe };
  await expect(
    outbox.add(prismaTransaction(prismaRoot, 'sqlite'), { topic: 'orders', body: 'x' }),
  ).rejects.toMatchObject({
    code: 'NOT_IN_TRANSACTION',
  });
  db.exec('BEGIN');
  await outbox.add(prismaTransaction(prismaTx, 'sqlite'), { topic: 'orders', body: 'prisma' });
  db.exec('COMMIT');
  await expect(
    outbox.add(prismaTransaction(prismaTx, 'postgres'), { topic: 'orders', body: 'x' }),
  ).rejects.toMatchObject({
    code: 'INVALID_ARGUMENT',
  });

  const inbox = new SqliteInbox({ consumer: 'c' });
  inbox.migrate(db);
  const outcome = await manager.transaction(() =>
    inbox.process(typeOrmTransaction(manager), { msgId: 'm' }, async () => 'done'),
  );
  expect(outcome).toEqual({ status: 'processed', key: 'm', result: 'done' });

  await relay().runOnce();
  const published = await env.read('orders');
  expect(published.map(text)).toEqual(['typeorm', 'prisma']);
  expect(published[0]!.keys[0]).toBe(id);
});

test('database failures are typed: a missing table names migrate(), and a started relay reports and recovers', async () => {
  const fresh = new Database(':memory:');
  try {
    const unmigrated = new SqliteOutbox({ db: fresh });
    fresh.exec('BEGIN');
    expect(() => unmigrated.add(fresh, { topic: 'orders', body: 'x' })).toThrow(
      expect.objectContaining({ code: 'DATABASE_ERROR', message: expect.stringMatching(/migrate\(\)/) }),
    );
    fresh.exec('ROLLBACK');
    const r = new OutboxRelay({ outbox: unmigrated, producer: env.producer, pollIntervalMs: 5 });
    await expect(r.runOnce()).rejects.toMatchObject({ code: 'DATABASE_ERROR' });
    const errors: string[] = [];
    r.on('outbox.error', (e) => errors.push(e.operation));
    await r.start();
    await waitFor(() => errors.includes('batch'), 'the relay to report the failed batch');
    unmigrated.migrate();
    fresh.transaction(() => unmigrated.add(fresh, { topic: 'orders', body: 'recovered' }))();
    await waitFor(() => unmigrated.counts().published === 1, 'the relay to recover');
    await r.close();
    expect((await env.read('orders')).map(text)).toEqual(['recovered']);
  } finally {
    fresh.close();
  }
});

test('options are checked: table names are plain identifiers, relay limits are in range', () => {
  expect(() => new SqliteOutbox({ db, table: 'outbox; DROP TABLE orders' })).toThrow(
    expect.objectContaining({ code: 'INVALID_OPTION' }),
  );
  expect(() => new SqliteOutbox({ db, table: 'app.outbox' })).toThrow(
    expect.objectContaining({ code: 'INVALID_OPTION' }),
  );
  expect(() => relay({ batchSize: 0 })).toThrow(expect.objectContaining({ code: 'INVALID_OPTION' }));
  expect(() => relay({ retryBackoffMinMs: 10, retryBackoffMaxMs: 5 })).toThrow(
    expect.objectContaining({ code: 'INVALID_OPTION' }),
  );
  expect(() => new SqliteInbox({ consumer: '' })).toThrow(
    expect.objectContaining({ code: 'INVALID_OPTION' }),
  );
});
