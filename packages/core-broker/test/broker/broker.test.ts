import { Broker, deadLetterTopicOf, queueForGroup, retryTopicOf } from '../../src/broker/broker';
import type { BrokerOptions } from '../../src/broker/broker-options';
import type { MessageInput } from '../../src/message/message';
import type { PullRequest } from '../../src/message/protocol';
import { Permission } from '../../src/message/protocol';
import { SystemProperty } from '../../src/message/system-properties';
import { MemoryFileSystem } from '../../src/store/file-system';
import { FileStore } from '../../src/store/file-store';
import { MemoryStore } from '../../src/store/memory-store';
import { ManualClock } from '../support/manual-clock';
import { settle } from '../support/settle';

const GROUP = 'order-service';
const msg = (body: string, extra: Partial<MessageInput> = {}): MessageInput => ({
  topic: 'orders',
  body: Buffer.from(body),
  ...extra,
});

interface Env {
  clock: ManualClock;
  broker: Broker;
  close(): Promise<void>;
}

async function env(options: Partial<BrokerOptions> = {}): Promise<Env> {
  const clock = new ManualClock();
  const store = await MemoryStore.create({ clock, retentionIntervalMs: 0 });
  const broker = await Broker.start({ store, clock, ...options });
  broker.createTopic({ topic: 'orders', queueCount: 4 });
  return {
    clock,
    broker,
    async close() {
      await broker.close();
      await store.close();
    },
  };
}

const pullReq = (queueId: number, queueOffset: number, extra: Partial<PullRequest> = {}): PullRequest => ({
  consumerGroup: GROUP,
  topic: 'orders',
  queueId,
  queueOffset,
  maxCount: 32,
  suspendTimeoutMs: 0,
  ...extra,
});

const bodies = (r: { messages: Array<{ body: Buffer }> }) => r.messages.map((m) => m.body.toString());

describe('topics', () => {
  test('create, update, route, delete; names validated; system names refused', async () => {
    const e = await env();
    expect(e.broker.topicRoute({ topic: 'orders' }).brokers[0]).toEqual({
      brokerName: 'broker-a',
      readQueueCount: 4,
      writeQueueCount: 4,
      permission: Permission.READ_WRITE,
      fifo: false,
    });
    e.broker.createTopic({ topic: 'orders', readQueueCount: 8, writeQueueCount: 2 });
    expect(e.broker.getTopic('orders')).toMatchObject({ readQueueCount: 8, writeQueueCount: 2 });
    expect(() => e.broker.createTopic({ topic: 'bad topic' })).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
    expect(() => e.broker.createTopic({ topic: '%RETRY%x' })).toThrow(/reserved/);
    expect(() => e.broker.createTopic({ topic: 'x', queueCount: 0 })).toThrow(/\[1, 1024\]/);
    expect(e.broker.deleteTopic('orders')).toBe(true);
    await expect(
      e.broker.send({ producerGroup: 'p', topic: 'orders', messages: [msg('a')], bornTimestampMs: 1 }),
    ).rejects.toMatchObject({
      code: 'TOPIC_NOT_FOUND',
      retriable: false,
    });
    await e.close();
  });

  test('auto-create is off by default and creates default-sized topics when on', async () => {
    const off = await env();
    await expect(
      off.broker.send({
        producerGroup: 'p',
        topic: 'fresh',
        messages: [msg('a', { topic: 'fresh' })],
        bornTimestampMs: 1,
      }),
    ).rejects.toMatchObject({ code: 'TOPIC_NOT_FOUND' });
    await off.close();
    const on = await env({ autoCreateTopics: true });
    await on.broker.send({
      producerGroup: 'p',
      topic: 'fresh',
      messages: [msg('a', { topic: 'fresh' })],
      bornTimestampMs: 1,
    });
    expect(on.broker.getTopic('fresh')).toMatchObject({ readQueueCount: 8, writeQueueCount: 8 });
    await on.close();
  });

  test('permissions: a read-only topic refuses sends, a write-only one refuses pulls', async () => {
    const e = await env();
    e.broker.createTopic({ topic: 'ro', permission: Permission.READ });
    e.broker.createTopic({ topic: 'wo', permission: Permission.WRITE });
    await expect(
      e.broker.send({
        producerGroup: 'p',
        topic: 'ro',
        messages: [msg('a', { topic: 'ro' })],
        bornTimestampMs: 1,
      }),
    ).rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
    await expect(e.broker.pull({ ...pullReq(0, 0), topic: 'wo' })).rejects.toMatchObject({
      code: 'PERMISSION_DENIED',
    });
    await e.close();
  });

  test('topic configs persist in the config directory', async () => {
    const clock = new ManualClock();
    const fileSystem = new MemoryFileSystem();
    const store = await MemoryStore.create({ clock });
    const first = await Broker.start({ store, clock, configDir: '/cfg', fileSystem });
    first.createTopic({ topic: 'kept', queueCount: 3, fifo: true });
    await first.close();
    const second = await Broker.start({ store, clock, configDir: '/cfg', fileSystem });
    expect(second.getTopic('kept')).toMatchObject({ readQueueCount: 3, fifo: true });
    await second.close();
    await store.close();
  });
});

describe('send', () => {
  test('round robin over write queues; explicit queue honoured and checked', async () => {
    const e = await env();
    const queues: number[] = [];
    for (let i = 0; i < 8; i++) {
      const r = await e.broker.send({
        producerGroup: 'p',
        topic: 'orders',
        messages: [msg(`m${i}`)],
        bornTimestampMs: 1,
      });
      queues.push(r.messages[0]!.queueId);
    }
    expect(new Set(queues)).toEqual(new Set([0, 1, 2, 3]));
    expect(queues.filter((q) => q === 2)).toHaveLength(2);
    const r = await e.broker.send({
      producerGroup: 'p',
      topic: 'orders',
      queueId: 3,
      messages: [msg('x')],
      bornTimestampMs: 1,
    });
    expect(r.messages[0]).toMatchObject({ queueId: 3, queueOffset: 2 });
    await expect(
      e.broker.send({
        producerGroup: 'p',
        topic: 'orders',
        queueId: 4,
        messages: [msg('x')],
        bornTimestampMs: 1,
      }),
    ).rejects.toThrow(/not a write queue/);
    await e.close();
  });

  test('FIFO topic: a message group always lands in the same queue, in order', async () => {
    const e = await env();
    e.broker.createTopic({ topic: 'fifo', queueCount: 8, fifo: true });
    for (let i = 0; i < 20; i++) {
      await e.broker.send({
        producerGroup: 'p',
        topic: 'fifo',
        messages: [msg(`g1-${i}`, { topic: 'fifo', messageGroup: 'order-1' })],
        bornTimestampMs: 1,
      });
      await e.broker.send({
        producerGroup: 'p',
        topic: 'fifo',
        messages: [msg(`g2-${i}`, { topic: 'fifo', messageGroup: 'order-2' })],
        bornTimestampMs: 1,
      });
    }
    const q1 = queueForGroup('order-1', 8);
    const got = await e.broker.pull({ ...pullReq(q1, 0), topic: 'fifo', maxCount: 100 });
    expect(bodies(got).filter((b) => b.startsWith('g1'))).toEqual(
      Array.from({ length: 20 }, (_, i) => `g1-${i}`),
    );
    await e.close();
  });

  test('a batch goes to one queue back to back; reserved properties and too-far delays refused', async () => {
    const e = await env();
    const r = await e.broker.send({
      producerGroup: 'p',
      topic: 'orders',
      queueId: 1,
      messages: [msg('a'), msg('b'), msg('c')],
      bornTimestampMs: 1,
    });
    expect(r.messages.map((m) => m.queueOffset)).toEqual([0, 1, 2]);
    await expect(
      e.broker.send({ producerGroup: 'p', topic: 'orders', messages: [], bornTimestampMs: 1 }),
    ).rejects.toThrow(/1 to 1024 messages/);
    await expect(
      e.broker.send({
        producerGroup: 'p',
        topic: 'orders',
        messages: [msg('a', { properties: { __ORIGIN_TOPIC: 'x' } })],
        bornTimestampMs: 1,
      }),
    ).rejects.toThrow(/reserved/);
    await expect(
      e.broker.send({
        producerGroup: 'p',
        topic: 'orders',
        messages: [msg('a', { deliveryTimeMs: e.clock.now() + 25 * 3600_000 })],
        bornTimestampMs: 1,
      }),
    ).rejects.toThrow(/maxDelayMs/);
    await expect(
      e.broker.send({
        producerGroup: 'bad group',
        topic: 'orders',
        messages: [msg('a')],
        bornTimestampMs: 1,
      }),
    ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await e.close();
  });

  test('flow control: past maxInFlightSends, and on a full disk, sends fail fast with retriable BROKER_BUSY', async () => {
    const e = await env({ maxInFlightSends: 2 });
    const sends = [0, 1, 2].map((i) =>
      e.broker
        .send({ producerGroup: 'p', topic: 'orders', messages: [msg(`m${i}`)], bornTimestampMs: 1 })
        .then(
          () => 'ok',
          (err: unknown) => err,
        ),
    );
    const results = await Promise.all(sends);
    expect(results.slice(0, 2)).toEqual(['ok', 'ok']);
    expect(results[2]).toMatchObject({ code: 'BROKER_BUSY', retriable: true });
    await e.close();

    const clock = new ManualClock();
    const fileSystem = new MemoryFileSystem();
    fileSystem.totalBytes = 10_000_000;
    fileSystem.otherUsedBytes = 9_000_000;
    const store = await FileStore.open({ dir: '/s', fileSystem, clock, retentionIntervalMs: 0 });
    const broker = await Broker.start({ store, clock });
    broker.createTopic({ topic: 'orders' });
    const full = await broker
      .send({ producerGroup: 'p', topic: 'orders', messages: [msg('a')], bornTimestampMs: 1 })
      .catch((err: unknown) => err);
    expect(full).toMatchObject({ code: 'BROKER_BUSY', retriable: true, cause: { code: 'DISK_FULL' } });
    await broker.close();
    await store.close();
  });
});

describe('pull', () => {
  test('statuses and next offsets', async () => {
    const e = await env();
    expect(await e.broker.pull(pullReq(0, 0))).toMatchObject({ status: 'NO_NEW_MESSAGE', nextOffset: 0 });
    await e.broker.send({
      producerGroup: 'p',
      topic: 'orders',
      queueId: 0,
      messages: [msg('a'), msg('b')],
      bornTimestampMs: 1,
    });
    const found = await e.broker.pull(pullReq(0, 0));
    expect(found).toMatchObject({ status: 'FOUND', nextOffset: 2, minOffset: 0, maxOffset: 2 });
    expect(bodies(found)).toEqual(['a', 'b']);
    expect(await e.broker.pull(pullReq(0, 2))).toMatchObject({ status: 'NO_NEW_MESSAGE', nextOffset: 2 });
    expect(await e.broker.pull(pullReq(0, 7))).toMatchObject({ status: 'OFFSET_ILLEGAL', nextOffset: 2 });
    await expect(e.broker.pull(pullReq(9, 0))).rejects.toThrow(/not a read queue/);
    await e.close();
  });

  test('long polling: a pull waits and returns as soon as a message is stored', async () => {
    const e = await env();
    let answered: unknown;
    const pending = e.broker.pull(pullReq(2, 0, { suspendTimeoutMs: 15_000 })).then((r) => (answered = r));
    await settle();
    expect(answered).toBeUndefined();
    e.clock.advance(5_000);
    await settle();
    expect(answered).toBeUndefined();
    await e.broker.send({
      producerGroup: 'p',
      topic: 'orders',
      queueId: 2,
      messages: [msg('late')],
      bornTimestampMs: 1,
    });
    await pending;
    expect(answered).toMatchObject({ status: 'FOUND', nextOffset: 1 });
    await e.close();
  });

  test('long polling times out with NO_NEW_MESSAGE; a message to another queue does not wake it', async () => {
    const e = await env();
    let answered: unknown;
    const pending = e.broker.pull(pullReq(2, 0, { suspendTimeoutMs: 15_000 })).then((r) => (answered = r));
    await e.broker.send({
      producerGroup: 'p',
      topic: 'orders',
      queueId: 1,
      messages: [msg('other')],
      bornTimestampMs: 1,
    });
    await settle();
    expect(answered).toBeUndefined();
    e.clock.advance(15_000);
    await pending;
    expect(answered).toMatchObject({ status: 'NO_NEW_MESSAGE', nextOffset: 0 });
    await e.close();
  });

  test('the number of waiting pulls is bounded: past it, pulls answer at once', async () => {
    const e = await env({ maxSuspendedPulls: 1 });
    const first = e.broker.pull(pullReq(0, 0, { suspendTimeoutMs: 10_000 }));
    const second = await e.broker.pull(pullReq(1, 0, { suspendTimeoutMs: 10_000 }));
    expect(second.status).toBe('NO_NEW_MESSAGE');
    e.clock.advance(10_000);
    expect((await first).status).toBe('NO_NEW_MESSAGE');
    await e.close();
  });

  test('tag and SQL92 filters apply on the broker; bad filters are typed errors', async () => {
    const e = await env();
    const messages = [
      msg('a', { tag: 'created', properties: { region: 'eu', amount: '10' } }),
      msg('b', { tag: 'paid', properties: { region: 'us', amount: '250' } }),
      msg('c', { tag: 'created', properties: { region: 'us', amount: '99' } }),
      msg('d', { tag: 'cancelled' }),
    ];
    await e.broker.send({ producerGroup: 'p', topic: 'orders', queueId: 0, messages, bornTimestampMs: 1 });
    const tag = await e.broker.pull(
      pullReq(0, 0, { subscription: { topic: 'orders', kind: 'TAG', expression: 'created || cancelled' } }),
    );
    expect(bodies(tag)).toEqual(['a', 'c', 'd']);
    const sql = await e.broker.pull(
      pullReq(0, 0, {
        subscription: {
          topic: 'orders',
          kind: 'SQL92',
          expression: "region = 'us' AND amount > 100 OR TAGS = 'cancelled'",
        },
      }),
    );
    expect(bodies(sql)).toEqual(['b', 'd']);
    const none = await e.broker.pull(
      pullReq(0, 0, { subscription: { topic: 'orders', kind: 'TAG', expression: 'refunded' } }),
    );
    expect(none).toMatchObject({ status: 'NO_MATCHED_MESSAGE', nextOffset: 4 });
    await expect(
      e.broker.pull(
        pullReq(0, 0, { subscription: { topic: 'orders', kind: 'SQL92', expression: 'amount >' } }),
      ),
    ).rejects.toMatchObject({ code: 'INVALID_FILTER' });
    await e.close();
    const off = await env({ enablePropertyFilter: false });
    await expect(
      off.broker.pull(
        pullReq(0, 0, { subscription: { topic: 'orders', kind: 'SQL92', expression: 'a = 1' } }),
      ),
    ).rejects.toThrow(/enablePropertyFilter/);
    await off.close();
  });
});

describe('consumer offsets', () => {
  test('commit (directly and with a pull), query, reset by time, persisted across restarts', async () => {
    const clock = new ManualClock();
    const fileSystem = new MemoryFileSystem();
    const store = await MemoryStore.create({ clock });
    const broker = await Broker.start({ store, clock, configDir: '/cfg', fileSystem });
    broker.createTopic({ topic: 'orders', queueCount: 2 });
    expect(broker.queryOffset({ group: GROUP, topic: 'orders', queueId: 0 })).toBeUndefined();
    for (let i = 0; i < 5; i++) {
      await broker.send({
        producerGroup: 'p',
        topic: 'orders',
        queueId: 0,
        messages: [msg(`m${i}`)],
        bornTimestampMs: 1,
      });
      clock.advance(1000);
    }
    broker.commitOffset({ group: GROUP, topic: 'orders', queueId: 0, offset: 3 });
    expect(broker.queryOffset({ group: GROUP, topic: 'orders', queueId: 0 })).toBe(3);
    await broker.pull(pullReq(1, 0, { commitOffset: 0 }));
    expect(broker.queryOffset({ group: GROUP, topic: 'orders', queueId: 1 })).toBe(0);
    expect(broker.resetOffsetByTime(GROUP, 'orders', clock.now() - 2500)).toEqual([
      { queueId: 0, offset: 3 },
      { queueId: 1, offset: 0 },
    ]);
    broker.commitOffset({ group: GROUP, topic: 'orders', queueId: 0, offset: 4 });
    await broker.close();
    const again = await Broker.start({ store, clock, configDir: '/cfg', fileSystem });
    expect(again.queryOffset({ group: GROUP, topic: 'orders', queueId: 0 })).toBe(4);
    await again.close();
    await store.close();
  });
});

describe('delayed messages', () => {
  test('delivered at their time, not before, and survive a restart without duplicates', async () => {
    const clock = new ManualClock();
    const fileSystem = new MemoryFileSystem();
    const store = await FileStore.open({ dir: '/store', fileSystem, clock, retentionIntervalMs: 0 });
    let broker = await Broker.start({ store, clock, configDir: '/cfg', fileSystem });
    broker.createTopic({ topic: 'orders', queueCount: 1 });
    const now = clock.now();
    await broker.send({
      producerGroup: 'p',
      topic: 'orders',
      messages: [msg('in 10s', { deliveryTimeMs: now + 10_000 })],
      bornTimestampMs: 1,
    });
    await broker.send({
      producerGroup: 'p',
      topic: 'orders',
      messages: [msg('in 3s', { deliveryTimeMs: now + 3_000 })],
      bornTimestampMs: 1,
    });
    await broker.send({ producerGroup: 'p', topic: 'orders', messages: [msg('now')], bornTimestampMs: 1 });
    expect(bodies(await broker.pull(pullReq(0, 0)))).toEqual(['now']);
    expect(broker.scheduledCount).toBe(2);
    clock.advance(2_999);
    await settle();
    expect(bodies(await broker.pull(pullReq(0, 0)))).toEqual(['now']);
    clock.advance(1);
    await settle();
    expect(bodies(await broker.pull(pullReq(0, 0)))).toEqual(['now', 'in 3s']);

    await broker.close(); // restart with one delivered and one pending
    broker = await Broker.start({ store, clock, configDir: '/cfg', fileSystem });
    expect(broker.scheduledCount).toBe(1);
    clock.advance(7_000);
    await settle();
    const after = await broker.pull(pullReq(0, 0, { maxCount: 100 }));
    expect(bodies(after)).toEqual(['now', 'in 3s', 'in 10s']);
    const delivered = after.messages[2]!;
    expect(delivered.deliveryTimeMs).toBe(now + 10_000);
    expect(delivered.properties).toEqual({});
    await broker.close();
    broker = await Broker.start({ store, clock, configDir: '/cfg', fileSystem });
    clock.advance(60_000);
    await settle();
    expect((await broker.pull(pullReq(0, 0, { maxCount: 100 }))).messages).toHaveLength(3);
    await broker.close();
    await store.close();
  });

  test('a long poll wakes when a delayed message becomes due', async () => {
    const e = await env();
    await e.broker.send({
      producerGroup: 'p',
      topic: 'orders',
      queueId: 0,
      messages: [msg('later', { deliveryTimeMs: e.clock.now() + 1000 })],
      bornTimestampMs: 1,
    });
    const pending = e.broker.pull(pullReq(0, 0, { suspendTimeoutMs: 15_000 }));
    e.clock.advance(1000);
    expect(bodies(await pending)).toEqual(['later']);
    await e.close();
  });

  test('bounded: past maxScheduledMessages delayed sends are BROKER_BUSY', async () => {
    const e = await env({ maxScheduledMessages: 2 });
    const later = e.clock.now() + 60_000;
    await e.broker.send({
      producerGroup: 'p',
      topic: 'orders',
      messages: [msg('1', { deliveryTimeMs: later }), msg('2', { deliveryTimeMs: later })],
      bornTimestampMs: 1,
    });
    await expect(
      e.broker.send({
        producerGroup: 'p',
        topic: 'orders',
        messages: [msg('3', { deliveryTimeMs: later })],
        bornTimestampMs: 1,
      }),
    ).rejects.toMatchObject({ code: 'BROKER_BUSY' });
    await e.close();
  });
});

describe('retry and dead letters', () => {
  test('sendBack schedules a retry copy with RocketMQ backoff, then dead-letters past max reconsume times', async () => {
    const e = await env();
    const sent = await e.broker.send({
      producerGroup: 'p',
      topic: 'orders',
      queueId: 0,
      messages: [msg('fragile', { tag: 't', keys: ['k1'] })],
      bornTimestampMs: 1,
    });
    let msgId = sent.messages[0]!.msgId;
    const retryTopic = retryTopicOf(GROUP);
    const retries: number[] = [];
    for (let attempt = 1; attempt <= 3; attempt++) {
      expect(await e.broker.sendBack({ consumerGroup: GROUP, msgId, maxReconsumeTimes: 2 })).toEqual({
        deadLettered: attempt > 2,
      });
      if (attempt > 2) break;
      const before = await e.broker.pull({ ...pullReq(0, attempt - 1), topic: retryTopic });
      expect(before.messages).toHaveLength(0);
      const delay = [10_000, 30_000][attempt - 1]!; // levels 3 and 4: 10 s, 30 s
      e.clock.advance(delay - 1);
      await settle();
      expect((await e.broker.pull({ ...pullReq(0, attempt - 1), topic: retryTopic })).messages).toHaveLength(
        0,
      );
      e.clock.advance(1);
      await settle();
      const copy = (await e.broker.pull({ ...pullReq(0, attempt - 1), topic: retryTopic })).messages[0]!;
      expect(copy).toMatchObject({ reconsumeTimes: attempt, tag: 't', keys: ['k1'] });
      expect(copy.properties[SystemProperty.ORIGIN_TOPIC]).toBe('orders');
      expect(copy.properties[SystemProperty.ORIGIN_MSG_ID]).toBe(sent.messages[0]!.msgId);
      retries.push(attempt);
      msgId = copy.msgId;
    }
    expect(retries).toEqual([1, 2]);
    const dlq = await e.broker.pull({ ...pullReq(0, 0), topic: deadLetterTopicOf(GROUP) });
    expect(dlq.messages).toHaveLength(1);
    expect(dlq.messages[0]).toMatchObject({ reconsumeTimes: 3 });

    const resent = await e.broker.resendDeadLetter(GROUP, dlq.messages[0]!.msgId);
    expect(resent.topic).toBe('orders');
    const fresh = e.broker.viewMessage(resent.msgId)!;
    expect(fresh).toMatchObject({ topic: 'orders', reconsumeTimes: 0, tag: 't' });
    expect(fresh.body.toString()).toBe('fragile');
    expect(fresh.properties).toEqual({});
    await expect(e.broker.sendBack({ consumerGroup: GROUP, msgId: '0'.repeat(32) })).rejects.toMatchObject({
      code: 'MESSAGE_NOT_FOUND',
    });
    await expect(e.broker.resendDeadLetter(GROUP, sent.messages[0]!.msgId)).rejects.toMatchObject({
      code: 'MESSAGE_NOT_FOUND',
    });
    await e.close();
  });
});

describe('membership', () => {
  test('heartbeats build the member list; silence expires members; changes are announced', async () => {
    const e = await env({ consumerExpiryMs: 120_000 });
    const notices: string[] = [];
    const member = (clientId: string) => ({
      clientId,
      producerGroups: [],
      consumers: [
        {
          group: GROUP,
          messageModel: 'CLUSTERING' as const,
          consumeType: 'PUSH' as const,
          subscriptions: [{ topic: 'orders', kind: 'TAG' as const, expression: '*' }],
        },
      ],
    });
    e.broker.registerChannel('c1', { consumerIdsChanged: (g) => notices.push(`c1:${g}`) });
    e.broker.heartbeat(member('c1'));
    e.broker.heartbeat(member('c2'));
    expect(e.broker.consumerIds({ group: GROUP })).toEqual(['c1', 'c2']);
    expect(notices).toEqual([`c1:${GROUP}`, `c1:${GROUP}`]);
    expect(e.broker.getTopic(retryTopicOf(GROUP))).toBeDefined();
    e.clock.advance(60_000);
    e.broker.heartbeat(member('c1'));
    e.clock.advance(70_000); // c2 silent for 130 s
    expect(e.broker.consumerIds({ group: GROUP })).toEqual(['c1']);
    expect(notices).toHaveLength(3);
    e.broker.unregisterClient({ clientId: 'c1' });
    expect(e.broker.consumerIds({ group: GROUP })).toEqual([]);
    e.broker.heartbeat({ clientId: 'p1', producerGroups: ['payments'], consumers: [] });
    expect(e.broker.producerIds('payments')).toEqual(['p1']);
    expect(() => e.broker.heartbeat({ clientId: 'x', producerGroups: ['bad group'], consumers: [] })).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
    await e.close();
  });

  test('a closed broker refuses requests with CLOSED and answers waiting pulls', async () => {
    const e = await env();
    const waiting = e.broker.pull(pullReq(0, 0, { suspendTimeoutMs: 30_000 }));
    await e.broker.close();
    expect((await waiting).status).toBe('NO_NEW_MESSAGE');
    await expect(
      e.broker.send({ producerGroup: 'p', topic: 'orders', messages: [msg('a')], bornTimestampMs: 1 }),
    ).rejects.toMatchObject({ code: 'CLOSED' });
    await e.close();
  });
});

describe('request validation', () => {
  test('sendBack rejects bad delays and reconsume limits', async () => {
    const e = await env();
    const sent = await e.broker.send({
      producerGroup: 'p',
      topic: 'orders',
      messages: [msg('a')],
      bornTimestampMs: 1,
    });
    const msgId = sent.messages[0]!.msgId;
    for (const bad of [
      { delayMs: -1 },
      { delayMs: 1.5 },
      { delayMs: 25 * 3600_000 },
      { maxReconsumeTimes: -1 },
      { maxReconsumeTimes: 2.5 },
    ]) {
      await expect(e.broker.sendBack({ consumerGroup: GROUP, msgId, ...bad })).rejects.toMatchObject({
        code: 'INVALID_ARGUMENT',
      });
    }
    expect(e.broker.scheduledCount).toBe(0);
    await e.close();
  });

  test('a heartbeat with a subscription the broker cannot serve is refused at once', async () => {
    const member = (expression: string) => ({
      clientId: 'c',
      producerGroups: [],
      consumers: [
        {
          group: GROUP,
          messageModel: 'CLUSTERING' as const,
          consumeType: 'PUSH' as const,
          subscriptions: [{ topic: 'orders', kind: 'SQL92' as const, expression }],
        },
      ],
    });
    const off = await env({ enablePropertyFilter: false });
    expect(() => off.broker.heartbeat(member('a = 1'))).toThrow(/enablePropertyFilter/);
    expect(off.broker.consumerIds({ group: GROUP })).toEqual([]);
    await off.close();
    const on = await env();
    expect(() => on.broker.heartbeat(member('a = '))).toThrow(
      expect.objectContaining({ code: 'INVALID_FILTER' }),
    );
    on.broker.heartbeat(member('a = 1'));
    expect(on.broker.consumerIds({ group: GROUP })).toEqual(['c']);
    await on.close();
  });
});

describe('delayed-message progress', () => {
  test('is written at most a second after a delivery, not once per delivery', async () => {
    const clock = new ManualClock();
    const fileSystem = new MemoryFileSystem();
    const store = await MemoryStore.create({ clock });
    const broker = await Broker.start({ store, clock, configDir: '/cfg', fileSystem });
    broker.createTopic({ topic: 'orders', queueCount: 1 });
    const progress = () => JSON.parse(fileSystem.readFile('/cfg/schedule.json')?.toString() ?? 'null');
    const due = clock.now() + 100;
    for (let i = 0; i < 3; i++) {
      await broker.send({
        producerGroup: 'p',
        topic: 'orders',
        messages: [msg(`d${i}`, { deliveryTimeMs: due + i })],
        bornTimestampMs: 1,
      });
    }
    clock.advance(102);
    await settle();
    expect(bodies(await broker.pull(pullReq(0, 0)))).toEqual(['d0', 'd1', 'd2']);
    expect(progress()).toBeNull();
    clock.advance(1000);
    expect(progress()).toEqual({ watermark: 3, delivered: [] });
    await broker.close();
    await store.close();
  });
});
