import { deadLetterTopicOf, retryTopicOf } from '../../src/broker/broker';
import { RocketError } from '../../src/common/errors';
import { averagelyByCircle } from '../../src/client/allocation';
import type { AllocationStrategy } from '../../src/client/allocation';
import { Producer } from '../../src/client/producer';
import { PushConsumer } from '../../src/client/push-consumer';
import { ConsumeResult } from '../../src/client/push-consumer';
import type { MessageExt, MessageListener, PushConsumerOptions } from '../../src/client/push-consumer';
import { SystemProperty } from '../../src/message/system-properties';
import type { Cluster } from '../support/client-harness';
import { advance, gate, readQueue, startCluster, text, until } from '../support/client-harness';
import { settle } from '../support/settle';

const TOPIC = 'Orders';
const GROUP = 'CG';
let cluster: Cluster;
let producer: Producer;
let consumers: PushConsumer[];
/** Gates a test holds listeners on; opened after each test so a failing test cannot hang shutdown. */
let gates: Array<{ open(): void }>;

function held(): { promise: Promise<void>; open(): void } {
  const g = gate();
  gates.push(g);
  return g;
}

beforeEach(async () => {
  consumers = [];
  gates = [];
  cluster = await startCluster({
    brokerNames: ['broker-a', 'broker-b'],
    topics: [{ topic: TOPIC, queueCount: 4 }],
  });
  producer = new Producer({ group: 'PG', transport: cluster.transport, clock: cluster.clock });
  await producer.start();
});

afterEach(async () => {
  jest.restoreAllMocks();
  for (const g of gates) g.open();
  for (const c of consumers) await c.shutdown();
  await producer.shutdown();
  await cluster.close();
});

function consumer(
  listener: MessageListener,
  options: Partial<PushConsumerOptions> & {
    expression?: string | { sql: string };
    orderly?: boolean;
    topic?: string;
  } = {},
): PushConsumer {
  const { expression, orderly, topic, ...rest } = options;
  const c = new PushConsumer({
    group: GROUP,
    transport: cluster.transport,
    clock: cluster.clock,
    consumeFromWhere: 'FIRST_OFFSET',
    ...rest,
  });
  c.subscribe(topic ?? TOPIC, expression ?? '*');
  c.registerMessageListener(listener, { orderly });
  consumers.push(c);
  return c;
}

/** A listener that records every message it sees and answers `result(m)`. */
function recorder(result: (m: MessageExt) => ConsumeResult = () => 'CONSUME_SUCCESS') {
  const seen: MessageExt[] = [];
  const listener: MessageListener = (messages) => {
    seen.push(...messages);
    return messages.map(result).includes('RECONSUME_LATER') ? 'RECONSUME_LATER' : 'CONSUME_SUCCESS';
  };
  return { seen, listener, bodies: () => seen.map(text) };
}

async function sendAll(n: number, prefix = 'm', extra: Record<string, unknown> = {}): Promise<string[]> {
  const bodies: string[] = [];
  for (let i = 0; i < n; i++) {
    bodies.push(`${prefix}${i}`);
    await producer.send({ topic: TOPIC, body: `${prefix}${i}`, ...extra });
  }
  return bodies;
}

describe('PushConsumer (clustering)', () => {
  test('consumes every message of every queue of every broker', async () => {
    const r = recorder();
    const c = consumer(r.listener);
    await c.start();
    expect(c.assignment().filter((q) => q.topic === TOPIC)).toHaveLength(8);
    const sent = await sendAll(40);
    await until(() => r.seen.length >= 40, '40 messages consumed');
    expect(r.bodies().sort()).toEqual(sent.sort());
  });

  test('an offset reset by time on the broker makes running consumers consume again from there', async () => {
    const early = await sendAll(8, 'early');
    cluster.clock.advance(60_000);
    const resetTo = cluster.clock.now();
    const late = await sendAll(8, 'late');
    const r = recorder();
    const c = consumer(r.listener);
    const resets: unknown[] = [];
    c.on('consumer.offset.reset', (e) => resets.push(e));
    await c.start();
    await until(() => r.seen.length >= 16, 'first pass');
    expect(r.bodies().sort()).toEqual([...early, ...late].sort());
    r.seen.length = 0;
    for (const broker of cluster.brokers) broker.resetOffsetByTime(GROUP, TOPIC, resetTo);
    await until(() => r.seen.length >= 8, 'second pass from the reset offsets');
    await settle();
    expect(r.bodies().sort()).toEqual([...late].sort());
    expect(resets).toHaveLength(2);
  });

  test('starts at the committed offset, else at consumeFromWhere (LAST_OFFSET skips the backlog)', async () => {
    await sendAll(8, 'old');
    const r = recorder();
    const c = consumer(r.listener, { consumeFromWhere: 'LAST_OFFSET' });
    await c.start();
    await sendAll(8, 'new');
    await until(() => r.seen.length >= 8, 'new messages');
    await settle();
    expect(r.bodies().sort()).toEqual([...Array(8).keys()].map((i) => `new${i}`).sort());
  });

  test('RECONSUME_LATER: redelivered through the retry topic after 10 s, with reconsumeTimes 1 and the original topic', async () => {
    let failures = 0;
    const r = recorder((m) =>
      m.reconsumeTimes === 0 && failures++ >= 0 ? 'RECONSUME_LATER' : 'CONSUME_SUCCESS',
    );
    const c = consumer(r.listener);
    await c.start();
    const sent = await producer.send({ topic: TOPIC, body: 'retry-me', tag: 'T', properties: { p: '1' } });
    await until(() => r.seen.length === 1, 'first delivery');
    await advance(cluster.clock, 9000);
    expect(r.seen).toHaveLength(1);
    await advance(cluster.clock, 1000);
    await until(() => r.seen.length === 2, 'redelivery');
    const again = r.seen[1]!;
    expect(again).toMatchObject({ topic: TOPIC, reconsumeTimes: 1, tag: 'T' });
    expect(again.properties).toMatchObject({ p: '1', [SystemProperty.ORIGIN_MSG_ID]: sent.msgId });
    expect(text(again)).toBe('retry-me');
    expect(c.assignment().some((q) => q.topic === retryTopicOf(GROUP))).toBe(true);
  });

  test('a throwing listener counts as RECONSUME_LATER', async () => {
    const seen: MessageExt[] = [];
    const errors: unknown[] = [];
    const c = consumer((messages) => {
      seen.push(...messages);
      if (messages[0]!.reconsumeTimes === 0) throw new Error('boom');
      return 'CONSUME_SUCCESS';
    });
    c.on('consumer.listener.error', (e) => errors.push(e.error));
    await c.start();
    await producer.send({ topic: TOPIC, body: 'x' });
    await until(() => seen.length === 1, 'first delivery');
    await advance(cluster.clock, 10_000);
    await until(() => seen.length === 2, 'redelivery');
    expect(seen[1]).toMatchObject({ topic: TOPIC, reconsumeTimes: 1 });
    expect(errors).toHaveLength(1);
  });

  test('after maxReconsumeTimes the message goes to the dead-letter queue', async () => {
    const r = recorder(() => 'RECONSUME_LATER');
    const deadLettered: string[] = [];
    const c = consumer(r.listener, { maxReconsumeTimes: 2 });
    c.on('consumer.dead-lettered', (e) => deadLettered.push(e.msgId));
    await c.start();
    const sent = await producer.send({ topic: TOPIC, body: 'poison', tag: 'bad' });
    await until(() => r.seen.length === 1, 'first delivery');
    await advance(cluster.clock, 10_000); // retry 1 after 10 s
    await until(() => r.seen.length === 2, 'retry 1');
    await advance(cluster.clock, 30_000); // retry 2 after 30 s
    await until(() => r.seen.length === 3, 'retry 2');
    await until(() => deadLettered.length === 1, 'dead-lettered');
    expect(r.seen.map((m) => m.reconsumeTimes)).toEqual([0, 1, 2]);
    const dlq = await readQueue(cluster.broker(sent.brokerName), deadLetterTopicOf(GROUP));
    expect(dlq).toHaveLength(1);
    expect(dlq[0]).toMatchObject({ tag: 'bad', reconsumeTimes: 3 });
    expect(dlq[0]!.properties[SystemProperty.ORIGIN_TOPIC]).toBe(TOPIC);
    expect(text(dlq[0]!)).toBe('poison');
    await advance(cluster.clock, 120_000, 10_000);
    expect(r.seen).toHaveLength(3);
  });

  test('context.retryDelayMs overrides the broker backoff', async () => {
    const seen: MessageExt[] = [];
    const c = consumer((messages, context) => {
      seen.push(...messages);
      context.retryDelayMs = 2000;
      return messages[0]!.reconsumeTimes === 0 ? 'RECONSUME_LATER' : 'CONSUME_SUCCESS';
    });
    await c.start();
    await producer.send({ topic: TOPIC, body: 'x' });
    await until(() => seen.length === 1, 'first delivery');
    await advance(cluster.clock, 2000);
    await until(() => seen.length === 2, 'redelivery after 2 s');
  });

  test('a failed send-back keeps the message and consumes it again locally: nothing is lost', async () => {
    const sendBack = jest
      .spyOn(cluster.transport, 'sendBack')
      .mockRejectedValueOnce(new RocketError('BROKER_UNAVAILABLE', 'injected'));
    const seen: MessageExt[] = [];
    const failed: string[] = [];
    const c = consumer((messages) => {
      seen.push(...messages);
      return seen.length === 1 ? 'RECONSUME_LATER' : 'CONSUME_SUCCESS';
    });
    c.on('consumer.sendback.failed', (e) => failed.push(e.msgId));
    await c.start();
    const sent = await producer.send({ topic: TOPIC, body: 'x' });
    await until(() => failed.length === 1, 'send-back failed');
    await advance(cluster.clock, 4000);
    expect(seen).toHaveLength(1);
    await advance(cluster.clock, 1000);
    await until(() => seen.length === 2, 'local retry');
    expect(seen[1]).toMatchObject({ msgId: sent.msgId, reconsumeTimes: 1 });
    expect(sendBack).toHaveBeenCalledTimes(1);
    // the offset was held back until the local retry succeeded, then committed
    await advance(cluster.clock, 5000);
    expect(
      cluster.broker(sent.brokerName).queryOffset({ group: GROUP, topic: TOPIC, queueId: sent.queueId }),
    ).toBe(sent.queueOffset + 1);
  });

  test('tag filter: only matching tags are delivered', async () => {
    const r = recorder();
    const c = consumer(r.listener, { expression: 'paid || shipped' });
    await c.start();
    for (const tag of ['created', 'paid', 'shipped', 'cancelled', 'paid']) {
      await producer.send({ topic: TOPIC, body: tag, tag });
    }
    await producer.send({ topic: TOPIC, body: 'untagged' });
    await until(() => r.seen.length >= 3, 'tagged messages');
    await advance(cluster.clock, 1000);
    expect(r.bodies().sort()).toEqual(['paid', 'paid', 'shipped']);
  });

  test('SQL92 filter: only messages whose properties match are delivered', async () => {
    const r = recorder();
    const c = consumer(r.listener, { expression: { sql: "amount > 100 AND region = 'eu'" } });
    await c.start();
    await producer.send({ topic: TOPIC, body: 'a', properties: { amount: '150', region: 'eu' } });
    await producer.send({ topic: TOPIC, body: 'b', properties: { amount: '50', region: 'eu' } });
    await producer.send({ topic: TOPIC, body: 'c', properties: { amount: '500', region: 'us' } });
    await producer.send({ topic: TOPIC, body: 'd', properties: { region: 'eu' } });
    await producer.send({ topic: TOPIC, body: 'e', properties: { amount: '101', region: 'eu' } });
    await until(() => r.seen.length >= 2, 'matching messages');
    await advance(cluster.clock, 1000);
    expect(r.bodies().sort()).toEqual(['a', 'e']);
  });

  test('at most consumeConcurrency listener calls run at once', async () => {
    let running = 0;
    let peak = 0;
    const release = held();
    let done = 0;
    const c = consumer(
      async () => {
        running++;
        peak = Math.max(peak, running);
        await release.promise;
        running--;
        done++;
        return ConsumeResult.CONSUME_SUCCESS;
      },
      { consumeConcurrency: 3 },
    );
    await c.start();
    await sendAll(12);
    await until(() => running === 3, 'three listeners running');
    await settle();
    expect(peak).toBe(3);
    release.open();
    await until(() => done === 12, 'all consumed');
    expect(peak).toBe(3);
  });

  test('consumeBatchSize hands several messages to one call', async () => {
    cluster.createTopic({ topic: 'One', queueCount: 1 });
    const sizes: number[] = [];
    const c = consumer(
      (messages) => {
        sizes.push(messages.length);
        return 'CONSUME_SUCCESS';
      },
      { consumeBatchSize: 4, topic: 'One' },
    );
    await producer.sendBatch([...Array(8).keys()].map((i) => ({ topic: 'One', body: String(i) })));
    await c.start();
    await until(() => sizes.reduce((a, b) => a + b, 0) === 8, '8 messages');
    expect(Math.max(...sizes)).toBe(4);
  });

  test('flow control: a queue past pullThresholdForQueue is not pulled until it drains', async () => {
    cluster.createTopic({ topic: 'One', queueCount: 1 });
    const release = held();
    let consumed = 0;
    const pull = jest.spyOn(cluster.transport, 'pull');
    const paused: number[] = [];
    const c = consumer(
      async () => {
        await release.promise;
        consumed++;
        return ConsumeResult.CONSUME_SUCCESS;
      },
      { topic: 'One', pullBatchSize: 4, pullThresholdForQueue: 10, consumeConcurrency: 1 },
    );
    c.on('consumer.flow-control', (e) => paused.push(e.cachedMessages));
    await producer.sendBatch([...Array(30).keys()].map((i) => ({ topic: 'One', body: String(i) })));
    await c.start();
    expect((await cluster.transport.topicRoute('One')).brokers).toHaveLength(2);
    const loaded = cluster.brokers.find((b) => b.maxOffset({ topic: 'One', queueId: 0 }) === 30)!.brokerName;
    const userPulls = (): number =>
      pull.mock.calls.filter(([broker, r]) => broker === loaded && r.topic === 'One').length;
    await until(() => paused.length > 0, 'flow control');
    const pullsAtPause = userPulls();
    expect(pullsAtPause).toBe(3); // 4 + 4 + 4 = 12 > 10 cached
    expect(paused[0]).toBe(12);
    await advance(cluster.clock, 60_000, 5000);
    expect(userPulls()).toBe(pullsAtPause);
    expect(consumed).toBe(0);
    release.open();
    await until(() => consumed === 30, 'all consumed after the drain');
    expect(userPulls()).toBeGreaterThan(pullsAtPause);
  });

  test('flow control by cached bytes', async () => {
    cluster.createTopic({ topic: 'One', queueCount: 1 });
    const release = held();
    let consumed = 0;
    const paused: number[] = [];
    const c = consumer(
      async () => {
        await release.promise;
        consumed++;
        return ConsumeResult.CONSUME_SUCCESS;
      },
      { topic: 'One', pullBatchSize: 1, pullThresholdSizeForQueueBytes: 3000, consumeConcurrency: 1 },
    );
    c.on('consumer.flow-control', (e) => paused.push(e.cachedBytes));
    await producer.sendBatch([...Array(10).keys()].map(() => ({ topic: 'One', body: Buffer.alloc(1000) })));
    await c.start();
    await until(() => paused.length > 0, 'flow control');
    expect(paused[0]).toBe(4000);
    release.open();
    await until(() => consumed === 10, 'all consumed');
  });

  test('shutdown waits for running listeners, commits offsets, and a new consumer resumes there with no loss', async () => {
    const first: string[] = [];
    const hold = held();
    let holding = false;
    const c1 = consumer(async (messages) => {
      if (text(messages[0]!) === 'm9') {
        holding = true;
        await hold.promise;
      }
      first.push(...messages.map(text));
      return ConsumeResult.CONSUME_SUCCESS;
    });
    await c1.start();
    const batch1 = await sendAll(10);
    await until(() => holding && first.length === 9, 'nine consumed, one in the listener');
    let stopped = false;
    const stopping = c1.shutdown().then(() => (stopped = true));
    await settle();
    expect(stopped).toBe(false);
    hold.open();
    await stopping;
    expect(first.sort()).toEqual(batch1.sort());
    for (const b of cluster.brokers) expect(b.consumerIds({ group: GROUP })).not.toContain(c1.clientId);
    const batch2 = await sendAll(10, 'n');
    const r = recorder();
    const c2 = consumer(r.listener, { consumeFromWhere: 'LAST_OFFSET' });
    await c2.start();
    await until(() => r.seen.length >= 10, 'second batch');
    await advance(cluster.clock, 1000);
    expect(r.bodies().sort()).toEqual(batch2.sort());
  });

  test('offsets are committed periodically: the lowest offset still in process', async () => {
    cluster.createTopic({ topic: 'One', queueCount: 1 });
    const hold = held();
    const c = consumer(
      async (messages) => {
        if (text(messages[0]!) === '2') await hold.promise;
        return ConsumeResult.CONSUME_SUCCESS;
      },
      { topic: 'One' },
    );
    await c.start();
    await producer.sendBatch([...Array(6).keys()].map((i) => ({ topic: 'One', body: String(i) })));
    await settle(20);
    await advance(cluster.clock, 5000);
    const broker = cluster.brokers.find((b) => b.maxOffset({ topic: 'One', queueId: 0 }) > 0)!;
    expect(broker.queryOffset({ group: GROUP, topic: 'One', queueId: 0 })).toBe(2);
    hold.open();
    await settle();
    await advance(cluster.clock, 5000);
    expect(broker.queryOffset({ group: GROUP, topic: 'One', queueId: 0 })).toBe(6);
  });

  test('two members split the queues; when one leaves, the other takes all of them', async () => {
    const r1 = recorder();
    const r2 = recorder();
    const c1 = consumer(r1.listener);
    const c2 = consumer(r2.listener, { allocation: undefined });
    await c1.start();
    await c2.start();
    await settle();
    await c1.rebalance();
    const own1 = c1.assignment().filter((q) => q.topic === TOPIC);
    const own2 = c2.assignment().filter((q) => q.topic === TOPIC);
    expect(own1).toHaveLength(4);
    expect(own2).toHaveLength(4);
    const keys = new Set([...own1, ...own2].map((q) => `${q.brokerName}/${q.queueId}`));
    expect(keys.size).toBe(8);
    const sent = await sendAll(16);
    await until(() => r1.seen.length + r2.seen.length >= 16, 'all consumed');
    expect(r1.seen.length).toBeGreaterThan(0);
    expect(r2.seen.length).toBeGreaterThan(0);
    await c1.shutdown();
    await until(() => c2.assignment().filter((q) => q.topic === TOPIC).length === 8, 'c2 owns every queue');
    const more = await sendAll(16, 'n');
    await until(() => r2.seen.length + r1.seen.length >= 32, 'second batch');
    expect([...r1.bodies(), ...r2.bodies()].sort()).toEqual([...sent, ...more].sort());
  });

  test('heartbeats keep the consumer in its group past the broker expiry (120 s)', async () => {
    const c = consumer(recorder().listener);
    await c.start();
    await advance(cluster.clock, 300_000, 10_000);
    for (const b of cluster.brokers) expect(b.consumerIds({ group: GROUP })).toEqual([c.clientId]);
  });

  test('the periodic rebalance picks up queues added to the topic', async () => {
    const r = recorder();
    const c = consumer(r.listener);
    await c.start();
    expect(c.assignment().filter((q) => q.topic === TOPIC)).toHaveLength(8);
    cluster.createTopic({ topic: TOPIC, queueCount: 6 });
    await advance(cluster.clock, 19_000);
    expect(c.assignment().filter((q) => q.topic === TOPIC)).toHaveLength(8);
    await advance(cluster.clock, 1000);
    expect(c.assignment().filter((q) => q.topic === TOPIC)).toHaveLength(12);
    await cluster.transport.send('broker-b', {
      producerGroup: 'PG',
      topic: TOPIC,
      queueId: 5,
      messages: [{ topic: TOPIC, body: Buffer.from('new queue') }],
      bornTimestampMs: cluster.clock.now(),
    });
    await until(() => r.bodies().includes('new queue'), 'message of the new queue');
  });

  test('a pluggable allocation strategy is used', async () => {
    const c1 = consumer(recorder().listener, { allocation: averagelyByCircle(), clientId: 'c-1' });
    const c2 = consumer(recorder().listener, { allocation: averagelyByCircle(), clientId: 'c-2' });
    await c1.start();
    await c2.start();
    await c1.rebalance();
    const ids = (c: PushConsumer): string[] =>
      c
        .assignment()
        .filter((q) => q.topic === TOPIC)
        .map((q) => `${q.brokerName}/${q.queueId}`);
    expect(ids(c1)).toEqual(['broker-a/0', 'broker-a/2', 'broker-b/0', 'broker-b/2']);
    expect(ids(c2)).toEqual(['broker-a/1', 'broker-a/3', 'broker-b/1', 'broker-b/3']);
  });

  test('subscribe and listener are required before start; subscribe after start is refused', async () => {
    const c = new PushConsumer({ group: GROUP, transport: cluster.transport, clock: cluster.clock });
    await expect(c.start()).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(() => c.subscribe('bad topic')).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    const d = consumer(recorder().listener);
    await d.start();
    expect(() => d.subscribe(TOPIC)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(
      () => new PushConsumer({ group: GROUP, transport: cluster.transport, pullThresholdForQueue: 0 }),
    ).toThrow(expect.objectContaining({ code: 'INVALID_OPTION' }));
  });
});

describe('PushConsumer orderly', () => {
  beforeEach(() => cluster.createTopic({ topic: 'Fifo', queueCount: 4, fifo: true }));

  test('per-queue order holds for every message group, failed messages retried in place after the suspend', async () => {
    const seen: string[] = [];
    const failOnce = new Set(['g1-3', 'g2-0', 'g3-7']);
    const c = consumer(
      (messages) => {
        expect(messages).toHaveLength(1);
        const body = text(messages[0]!);
        seen.push(body);
        if (failOnce.delete(body)) return 'RECONSUME_LATER';
        return 'CONSUME_SUCCESS';
      },
      { topic: 'Fifo', orderly: true },
    );
    await c.start();
    const sent: string[] = [];
    for (let i = 0; i < 10; i++) {
      for (const g of ['g1', 'g2', 'g3']) {
        sent.push(`${g}-${i}`);
        await producer.send({ topic: 'Fifo', body: `${g}-${i}`, messageGroup: g });
      }
    }
    await until(() => seen.length >= 3, 'some consumed');
    await advance(cluster.clock, 3000);
    await until(() => new Set(seen).size === 30, 'all consumed');
    for (const g of ['g1', 'g2', 'g3']) {
      const done = seen.filter((b) => b.startsWith(`${g}-`));
      const firstTimes = done.filter((b, i) => done.indexOf(b) === i);
      expect(firstTimes).toEqual([...Array(10).keys()].map((i) => `${g}-${i}`));
      // a retried message is seen twice in a row within its queue's order: never after its successor
      for (let i = 1; i < done.length; i++) {
        const prev = Number(done[i - 1]!.split('-')[1]);
        const cur = Number(done[i]!.split('-')[1]);
        expect(cur === prev || cur === prev + 1).toBe(true);
      }
    }
    expect(seen).toHaveLength(33);
  });

  test('clustering: a queue moves to a new member only after the old one finished with it (broker queue lock)', async () => {
    cluster.createTopic({ topic: 'Fifo', queueCount: 1, fifo: true });
    // the member with the highest client id takes every queue: joining moves them all to it
    const toHighest: AllocationStrategy = {
      name: 'TO_HIGHEST',
      allocate: ({ self, queues, consumerIds }) =>
        self === [...consumerIds].sort().at(-1) ? [...queues] : [],
    };
    const gateA = held();
    let active = 0;
    let overlap = false;
    const seen: string[] = [];
    const track =
      (name: string): MessageListener =>
      async (messages) => {
        if (active > 0) overlap = true;
        active++;
        try {
          if (name === 'a' && text(messages[0]!) === 'm0') await gateA.promise;
          seen.push(`${name}:${text(messages[0]!)}`);
          return ConsumeResult.CONSUME_SUCCESS;
        } finally {
          active--;
        }
      };
    const a = consumer(track('a'), {
      topic: 'Fifo',
      orderly: true,
      clientId: 'client-a',
      allocation: toHighest,
    });
    await a.start();
    let where = '';
    for (let i = 0; i < 4; i++) {
      where = (await producer.send({ topic: 'Fifo', body: `m${i}`, messageGroup: 'order-1' })).brokerName;
    }
    await until(() => active === 1, 'a holds m0 in its listener');
    const b = consumer(track('b'), {
      topic: 'Fifo',
      orderly: true,
      clientId: 'client-b',
      allocation: toHighest,
    });
    await b.start();
    await advance(cluster.clock, 3000);
    // a is still on m0 and keeps that queue's lock: b was allocated it but could not take it (the
    // other, empty queue a gave up at once, and b took it)
    expect(seen).toEqual([]);
    const fifoQueues = (c: PushConsumer) => c.assignment().filter((q) => q.topic === 'Fifo');
    expect(fifoQueues(b).map((q) => q.brokerName)).not.toContain(where);
    expect(fifoQueues(b)).toHaveLength(1);
    gateA.open();
    await until(() => seen.includes('a:m0'), 'a finished m0');
    // a gave the lock back once m0 was done; b takes the queue at a later attempt and goes on in order
    for (let i = 0; i < 25 && seen.length < 4; i++) await advance(cluster.clock, 1000);
    expect(seen).toEqual(['a:m0', 'b:m1', 'b:m2', 'b:m3']);
    expect(overlap).toBe(false);
    expect(fifoQueues(a)).toEqual([]);
    expect(fifoQueues(b)).toHaveLength(2);
  });

  test('the queue waits suspendCurrentQueueTimeMs before the retry, with a growing reconsumeTimes', async () => {
    const attempts: number[] = [];
    const c = consumer(
      (messages) => {
        attempts.push(messages[0]!.reconsumeTimes);
        return attempts.length < 3 ? 'RECONSUME_LATER' : 'CONSUME_SUCCESS';
      },
      { topic: 'Fifo', orderly: true, suspendCurrentQueueTimeMs: 1000 },
    );
    await c.start();
    await producer.send({ topic: 'Fifo', body: 'x', messageGroup: 'g' });
    await until(() => attempts.length === 1, 'first attempt');
    await advance(cluster.clock, 999, 333);
    expect(attempts).toHaveLength(1);
    await advance(cluster.clock, 1);
    await until(() => attempts.length === 2, 'second attempt');
    await advance(cluster.clock, 1000);
    await until(() => attempts.length === 3, 'third attempt');
    expect(attempts).toEqual([0, 1, 2]);
  });

  test('past maxReconsumeTimes the message is dead-lettered and the queue moves on', async () => {
    const seen: string[] = [];
    const c = consumer(
      (messages) => {
        const body = text(messages[0]!);
        seen.push(body);
        return body === 'poison' ? 'RECONSUME_LATER' : 'CONSUME_SUCCESS';
      },
      { topic: 'Fifo', orderly: true, maxReconsumeTimes: 2 },
    );
    await c.start();
    const sent = await producer.send({ topic: 'Fifo', body: 'poison', messageGroup: 'g' });
    await producer.send({ topic: 'Fifo', body: 'after', messageGroup: 'g' });
    await until(() => seen.length === 1, 'first attempt');
    await advance(cluster.clock, 2000);
    await until(() => seen.includes('after'), 'the queue moved on');
    expect(seen).toEqual(['poison', 'poison', 'poison', 'after']);
    const dlq = await readQueue(cluster.broker(sent.brokerName), deadLetterTopicOf(GROUP));
    expect(dlq.map(text)).toEqual(['poison']);
  });
});

describe('PushConsumer broadcasting', () => {
  test('every consumer sees every message; offsets stay with the clients', async () => {
    const recorders = [recorder(), recorder(), recorder()];
    for (const [i, r] of recorders.entries()) {
      await consumer(r.listener, { messageModel: 'BROADCASTING', clientId: `b-${i}` }).start();
    }
    const sent = await sendAll(20);
    for (const r of recorders) await until(() => r.seen.length >= 20, 'all messages');
    for (const r of recorders) expect(r.bodies().sort()).toEqual(sent.sort());
    await advance(cluster.clock, 5000);
    for (const b of cluster.brokers) {
      for (let q = 0; q < 4; q++)
        expect(b.queryOffset({ group: GROUP, topic: TOPIC, queueId: q })).toBeUndefined();
      expect(b.getTopic(retryTopicOf(GROUP))).toBeUndefined();
    }
  });

  test('a failed broadcast message is dropped (reported), not retried', async () => {
    const r = recorder(() => 'RECONSUME_LATER');
    const dropped: string[] = [];
    const c = consumer(r.listener, { messageModel: 'BROADCASTING' });
    c.on('consumer.dropped', (e) => dropped.push(e.msgId));
    const sendBack = jest.spyOn(cluster.transport, 'sendBack');
    await c.start();
    const sent = await producer.send({ topic: TOPIC, body: 'x' });
    await until(() => dropped.length === 1, 'dropped');
    await advance(cluster.clock, 60_000, 10_000);
    expect(r.seen).toHaveLength(1);
    expect(dropped).toEqual([sent.msgId]);
    expect(sendBack).not.toHaveBeenCalled();
  });

  test('the offset store is loaded at start and saved on shutdown: a restart resumes', async () => {
    let saved: Record<string, number> = {};
    const offsetStore = { load: () => saved, save: (o: Record<string, number>) => void (saved = o) };
    const r1 = recorder();
    const c1 = consumer(r1.listener, { messageModel: 'BROADCASTING', offsetStore });
    await c1.start();
    const first = await sendAll(10);
    await until(() => r1.seen.length >= 10, 'first batch');
    await c1.shutdown();
    expect(Object.values(saved).reduce((a, b) => a + b, 0)).toBe(10);
    const second = await sendAll(10, 'n');
    const r2 = recorder();
    const c2 = consumer(r2.listener, { messageModel: 'BROADCASTING', offsetStore });
    await c2.start();
    await until(() => r2.seen.length >= 10, 'second batch');
    await advance(cluster.clock, 1000);
    expect(r2.bodies().sort()).toEqual(second.sort());
    expect(r1.bodies().sort()).toEqual(first.sort());
  });
});
