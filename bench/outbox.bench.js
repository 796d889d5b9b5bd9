'use strict';
// Outbox relay benchmark: the same relay on SQLite (a file, WAL), PostgreSQL and MariaDB/MySQL
// (the machine's servers, a schema of its own each), publishing to an embedded broker (memory store).
//   drain:   rows published per second from a backlog of committed rows (transactions of 10 rows);
//   latency: commit-to-publish time (commit returned → broker stored and row marked, the relay's
//            `outbox.published` event) for single-row transactions at a fixed rate, relay in the
//            same process as the writer (PostgreSQL: LISTEN/NOTIFY; SQLite and MySQL: in-process
//            wake-ups; see docs/outbox.md for writers in other processes).
// Run with `pnpm bench:outbox` (builds first) or `node bench/outbox.bench.js [--quick]`.

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { randomBytes } = require('node:crypto');
const { performance } = require('node:perf_hooks');
const {
  Broker,
  MemoryStore,
  InProcessTransport,
  Producer,
  OutboxRelay,
  SqliteOutbox,
  PostgresOutbox,
  MysqlOutbox,
} = require('../packages/core-broker/dist/index.js');

const requireFrom = (name) =>
  require(require.resolve(name, { paths: [path.join(__dirname, '../packages/core-broker')] }));
const Database = requireFrom('better-sqlite3');
const { Pool } = requireFrom('pg');
const mysql = requireFrom('mysql2/promise');

const QUICK = process.argv.includes('--quick');
const DRAIN_ROWS = QUICK ? 2_000 : 10_000;
const ROWS_PER_TX = 10;
const LATENCY_COMMITS = QUICK ? 200 : 1_000;
const LATENCY_RATE_PER_S = 200;
const BODY = Buffer.alloc(512, 'x');
const PG_URL = process.env.ROCKETNEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const MYSQL_URL = process.env.ROCKETNEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test';
const log = (...parts) => process.stderr.write(parts.join(' ') + '\n');

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** One database behind the common shape: an outbox, a transaction runner, and cleanup. */
async function sqliteTarget() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rn-outbox-bench-'));
  const file = path.join(dir, 'app.db');
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  const relayDb = new Database(file, { timeout: 5000 });
  const outbox = new SqliteOutbox({ db: relayDb });
  outbox.migrate();
  return {
    name: 'SQLite (file, WAL)',
    outbox,
    write: async (rows) => db.transaction(() => rows.forEach((m) => outbox.add(db, m)))(),
    close: async () => {
      db.close();
      relayDb.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function postgresTarget() {
  const schema = `rn_bench_${randomBytes(4).toString('hex')}`;
  const pool = new Pool({ connectionString: PG_URL, max: 8 });
  await pool.query(`CREATE SCHEMA ${schema}`);
  const outbox = new PostgresOutbox({ pool, table: `${schema}.outbox` });
  await outbox.migrate();
  return {
    name: 'PostgreSQL 15',
    outbox,
    write: async (rows) => {
      const c = await pool.connect();
      try {
        await c.query('BEGIN');
        for (const m of rows) await outbox.add(c, m);
        await c.query('COMMIT');
      } finally {
        c.release();
      }
    },
    close: async () => {
      await pool.query(`DROP SCHEMA ${schema} CASCADE`);
      await pool.end();
    },
  };
}

async function mysqlTarget() {
  const schema = `rn_bench_${randomBytes(4).toString('hex')}`;
  const admin = mysql.createPool({ uri: MYSQL_URL, connectionLimit: 1 });
  await admin.query(`CREATE DATABASE ${schema}`);
  const [[{ v }]] = await admin.query('SELECT version() AS v');
  await admin.end();
  const pool = mysql.createPool({ uri: MYSQL_URL.replace(/\/[^/]*$/, `/${schema}`), connectionLimit: 8 });
  const outbox = new MysqlOutbox({ pool, table: 'outbox' });
  await outbox.migrate();
  return {
    name: `MariaDB/MySQL ${String(v).split('-')[0]}`,
    outbox,
    write: async (rows) => {
      const c = await pool.getConnection();
      try {
        await c.beginTransaction();
        for (const m of rows) await outbox.add(c, m);
        await c.commit();
      } finally {
        c.release();
      }
    },
    close: async () => {
      await pool.query(`DROP DATABASE ${schema}`);
      await pool.end();
    },
  };
}

async function withBroker(work) {
  const store = await MemoryStore.create({ retentionIntervalMs: 0 });
  const broker = await Broker.start({ store });
  broker.createTopic({ topic: 'orders', queueCount: 4 });
  const producer = new Producer({ group: 'outbox-bench', transport: new InProcessTransport(broker) });
  await producer.start();
  try {
    return await work(producer);
  } finally {
    await producer.shutdown();
    await broker.close();
    await store.close();
  }
}

async function drain(target) {
  return withBroker(async (producer) => {
    for (let i = 0; i < DRAIN_ROWS; i += ROWS_PER_TX) {
      const rows = [];
      for (let k = i; k < i + ROWS_PER_TX; k++) rows.push({ topic: 'orders', tag: 'created', body: BODY });
      await target.write(rows);
    }
    const relay = new OutboxRelay({ outbox: target.outbox, producer, batchSize: 100, pollIntervalMs: 50 });
    let published = 0;
    let done;
    const finished = new Promise((resolve) => (done = resolve));
    relay.on('outbox.published', () => {
      if (++published === DRAIN_ROWS) done();
    });
    const start = performance.now();
    await relay.start();
    await finished;
    const seconds = (performance.now() - start) / 1000;
    await relay.close();
    return DRAIN_ROWS / seconds;
  });
}

async function latency(target) {
  return withBroker(async (producer) => {
    const relay = new OutboxRelay({ outbox: target.outbox, producer, pollIntervalMs: 1000 });
    const committedAt = new Map();
    const samples = [];
    relay.on('outbox.published', (e) => {
      const t0 = committedAt.get(e.id);
      if (t0 !== undefined) samples.push(performance.now() - t0);
    });
    await relay.start();
    const intervalMs = 1000 / LATENCY_RATE_PER_S;
    const start = performance.now();
    for (let i = 0; i < LATENCY_COMMITS; i++) {
      const due = start + i * intervalMs;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      await target.write([{ topic: 'orders', body: BODY }]);
      committedAt.set(lastAddedId(target), performance.now());
    }
    const deadline = performance.now() + 10_000;
    while (samples.length < LATENCY_COMMITS && performance.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 20));
    await relay.close();
    samples.sort((a, b) => a - b);
    return { p50: percentile(samples, 50), p99: percentile(samples, 99), n: samples.length };
  });
}

/** The id the last add() on a target returned (the bench writes one row per commit for latency). */
const lastIds = new WeakMap();
function lastAddedId(target) {
  return lastIds.get(target);
}
function trackIds(target) {
  const add = target.outbox.add.bind(target.outbox);
  target.outbox.add = (tx, message) => {
    const result = add(tx, message);
    if (typeof result === 'string') lastIds.set(target, result);
    else return result.then((id) => (lastIds.set(target, id), id));
    return result;
  };
}

async function main() {
  const rows = [];
  for (const make of [sqliteTarget, postgresTarget, mysqlTarget]) {
    const target = await make();
    trackIds(target);
    try {
      log(`${target.name}: drain ${DRAIN_ROWS} rows…`);
      const rate = await drain(target);
      log(
        `${target.name}: commit-to-publish latency, ${LATENCY_COMMITS} commits at ${LATENCY_RATE_PER_S}/s…`,
      );
      const lat = await latency(target);
      rows.push({ name: target.name, rate, ...lat });
    } finally {
      await target.close();
    }
  }
  const sqlite = rows[0].rate;
  console.log(`| database | relay drain rows/s | vs SQLite | commit→publish p50 ms | p99 ms |`);
  console.log(`|---|---|---|---|---|`);
  for (const r of rows) {
    console.log(
      `| ${r.name} | ${Math.round(r.rate).toLocaleString('en-US')} | ${(r.rate / sqlite).toFixed(2)}× | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} |`,
    );
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
