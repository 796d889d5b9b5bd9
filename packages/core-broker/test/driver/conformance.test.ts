import Database from 'better-sqlite3';
import { isRocketError } from '../../src/common/errors';
import { OutboxRelay } from '../../src/outbox/outbox-relay';
import { SqliteOutbox } from '../../src/outbox/sqlite-outbox';
import type { DriverMessage, MessagingDriver } from '../../src/driver/contract';
import { APACHE_START_TIMEOUT_MS } from '../rocketmq5/official-clients';
import {
  TARGET_NAMES,
  type Target,
  type TargetName,
  type TopicSpec,
  recorder,
  startTargets,
  waitUntil,
} from './driver-targets';

/**
 * The driver contract's conformance suite (driver/contract.ts, docs/drivers.md): the same
 * scenarios against the four targets — embedded broker, standalone `rocketnest broker` over TCP,
 * RocketNest's RocketMQ 5 gRPC endpoint through the Apache driver, and a real Apache RocketMQ 5
 * through the Apache driver. One Apache cluster for the whole file (beforeAll / afterAll).
 * `DRIVER_TARGETS=embedded,apache` runs a subset.
 */
const TOPICS: TopicSpec[] = [
  { name: 'ConfNormal', queues: 4, type: 'normal' },
  { name: 'ConfFilter', queues: 4, type: 'normal' },
  { name: 'ConfFifo', queues: 4, type: 'fifo' },
  { name: 'ConfDelay', queues: 2, type: 'delay' },
  { name: 'ConfTx', queues: 2, type: 'transaction' },
  { name: 'ConfRetry', queues: 2, type: 'normal' },
  { name: 'ConfClose', queues: 2, type: 'normal' },
  { name: 'ConfOutbox', queues: 2, type: 'normal' },
];
const selected = (process.env.DRIVER_TARGETS?.split(',') ?? TARGET_NAMES) as TargetName[];

let started: Awaited<ReturnType<typeof startTargets>>;

beforeAll(async () => {
  started = await startTargets(TOPICS, selected);
}, APACHE_START_TIMEOUT_MS + 120_000);

afterAll(async () => {
  await started?.stop();
}, 120_000);

describe.each(selected)('driver contract on %s', (name) => {
  let target: Target;
  let driver: MessagingDriver;
  const group = (what: string): string => `Conf_${name.replace(/-/g, '_')}_${what}`;
  const checkedTransactions: string[] = [];

  beforeAll(async () => {
    target = started.targets.get(name)!;
    driver = await target.open();
  }, 60_000);

  afterAll(async () => {
    await driver?.close();
  }, 60_000);

  test('send and receive: every message once, first attempt, tag, keys and properties intact', async () => {
    const received = recorder();
    const sub = await driver.subscribe({
      group: group('Normal'),
      topic: 'ConfNormal',
      handler: received.handler,
    });
    const producer = await driver.createProducer({ group: 'ConfProducer', topics: ['ConfNormal'] });
    const sent = [];
    for (let seq = 0; seq < 5; seq++) {
      sent.push(
        await producer.send({
          topic: 'ConfNormal',
          body: `m-${seq}`,
          tag: 'created',
          keys: [`k-${seq}`],
          properties: { seq: String(seq) },
        }),
      );
    }
    await waitUntil(() => received.messages.length >= 5, '5 messages');
    const views = received.messages
      .map((m) => ({
        body: m.body.toString(),
        tag: m.tag,
        keys: m.keys,
        seq: m.properties.seq,
        attempt: m.deliveryAttempt,
        topic: m.topic,
      }))
      .sort((a, b) => a.body.localeCompare(b.body));
    expect(views).toEqual(
      [0, 1, 2, 3, 4].map((seq) => ({
        body: `m-${seq}`,
        tag: 'created',
        keys: [`k-${seq}`],
        seq: String(seq),
        attempt: 1,
        topic: 'ConfNormal',
      })),
    );
    expect(new Set(received.messages.map((m) => m.msgId))).toEqual(new Set(sent.map((s) => s.msgId)));
    await producer.close();
    await sub.close();
  }, 120_000);

  test('tag expression and SQL92 filters deliver exactly the matching messages', async () => {
    const byTag = recorder();
    const bySql = recorder();
    const tagSub = await driver.subscribe({
      group: group('Tag'),
      topic: 'ConfFilter',
      filter: 'keep || also',
      handler: byTag.handler,
    });
    const sqlSub = await driver.subscribe({
      group: group('Sql'),
      topic: 'ConfFilter',
      filter: { sql: "color = 'red'" },
      handler: bySql.handler,
    });
    const producer = await driver.createProducer({ group: 'ConfProducer', topics: ['ConfFilter'] });
    const rows: Array<[string, string]> = [
      ['keep', 'red'],
      ['drop', 'red'],
      ['also', 'blue'],
      ['keep', 'blue'],
      ['drop', 'green'],
      ['other', 'red'],
    ];
    for (const [i, [tag, color]] of rows.entries()) {
      await producer.send({ topic: 'ConfFilter', body: `f-${i}`, tag, properties: { color } });
    }
    // a last message both match: once each saw it, each saw all it will see of the batch above
    await producer.send({ topic: 'ConfFilter', body: 'sentinel', tag: 'keep', properties: { color: 'red' } });
    const bodies = (r: { messages: DriverMessage[] }): string[] =>
      r.messages.map((m) => m.body.toString()).sort();
    await waitUntil(() => bodies(byTag).length >= 4 && bodies(bySql).length >= 4, 'the filtered messages');
    expect(bodies(byTag)).toEqual(['f-0', 'f-2', 'f-3', 'sentinel']);
    expect(bodies(bySql)).toEqual(['f-0', 'f-1', 'f-5', 'sentinel']);
    await producer.close();
    await Promise.all([tagSub.close(), sqlSub.close()]);
  }, 120_000);

  test('FIFO: each message group is handled in send order, a failed message blocking its group until retried', async () => {
    await target.orderlyGroup(group('Fifo'));
    const handled: Record<string, number[]> = {};
    const attempts: Array<{ body: string; attempt: number }> = [];
    let failedOnce = false;
    const sub = await driver.subscribe({
      group: group('Fifo'),
      topic: 'ConfFifo',
      fifo: true,
      retryDelayMs: 1000,
      concurrency: 3,
      handler: (m) => {
        const body = m.body.toString();
        attempts.push({ body, attempt: m.deliveryAttempt });
        if (body === 'g1-2' && !failedOnce) {
          failedOnce = true;
          throw new Error('first attempt of g1-2 fails');
        }
        const [g, seq] = body.split('-');
        (handled[g!] ??= []).push(Number(seq));
      },
    });
    const producer = await driver.createProducer({ group: 'ConfProducer', topics: ['ConfFifo'] });
    for (let seq = 0; seq < 5; seq++) {
      for (const g of ['g0', 'g1', 'g2']) {
        await producer.send({ topic: 'ConfFifo', body: `${g}-${seq}`, messageGroup: g });
      }
    }
    await waitUntil(() => Object.values(handled).flat().length >= 15, 'all 15 FIFO messages handled');
    expect(handled).toEqual({ g0: [0, 1, 2, 3, 4], g1: [0, 1, 2, 3, 4], g2: [0, 1, 2, 3, 4] });
    expect(attempts.filter((a) => a.body === 'g1-2')).toEqual([
      { body: 'g1-2', attempt: 1 },
      { body: 'g1-2', attempt: 2 },
    ]);
    await producer.close();
    await sub.close();
  }, 180_000);

  (name === 'apache' ? test : test.skip)(
    'a FIFO subscription on a group that is not orderly fails with UNSUPPORTED naming the fix',
    async () => {
      await expect(
        driver.subscribe({
          group: group('NotOrderly'),
          topic: 'ConfFifo',
          fifo: true,
          handler: () => undefined,
        }),
      ).rejects.toMatchObject({ code: 'UNSUPPORTED', message: expect.stringMatching(/updateSubGroup/) });
    },
    60_000,
  );

  test('delayed delivery: a message is not delivered before its delivery time', async () => {
    const received: Array<{ body: string; atMs: number }> = [];
    const sub = await driver.subscribe({
      group: group('Delay'),
      topic: 'ConfDelay',
      handler: (m) => void received.push({ body: m.body.toString(), atMs: Date.now() }),
    });
    const producer = await driver.createProducer({ group: 'ConfProducer', topics: ['ConfDelay'] });
    const deliveryTimeMs = Date.now() + 4000;
    await producer.send({ topic: 'ConfDelay', body: 'later', deliveryTimeMs });
    await waitUntil(() => received.length >= 1, 'the delayed message', 90_000);
    expect(received.map((r) => r.body)).toEqual(['later']);
    // Apache's timer wheel fires per 1 s slot (timerPrecisionMs): allow that much early, no more
    expect(received[0]!.atMs).toBeGreaterThanOrEqual(deliveryTimeMs - 1000);
    await producer.close();
    await sub.close();
  }, 120_000);

  test('transactions: commit delivers, rollback does not, an unknown outcome is checked back and committed', async () => {
    const received = recorder();
    const sub = await driver.subscribe({ group: group('Tx'), topic: 'ConfTx', handler: received.handler });
    const producer = await driver.createProducer({
      group: 'ConfTxProducer',
      topics: ['ConfTx'],
      checker: ({ message, transactionId }) => {
        if (message.body.toString() !== 'checked') return 'ROLLBACK';
        checkedTransactions.push(transactionId);
        return 'COMMIT';
      },
    });
    const commit = await producer.sendInTransaction({ topic: 'ConfTx', body: 'commit' }, () => 'COMMIT');
    const rollback = await producer.sendInTransaction(
      { topic: 'ConfTx', body: 'rollback' },
      () => 'ROLLBACK',
    );
    const unknown = await producer.sendInTransaction({ topic: 'ConfTx', body: 'checked' }, () => 'UNKNOWN');
    expect([commit.resolution, rollback.resolution, unknown.resolution]).toEqual([
      'COMMIT',
      'ROLLBACK',
      'UNKNOWN',
    ]);
    expect(unknown.transactionId).toBeTruthy();
    await waitUntil(() => received.messages.length >= 2, 'the committed and the checked message', 120_000);
    expect(received.messages.map((m) => m.body.toString()).sort()).toEqual(['checked', 'commit']);
    expect(checkedTransactions).toContain(unknown.transactionId);
    await producer.close();
    await sub.close();
  }, 180_000);

  test('retry then dead letter: a failing message is delivered maxAttempts times, then is in %DLQ%<group>', async () => {
    const attempts: Array<{ msgId: string; attempt: number }> = [];
    const sub = await driver.subscribe({
      group: group('Retry'),
      topic: 'ConfRetry',
      maxAttempts: 3,
      retryDelayMs: 1000,
      handler: (m) => {
        attempts.push({ msgId: m.msgId, attempt: m.deliveryAttempt });
        throw new Error('always fails');
      },
    });
    const producer = await driver.createProducer({ group: 'ConfProducer', topics: ['ConfRetry'] });
    const sent = await producer.send({ topic: 'ConfRetry', body: 'poison', tag: 'bad' });
    await waitUntil(() => attempts.length >= 3, 'three delivery attempts', 120_000);
    await sub.close();
    const dead = recorder();
    let dlq: Awaited<ReturnType<MessagingDriver['subscribe']>> | undefined;
    // the dead-letter topic exists once something was dead-lettered: try until it does
    const deadline = Date.now() + 60_000;
    while (!dlq && Date.now() < deadline) {
      try {
        dlq = await driver.subscribe({
          group: group('DlqReader'),
          topic: `%DLQ%${group('Retry')}`,
          handler: dead.handler,
        });
      } catch (error) {
        if (!isRocketError(error, 'TOPIC_NOT_FOUND')) throw error;
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    }
    expect(dlq).toBeDefined();
    await waitUntil(
      () => dead.messages.some((m) => m.body.toString() === 'poison'),
      'the dead-lettered message',
    );
    expect(attempts).toEqual([1, 2, 3].map((attempt) => ({ msgId: sent.msgId, attempt })));
    expect(dead.messages.find((m) => m.body.toString() === 'poison')!.msgId).toBe(sent.msgId);
    await dlq!.close();
    await producer.close();
  }, 240_000);

  test('outbox relay: rows committed in a database transaction are published through the driver', async () => {
    const db = new Database(':memory:');
    const outbox = new SqliteOutbox({ db });
    outbox.migrate();
    const received = recorder();
    const sub = await driver.subscribe({
      group: group('Outbox'),
      topic: 'ConfOutbox',
      handler: received.handler,
    });
    const producer = await driver.createProducer({ group: 'ConfOutboxProducer', topics: ['ConfOutbox'] });
    const relay = new OutboxRelay({ outbox, producer, pollIntervalMs: 100 });
    await relay.start();
    try {
      db.transaction(() => {
        for (let i = 0; i < 3; i++) outbox.add(db, { topic: 'ConfOutbox', body: `row-${i}`, tag: 'outbox' });
      })();
      expect(() =>
        db.transaction(() => {
          outbox.add(db, { topic: 'ConfOutbox', body: 'rolled-back' });
          throw new Error('business rule failed');
        })(),
      ).toThrow('business rule failed');
      await waitUntil(() => received.messages.length >= 3, 'the 3 committed rows');
      expect(received.messages.map((m) => m.body.toString()).sort()).toEqual(['row-0', 'row-1', 'row-2']);
    } finally {
      await relay.close();
      await producer.close();
      await sub.close();
      db.close();
    }
  }, 120_000);

  test('close: sends are refused after it, and no socket, timer or stream stays open', async () => {
    const before = openResources();
    const own = await target.open();
    const received = recorder();
    await own.subscribe({ group: group('Close'), topic: 'ConfClose', handler: received.handler });
    const producer = await own.createProducer({ group: 'ConfProducer', topics: ['ConfClose'] });
    await producer.send({ topic: 'ConfClose', body: 'one' });
    await waitUntil(() => received.messages.length >= 1, 'the message');
    await own.close();
    await expect(producer.send({ topic: 'ConfClose', body: 'two' })).rejects.toMatchObject({
      code: 'CLOSED',
    });
    await waitUntil(
      () => openResources() <= before,
      `open handles back to ${before} (now ${openResources()})`,
      30_000,
    );
  }, 120_000);
});

/** Sockets, timers and other handles this process holds (Node's own list). */
function openResources(): number {
  return process
    .getActiveResourcesInfo()
    .filter((r) => r !== 'TTYWrap' && r !== 'Immediate' && r !== 'FSReqCallback').length;
}
