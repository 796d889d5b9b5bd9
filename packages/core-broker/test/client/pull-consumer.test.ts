import { RocketError } from '../../src/common/errors';
import type { MessageQueue } from '../../src/client/allocation';
import { Producer } from '../../src/client/producer';
import { PullConsumer } from '../../src/client/pull-consumer';
import type { PullConsumerOptions } from '../../src/client/pull-consumer';
import type { Cluster } from '../support/client-harness';
import { advance, startCluster, text, until } from '../support/client-harness';
import { settle } from '../support/settle';

const TOPIC = 'Orders';
const GROUP = 'PCG';
let cluster: Cluster;
let producer: Producer;
let consumers: PullConsumer[];

beforeEach(async () => {
  consumers = [];
  cluster = await startCluster({
    brokerNames: ['broker-a', 'broker-b'],
    topics: [{ topic: TOPIC, queueCount: 2 }],
  });
  producer = new Producer({ group: 'PG', transport: cluster.transport, clock: cluster.clock });
  await producer.start();
});

afterEach(async () => {
  jest.restoreAllMocks();
  for (const c of consumers) await c.shutdown();
  await producer.shutdown();
  await cluster.close();
});

function consumer(options: Partial<PullConsumerOptions> = {}): PullConsumer {
  const c = new PullConsumer({
    group: GROUP,
    transport: cluster.transport,
    clock: cluster.clock,
    consumeFromWhere: 'FIRST_OFFSET',
    ...options,
  });
  consumers.push(c);
  return c;
}

function sendTo(brokerName: string, queueId: number, body: string): Promise<unknown> {
  return cluster.transport.send(brokerName, {
    producerGroup: 'PG',
    topic: TOPIC,
    queueId,
    messages: [{ topic: TOPIC, body: Buffer.from(body) }],
    bornTimestampMs: cluster.clock.now(),
  });
}

const mq = (brokerName: string, queueId: number, topic = TOPIC): MessageQueue => ({
  brokerName,
  topic,
  queueId,
});

/** Polls (without waiting) until `n` messages came back or nothing more does. */
async function pollAll(c: PullConsumer, n: number): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < 50 && out.length < n; i++) out.push(...(await c.poll(0)).map(text));
  return out;
}

describe('PullConsumer', () => {
  test('assign + poll returns the messages of the assigned queues only, in queue order', async () => {
    const c = consumer();
    await c.start();
    expect(await c.fetchMessageQueues(TOPIC)).toHaveLength(4);
    for (let i = 0; i < 5; i++) {
      await sendTo('broker-a', 1, `a1-${i}`);
      await sendTo('broker-b', 1, `b1-${i}`);
      await sendTo('broker-a', 0, `a0-${i}`);
    }
    c.assign([mq('broker-a', 1)]);
    expect(c.assignment()).toEqual([mq('broker-a', 1)]);
    expect(await pollAll(c, 100)).toEqual([0, 1, 2, 3, 4].map((i) => `a1-${i}`));
  });

  test('poll waits (long polling) and returns as soon as a message arrives', async () => {
    const c = consumer();
    await c.start();
    c.assign(await c.fetchMessageQueues(TOPIC));
    let result: string[] | undefined;
    const polling = c.poll(10_000).then((ms) => (result = ms.map(text)));
    await advance(cluster.clock, 3000);
    expect(result).toBeUndefined();
    await producer.send({ topic: TOPIC, body: 'now' });
    await polling;
    expect(result).toEqual(['now']);
  });

  test('poll returns [] at its timeout', async () => {
    const c = consumer();
    await c.start();
    c.assign(await c.fetchMessageQueues(TOPIC));
    let result: unknown;
    const polling = c.poll(2000).then((ms) => (result = ms));
    await advance(cluster.clock, 1999);
    expect(result).toBeUndefined();
    await advance(cluster.clock, 1);
    await polling;
    expect(result).toEqual([]);
  });

  test('poll returns at most pullBatchSize messages', async () => {
    const c = consumer({ pullBatchSize: 5 });
    await c.start();
    c.assign(await c.fetchMessageQueues(TOPIC));
    for (let i = 0; i < 12; i++) await producer.send({ topic: TOPIC, body: String(i) });
    const sizes: number[] = [];
    let total = 0;
    for (let i = 0; i < 20 && total < 12; i++) {
      const got = await c.poll(0);
      sizes.push(got.length);
      total += got.length;
    }
    expect(total).toBe(12);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(5);
  });

  test('commitSync commits the positions after what poll returned; a new consumer resumes there', async () => {
    const c1 = consumer({ autoCommit: false });
    await c1.start();
    c1.assign(await c1.fetchMessageQueues(TOPIC));
    for (let i = 0; i < 8; i++) await producer.send({ topic: TOPIC, body: `a${i}` });
    const first = await pollAll(c1, 8);
    expect(first.sort()).toEqual([...Array(8).keys()].map((i) => `a${i}`).sort());
    for (const b of cluster.brokers)
      expect(b.queryOffset({ group: GROUP, topic: TOPIC, queueId: 0 })).toBeUndefined();
    await c1.commitSync();
    const committed = cluster.brokers.flatMap((b) =>
      [0, 1].map((q) => b.queryOffset({ group: GROUP, topic: TOPIC, queueId: q }) ?? 0),
    );
    expect(committed.reduce((a, b) => a + b, 0)).toBe(8);
    await c1.shutdown();
    for (let i = 0; i < 4; i++) await producer.send({ topic: TOPIC, body: `b${i}` });
    const c2 = consumer({ consumeFromWhere: 'FIRST_OFFSET' });
    await c2.start();
    c2.assign(await c2.fetchMessageQueues(TOPIC));
    expect((await pollAll(c2, 4)).sort()).toEqual(['b0', 'b1', 'b2', 'b3']);
  });

  test('commitSync with explicit offsets, and committed() reads them back', async () => {
    const c = consumer({ autoCommit: false });
    await c.start();
    const q = mq('broker-b', 1);
    c.assign([q]);
    for (let i = 0; i < 3; i++) await sendTo('broker-b', 1, String(i));
    await c.commitSync([{ queue: q, offset: 2 }]);
    expect(await c.committed(q)).toBe(2);
  });

  test('auto-commit commits what earlier polls returned once the interval passed, and on shutdown', async () => {
    const c = consumer({ autoCommitIntervalMs: 5000 });
    await c.start();
    const q = mq('broker-a', 0);
    c.assign([q]);
    await sendTo('broker-a', 0, '1');
    await sendTo('broker-a', 0, '2');
    expect(await pollAll(c, 2)).toEqual(['1', '2']);
    await c.poll(0);
    await settle();
    expect(await c.committed(q)).toBeUndefined();
    await advance(cluster.clock, 5000);
    await c.poll(0);
    await settle();
    expect(await c.committed(q)).toBe(2);
    await sendTo('broker-a', 0, '3');
    expect(await pollAll(c, 1)).toEqual(['3']);
    await c.shutdown();
    expect(cluster.broker('broker-a').queryOffset({ group: GROUP, topic: TOPIC, queueId: 0 })).toBe(3);
  });

  test('seek, seekToBegin, seekToEnd and seekToTimestamp move the next poll', async () => {
    const c = consumer({ autoCommit: false });
    await c.start();
    const q = mq('broker-a', 0);
    c.assign([q]);
    for (let i = 0; i < 5; i++) {
      await sendTo('broker-a', 0, `m${i}`);
      cluster.clock.advance(1000);
    }
    expect(await pollAll(c, 5)).toEqual(['m0', 'm1', 'm2', 'm3', 'm4']);
    await c.seek(q, 3);
    expect(await pollAll(c, 2)).toEqual(['m3', 'm4']);
    await c.seekToBegin(q);
    expect(await pollAll(c, 5)).toEqual(['m0', 'm1', 'm2', 'm3', 'm4']);
    await c.seekToEnd(q);
    expect(await c.poll(0)).toEqual([]);
    const start = cluster.clock.now() - 5000;
    await c.seekToTimestamp(q, start + 2000);
    expect(await pollAll(c, 3)).toEqual(['m2', 'm3', 'm4']);
    await expect(c.seek(q, 99)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(c.seek(mq('broker-b', 0), 0)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });

  test('a seek drops what a pull parked before it brings back', async () => {
    const c = consumer({ autoCommit: false });
    await c.start();
    const q0 = mq('broker-a', 0);
    c.assign([q0, mq('broker-a', 1)]);
    await sendTo('broker-a', 0, 'old');
    expect(await pollAll(c, 1)).toEqual(['old']);
    await sendTo('broker-a', 1, 'other');
    // returns 'other' at once, leaving the long poll of q0 (at offset 1) parked at the broker
    expect((await c.poll(5000)).map(text)).toEqual(['other']);
    await c.seek(q0, 0);
    await sendTo('broker-a', 0, 'x'); // wakes the parked pull, whose answer is stale now
    await settle();
    expect(await pollAll(c, 2)).toEqual(['old', 'x']);
    expect(await c.poll(0)).toEqual([]);
  });

  test('subscribe: members of the group split the queues and every message is polled once', async () => {
    const c1 = consumer({ clientId: 'p-1' });
    const c2 = consumer({ clientId: 'p-2' });
    c1.subscribe(TOPIC);
    c2.subscribe(TOPIC);
    await c1.start();
    await c2.start();
    await settle();
    await until(() => c1.assignment().length === 2 && c2.assignment().length === 2, 'split 2/2');
    for (let i = 0; i < 12; i++) await producer.send({ topic: TOPIC, body: `m${i}` });
    const got = [...(await pollAll(c1, 12)), ...(await pollAll(c2, 12))];
    expect(got.sort()).toEqual([...Array(12).keys()].map((i) => `m${i}`).sort());
    await c2.shutdown();
    await until(() => c1.assignment().length === 4, 'c1 takes all');
  });

  test('subscribe with a tag filter', async () => {
    const c = consumer();
    c.subscribe(TOPIC, 'keep');
    await c.start();
    await producer.send({ topic: TOPIC, body: 'a', tag: 'keep' });
    await producer.send({ topic: TOPIC, body: 'b', tag: 'drop' });
    await producer.send({ topic: TOPIC, body: 'c', tag: 'keep' });
    const got = await pollAll(c, 2);
    expect(got.sort()).toEqual(['a', 'c']);
    expect(await c.poll(0)).toEqual([]);
  });

  test('a failed pull is reported and the queue is pulled again after pullRetryDelayMs', async () => {
    const c = consumer({ pullRetryDelayMs: 2000 });
    await c.start();
    c.assign([mq('broker-a', 0)]);
    const errors: unknown[] = [];
    c.on('consumer.pull.error', (e) => errors.push(e.error));
    const pull = jest
      .spyOn(cluster.transport, 'pull')
      .mockRejectedValueOnce(new RocketError('BROKER_UNAVAILABLE', 'injected'));
    await sendTo('broker-a', 0, 'x');
    let result: string[] | undefined;
    const polling = c.poll(5000).then((ms) => (result = ms.map(text)));
    await settle();
    expect(errors).toHaveLength(1);
    expect(result).toBeUndefined();
    await advance(cluster.clock, 2000);
    await polling;
    expect(result).toEqual(['x']);
    expect(pull).toHaveBeenCalledTimes(2);
  });

  test('assign and subscribe exclude each other; poll needs start', async () => {
    const c = consumer();
    await expect(c.poll(0)).rejects.toMatchObject({ code: 'CLOSED' });
    c.assign([mq('broker-a', 0)]);
    expect(() => c.subscribe(TOPIC)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    const d = consumer();
    d.subscribe(TOPIC);
    expect(() => d.assign([mq('broker-a', 0)])).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
  });

  test('shutdown wakes a waiting poll', async () => {
    const c = consumer();
    await c.start();
    c.assign([mq('broker-a', 0)]);
    const polling = c.poll(60_000);
    await settle();
    await c.shutdown();
    await expect(polling).resolves.toEqual([]);
  });
});
