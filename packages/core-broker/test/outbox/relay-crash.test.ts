import { spawn } from 'node:child_process';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { Broker } from '../../src/broker/broker';
import { MemoryStore } from '../../src/store/memory-store';
import { BrokerServer } from '../../src/server/broker-server';
import { InProcessTransport } from '../../src/client/in-process-transport';
import { Producer } from '../../src/client/producer';
import { OutboxRelay } from '../../src/outbox/outbox-relay';
import { PostgresOutbox } from '../../src/outbox/postgres-outbox';
import { SqliteOutbox } from '../../src/outbox/sqlite-outbox';
import { MysqlInbox, PostgresInbox, SqliteInbox } from '../../src/outbox/inbox';
import { MysqlOutbox } from '../../src/outbox/mysql-outbox';
import { freshMysqlSchema, requireMysql } from './mysql-support';
import { OUTBOX_ID_PROPERTY } from '../../src/outbox/outbox-message';
import type { MessageView } from '../../src/message/message';
import { systemClock } from '../../src/common/clock';
import { readQueue } from '../support/client-harness';
import { tempDir } from '../support/temp-dir';
import { PG_URL, freshSchema, requirePostgres } from './pg-support';

const REGISTER = path.join(__dirname, '../support/swc-register.js');
const CHILD = path.join(__dirname, 'relay-crash-child.ts');

let store: MemoryStore;
let broker: Broker;
let server: BrokerServer;
let producer: Producer;

beforeEach(async () => {
  store = await MemoryStore.create({ retentionIntervalMs: 0 });
  broker = await Broker.start({ store });
  broker.createTopic({ topic: 'orders', queueCount: 1 });
  server = await BrokerServer.start({ broker, host: '127.0.0.1', port: 0 });
  producer = new Producer({ group: 'relay', transport: new InProcessTransport(broker) });
  await producer.start();
});

afterEach(async () => {
  await producer.shutdown();
  await server.close();
  await broker.close();
  await store.close();
});

/** Runs the crashing relay child; resolves when it died of SIGKILL after the broker stored the message. */
function runCrashingRelay(env: Record<string, string>): Promise<void> {
  return new Promise((resolve, reject) => {
    const { port } = server.address();
    const child = spawn(process.execPath, ['-r', REGISTER, CHILD], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...env, BROKER: `127.0.0.1:${port}`, BROKER_NAME: broker.brokerName },
    });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), 25_000);
    child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (signal === 'SIGKILL' && stdout.startsWith('stored ')) resolve();
      else reject(new Error(`relay child ended with ${code ?? signal}; stdout ${stdout}; stderr ${stderr}`));
    });
  });
}

const orders = (): Promise<MessageView[]> => readQueue(broker, 'orders', 0);

test('SQLite: kill -9 between publish and mark re-sends the row once the lease expires, and the inbox absorbs it', async () => {
  const t = tempDir('rocketnest-outbox-');
  const file = path.join(t.dir, 'app.db');
  const db = new Database(file);
  try {
    const outbox = new SqliteOutbox({ db });
    outbox.migrate();
    const inbox = new SqliteInbox({ consumer: 'billing' });
    inbox.migrate(db);
    db.exec('CREATE TABLE charges (order_id TEXT NOT NULL)');
    const id = db.transaction(() =>
      outbox.add(db, { topic: 'orders', tag: 'created', body: '{"order":7}' }),
    )();

    // A lease far longer than the test: "still leased" must not depend on how fast a loaded machine runs.
    const leaseMs = 60_000;
    await runCrashingRelay({
      DIALECT: 'sqlite',
      DB: file,
      TABLE: 'rocketnest_outbox',
      LEASE_MS: String(leaseMs),
    });
    expect((await orders()).map((m) => m.properties[OUTBOX_ID_PROPERTY])).toEqual([id]);
    expect(outbox.counts()).toEqual({ pending: 1, published: 0, parked: 0 });

    const relay = new OutboxRelay({ outbox, producer });
    expect((await relay.runOnce()).claimed).toBe(0); // still leased to the dead relay
    // A relay whose clock has passed the dead relay's lease claims the row again.
    const later = { ...systemClock, now: () => Date.now() + leaseMs + 1_000 };
    const relayAfterLease = new OutboxRelay({ outbox, producer, clock: later });
    expect(await relayAfterLease.runOnce()).toMatchObject({ claimed: 1, published: 1 });
    const delivered = await orders();
    expect(delivered.map((m) => m.properties[OUTBOX_ID_PROPERTY])).toEqual([id, id]);

    const outcomes = delivered.map((m) =>
      db.transaction(() =>
        inbox.process(db, m, (tx) => tx.prepare('INSERT INTO charges VALUES (?)').run('7')),
      )(),
    );
    expect(outcomes.map((o) => o.status)).toEqual(['processed', 'duplicate']);
    expect(db.prepare('SELECT count(*) AS n FROM charges').get()).toEqual({ n: 1 });
    expect(outbox.counts()).toEqual({ pending: 0, published: 1, parked: 0 });
  } finally {
    db.close();
    t.cleanup();
  }
});

test('PostgreSQL: kill -9 between publish and mark re-sends the row at once, and the inbox absorbs it', async () => {
  if (!(await requirePostgres())) return;
  const pg = await freshSchema();
  try {
    const table = `${pg.schema}.outbox`;
    const outbox = new PostgresOutbox({ pool: pg.pool, table });
    await outbox.migrate();
    const inbox = new PostgresInbox({ consumer: 'billing', table: `${pg.schema}.inbox` });
    await inbox.migrate(pg.pool);
    await pg.pool.query(`CREATE TABLE ${pg.schema}.charges (order_id text NOT NULL)`);
    const client = await pg.pool.connect();
    let id: string;
    try {
      await client.query('BEGIN');
      id = await outbox.add(client, { topic: 'orders', body: '{"order":7}' });
      await client.query('COMMIT');
    } finally {
      client.release();
    }

    await runCrashingRelay({ DIALECT: 'pg', DB: PG_URL, TABLE: table, LEASE_MS: '60000' });
    expect((await orders()).map((m) => m.properties[OUTBOX_ID_PROPERTY])).toEqual([id]);
    // The dead relay's connection dropped, its claim transaction rolled back: the row is pending again.
    const relay = new OutboxRelay({ outbox, producer });
    let report = await relay.runOnce();
    for (let i = 0; i < 50 && report.claimed === 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      report = await relay.runOnce();
    }
    expect(report).toMatchObject({ claimed: 1, published: 1 });
    const delivered = await orders();
    expect(delivered.map((m) => m.properties[OUTBOX_ID_PROPERTY])).toEqual([id, id]);

    const statuses: string[] = [];
    for (const message of delivered) {
      const c = await pg.pool.connect();
      try {
        await c.query('BEGIN');
        const outcome = await inbox.process(c, message, (tx) =>
          tx.query(`INSERT INTO ${pg.schema}.charges VALUES ('7')`, []),
        );
        await c.query('COMMIT');
        statuses.push(outcome.status);
      } finally {
        c.release();
      }
    }
    expect(statuses).toEqual(['processed', 'duplicate']);
    expect((await pg.pool.query(`SELECT count(*)::int AS n FROM ${pg.schema}.charges`)).rows[0].n).toBe(1);
    expect(await outbox.counts()).toEqual({ pending: 0, published: 1, parked: 0 });
  } finally {
    await pg.drop();
  }
}, 60_000);

test('MySQL/MariaDB: kill -9 between publish and mark re-sends the row at once, and the inbox absorbs it', async () => {
  if (!(await requireMysql())) return;
  const my = await freshMysqlSchema();
  try {
    const outbox = new MysqlOutbox({ pool: my.pool, table: 'outbox' });
    await outbox.migrate();
    const inbox = new MysqlInbox({ consumer: 'billing', table: 'inbox' });
    await inbox.migrate(my.pool);
    await my.pool.query('CREATE TABLE charges (order_id VARCHAR(16) NOT NULL) ENGINE=InnoDB');
    const c = await my.pool.getConnection();
    let id: string;
    try {
      await c.beginTransaction();
      id = await outbox.add(c, { topic: 'orders', body: '{"order":7}' });
      await c.commit();
    } finally {
      c.release();
    }

    await runCrashingRelay({ DIALECT: 'mysql', DB: my.url, TABLE: 'outbox', LEASE_MS: '60000' });
    expect((await orders()).map((m) => m.properties[OUTBOX_ID_PROPERTY])).toEqual([id]);
    // The dead relay's connection dropped; the server rolled its claim back: the row is pending again.
    const relay = new OutboxRelay({ outbox, producer });
    let report = await relay.runOnce();
    for (let i = 0; i < 50 && report.claimed === 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      report = await relay.runOnce();
    }
    expect(report).toMatchObject({ claimed: 1, published: 1 });
    const delivered = await orders();
    expect(delivered.map((m) => m.properties[OUTBOX_ID_PROPERTY])).toEqual([id, id]);

    const statuses: string[] = [];
    for (const message of delivered) {
      const conn = await my.pool.getConnection();
      try {
        await conn.beginTransaction();
        const outcome = await inbox.process(conn, message, (tx) =>
          tx.query(`INSERT INTO charges VALUES ('7')`),
        );
        await conn.commit();
        statuses.push(outcome.status);
      } finally {
        conn.release();
      }
    }
    expect(statuses).toEqual(['processed', 'duplicate']);
    const [[{ n }]] = (await my.pool.query('SELECT count(*) AS n FROM charges')) as unknown as [
      [{ n: number }],
    ];
    expect(Number(n)).toBe(1);
    expect(await outbox.counts()).toEqual({ pending: 0, published: 1, parked: 0 });
  } finally {
    await my.drop();
  }
}, 60_000);
