import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type { Pool, PoolClient } from 'pg';
import { ApacheDriver } from '../../src/driver/apache/apache-driver';
import type { DriverMessage, DriverSubscription } from '../../src/driver/contract';
import { OUTBOX_ID_PROPERTY } from '../../src/outbox/outbox-message';
import { OutboxRelay } from '../../src/outbox/outbox-relay';
import { PostgresOutbox } from '../../src/outbox/postgres-outbox';
import { freshSchema, requirePostgres } from '../outbox/pg-support';
import {
  APACHE_START_TIMEOUT_MS,
  type ApacheRocketMq,
  startApacheRocketMq,
  stopApacheRocketMq,
} from '../rocketmq5/official-clients';
import { killApache, restartApache } from './apache-restart';
import { apacheOrderlyGroup, waitUntil } from './driver-targets';

/**
 * The transactional outbox on a real Apache RocketMQ 5 (one cluster for the file, started by
 * tools/apache-rocketmq.sh): rows committed in PostgreSQL transactions are published by an
 * `OutboxRelay` opened with the `apache` option and consumed by Apache driver subscriptions. Rows
 * with a message group are FIFO messages, handled in insertion order by an orderly group. Then
 * the fault part: both Apache JVMs are killed with SIGKILL while the relay publishes, and started
 * again; the relay resumes, and every row arrives at least once.
 */
const workDir = mkdtempSync(path.join(tmpdir(), 'apache-outbox-'));
const apacheDir = path.join(workDir, 'apache');
const TOPICS = ['OutboxEvents:4', 'OutboxSteps:4:fifo', 'OutboxFault:4'];
let apache: ApacheRocketMq | undefined;
let pgAvailable = false;
let db: Awaited<ReturnType<typeof freshSchema>> | undefined;

beforeAll(async () => {
  pgAvailable = await requirePostgres();
  if (!pgAvailable) return;
  db = await freshSchema();
  apache = await startApacheRocketMq(apacheDir, TOPICS);
  await apacheOrderlyGroup(apacheDir, 'OutboxStepsGroup');
}, APACHE_START_TIMEOUT_MS + 60_000);

afterAll(async () => {
  if (apache) await stopApacheRocketMq(apacheDir);
  await db?.drop();
  rmSync(workDir, { recursive: true, force: true });
}, 90_000);

/** Runs `work` in a transaction on a pooled client; commits, or rolls back on a throw. */
async function inTransaction<T>(pool: Pool, work: (client: PoolClient) => Promise<T>): Promise<T> {
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

const pgTest = (name: string, fn: () => Promise<void>, timeoutMs: number): void =>
  test(
    name,
    async () => {
      if (pgAvailable) await fn();
    },
    timeoutMs,
  );

pgTest(
  'committed rows reach Apache through the relay (apache option); message groups stay in order; a missing topic parks its row',
  async () => {
    const pool = db!.pool;
    const outbox = new PostgresOutbox({ pool, table: `${db!.schema}.outbox` });
    await outbox.migrate();
    const driver = new ApacheDriver({ endpoints: apache!.proxy });
    const events: DriverMessage[] = [];
    const steps: DriverMessage[] = [];
    const subscriptions: DriverSubscription[] = [
      await driver.subscribe({
        group: 'OutboxEventsGroup',
        topic: 'OutboxEvents',
        handler: (m) => void events.push(m),
      }),
      await driver.subscribe({
        group: 'OutboxStepsGroup',
        topic: 'OutboxSteps',
        fifo: true,
        concurrency: 2,
        handler: (m) => void steps.push(m),
      }),
    ];
    const relay = new OutboxRelay({
      outbox,
      apache: { endpoints: apache!.proxy },
      producerGroup: 'OutboxRelayProducer',
      pollIntervalMs: 200,
      maxAttempts: 2,
      retryBackoffMinMs: 10,
    });
    const parked: string[] = [];
    relay.on('outbox.parked', ({ id }) => void parked.push(id));
    try {
      await relay.start();
      // three transactions: events and ordered steps of two groups; one rolled back; one to a missing topic
      const committed = await inTransaction(pool, async (tx) => {
        const ids: string[] = [];
        for (let i = 0; i < 5; i++)
          ids.push(await outbox.add(tx, { topic: 'OutboxEvents', body: `event-${i}`, tag: 'created' }));
        for (let i = 0; i < 6; i++)
          ids.push(
            await outbox.add(tx, {
              topic: 'OutboxSteps',
              body: `${i % 2 === 0 ? 'a' : 'b'}:${i}`,
              messageGroup: i % 2 === 0 ? 'order-a' : 'order-b',
            }),
          );
        return ids;
      });
      await inTransaction(pool, async (tx) => {
        await outbox.add(tx, { topic: 'OutboxEvents', body: 'rolled-back' });
        throw new Error('rollback');
      }).catch(() => undefined);
      const missing = await inTransaction(pool, (tx) =>
        outbox.add(tx, { topic: 'OutboxNoSuchTopic', body: 'nowhere' }),
      );

      await waitUntil(() => events.length >= 5 && steps.length >= 6, 'the 11 committed rows', 120_000);
      await waitUntil(() => parked.includes(missing), 'the row of the missing topic to be parked', 60_000);
      // each row is one message whose OUTBOX_ID property and first key are the row id
      const delivered = [...events, ...steps].map((m) => m.properties[OUTBOX_ID_PROPERTY]);
      expect(new Set(delivered)).toEqual(new Set(committed));
      for (const m of [...events, ...steps]) expect(m.keys[0]).toBe(m.properties[OUTBOX_ID_PROPERTY]);
      expect(events.map((m) => m.tag)).toEqual(Array(5).fill('created'));
      expect(events.map((m) => m.body.toString())).not.toContain('rolled-back');
      // message groups: FIFO messages, handled in insertion order per group
      for (const group of ['order-a', 'order-b']) {
        const seen = steps
          .filter((m) => m.messageGroup === group)
          .map((m) => Number(m.body.toString().split(':')[1]));
        expect(seen).toEqual(group === 'order-a' ? [0, 2, 4] : [1, 3, 5]);
      }
      // the database agrees: 11 published, the missing topic's row parked with the broker's reason
      const { rows } = await pool.query<{ status: string; n: string }>(
        `SELECT status, count(*) AS n FROM ${db!.schema}.outbox GROUP BY status ORDER BY status`,
      );
      expect(rows.map((r) => [r.status, Number(r.n)])).toEqual([
        ['parked', 1],
        ['published', 11],
      ]);
      const { rows: parkedRows } = await pool.query<{ last_error: string }>(
        `SELECT last_error FROM ${db!.schema}.outbox WHERE status = 'parked'`,
      );
      expect(parkedRows[0]!.last_error).toMatch(/OutboxNoSuchTopic|TOPIC_NOT_FOUND/);
    } finally {
      await relay.close();
      await Promise.all(subscriptions.map((s) => s.close()));
      await driver.close();
    }
  },
  300_000,
);

pgTest(
  'bootstrap failures of the apache option: no proxy there fails start(); producer and apache together fail at construction',
  async () => {
    const outbox = new PostgresOutbox({ pool: db!.pool, table: `${db!.schema}.outbox_boot` });
    expect(
      () =>
        new OutboxRelay({
          outbox,
          apache: { endpoints: apache!.proxy },
          producer: { send: () => Promise.resolve({ msgId: 'x' }) },
        }),
    ).toThrow(expect.objectContaining({ code: 'INVALID_OPTION' }));
    const relay = new OutboxRelay({
      outbox,
      apache: { endpoints: '127.0.0.1:1', requestTimeoutMs: 500, settingsTimeoutMs: 500 },
    });
    await expect(relay.runOnce()).rejects.toMatchObject({ code: 'CLOSED', message: /start\(\)/ });
    await expect(relay.start()).rejects.toMatchObject({ retriable: true });
    await relay.close();
  },
  60_000,
);

pgTest(
  'kill -9 of the Apache JVMs while the relay publishes: it resumes, every row arrives at least once, duplicates only from retries',
  async () => {
    const pool = db!.pool;
    const outbox = new PostgresOutbox({ pool, table: `${db!.schema}.outbox_fault` });
    await outbox.migrate();
    const driver = new ApacheDriver({ endpoints: apache!.proxy, invisibleDurationMs: 10_000 });
    /** deliveries per row id: message id and delivery attempt of each */
    const deliveries = new Map<string, Array<{ msgId: string; attempt: number }>>();
    const subscription = await driver.subscribe({
      group: 'OutboxFaultGroup',
      topic: 'OutboxFault',
      handler: (m) => {
        const id = m.properties[OUTBOX_ID_PROPERTY]!;
        const list = deliveries.get(id) ?? [];
        list.push({ msgId: m.msgId, attempt: m.deliveryAttempt });
        deliveries.set(id, list);
      },
    });
    const relay = new OutboxRelay({
      outbox,
      apache: { endpoints: apache!.proxy, requestTimeoutMs: 2000 },
      producerGroup: 'OutboxFaultProducer',
      pollIntervalMs: 100,
      batchSize: 20,
      maxAttempts: 1000,
      retryBackoffMinMs: 200,
      retryBackoffMaxMs: 2000,
    });
    const resent = new Set<string>();
    let failedSends = 0;
    relay.on('outbox.failed', ({ id }) => {
      failedSends++;
      resent.add(id);
    });
    const published = new Set<string>();
    relay.on('outbox.published', ({ id }) => void published.add(id));
    const rows: string[] = [];
    let stopWriting = false;
    // a writer committing one row every ~30 ms until told to stop, also while Apache is down
    const writing = (async () => {
      for (let i = 0; !stopWriting && i < 100_000; i++) {
        rows.push(
          await inTransaction(pool, (tx) => outbox.add(tx, { topic: 'OutboxFault', body: `row-${i}` })),
        );
        await new Promise((resolve) => setTimeout(resolve, 30));
      }
    })();
    try {
      await relay.start();
      await waitUntil(() => published.size >= 30, '30 rows published before the crash', 120_000);
      const grpcPort = apache!.proxy.split(':')[1]!;
      await killApache(apacheDir);
      const publishedAtCrash = published.size;
      await restartApache(apacheDir, TOPICS, grpcPort);
      await waitUntil(
        () => published.size >= publishedAtCrash + 30,
        '30 more rows published after the restart (the relay resumed)',
        240_000,
      );
      stopWriting = true;
      await writing;
      await waitUntil(() => published.size === rows.length, `all ${rows.length} rows published`, 180_000);
      await waitUntil(
        () => rows.every((id) => deliveries.has(id)),
        `every row delivered (missing: ${rows.filter((id) => !deliveries.has(id)).length})`,
        180_000,
      );
      // the crash did hit the relay: sends failed while Apache was down, and were retried
      expect(failedSends).toBeGreaterThan(0);
      // at least once, and no more than that: a row delivered more than once was either sent again
      // by the relay after a failed send (a new message id), or is the same message again (the
      // consumer's ack was lost in the crash, or the driver retried a send the broker had stored)
      const duplicated = [...deliveries].filter(([, list]) => list.length > 1);
      const unexplained = duplicated.filter(
        ([id, list]) => new Set(list.map((d) => d.msgId)).size > 1 && !resent.has(id),
      );
      expect(unexplained).toEqual([]);
      expect([...deliveries.keys()].every((id) => rows.includes(id))).toBe(true);
      const { rows: statuses } = await pool.query<{ status: string; n: string }>(
        `SELECT status, count(*) AS n FROM ${db!.schema}.outbox_fault GROUP BY status`,
      );
      expect(statuses.map((r) => [r.status, Number(r.n)])).toEqual([['published', rows.length]]);
      const extra = [...deliveries.values()].reduce((sum, list) => sum + list.length - 1, 0);
      console.log(
        `outbox fault: ${rows.length} rows, ${failedSends} failed sends (${resent.size} rows resent), ` +
          `${[...deliveries.values()].reduce((s, l) => s + l.length, 0)} deliveries, ${extra} duplicates over ${duplicated.length} rows ` +
          `(${duplicated.filter(([, l]) => new Set(l.map((d) => d.msgId)).size > 1).length} resent by the relay, ` +
          `${duplicated.filter(([, l]) => l.some((d) => d.attempt > 1)).length} redelivered by Apache)`,
      );
    } finally {
      stopWriting = true;
      await writing;
      await relay.close();
      await subscription.close();
      await driver.close();
    }
  },
  // above the sum of the bounded waits, so a stuck stage fails by its own name (a JVM restart
  // alone took up to 5 minutes at a load average of 40)
  1_500_000,
);
