import { queueForGroup } from '../../src/broker/broker';
import { RocketError, isRocketError } from '../../src/common/errors';
import { Producer } from '../../src/client/producer';
import type { SendResult } from '../../src/client/producer';
import type { Transport } from '../../src/client/transport';
import { Permission } from '../../src/message/protocol';
import type { Cluster } from '../support/client-harness';
import { advance, gate, readQueue, startCluster, text } from '../support/client-harness';
import { settle } from '../support/settle';

const TOPIC = 'Orders';
/** Messages with a message group go to a FIFO topic (the broker refuses them on a normal one). */
const FIFO_TOPIC = 'OrdersFifo';
let cluster: Cluster;
let producers: Producer[];

async function producer(options: Partial<ConstructorParameters<typeof Producer>[0]> = {}): Promise<Producer> {
  const p = new Producer({ group: 'PG', transport: cluster.transport, clock: cluster.clock, ...options });
  producers.push(p);
  await p.start();
  return p;
}

function storeFails(name: string): jest.SpyInstance {
  const store = cluster.stores[cluster.brokers.findIndex((b) => b.brokerName === name)]!;
  return jest
    .spyOn(store, 'appendBatch')
    .mockRejectedValue(new RocketError('STORE_IO_ERROR', `injected write failure on ${name}`));
}

beforeEach(async () => {
  producers = [];
  cluster = await startCluster({
    brokerNames: ['broker-a', 'broker-b'],
    topics: [
      { topic: TOPIC, queueCount: 4 },
      { topic: FIFO_TOPIC, queueCount: 4, fifo: true },
    ],
  });
});

afterEach(async () => {
  jest.restoreAllMocks();
  for (const p of producers) await p.shutdown();
  await cluster.close();
});

describe('Producer sends', () => {
  test('send resolves with where the message was stored, and the broker has it', async () => {
    const p = await producer();
    const r = await p.send({
      topic: TOPIC,
      body: 'hello',
      tag: 'created',
      keys: ['o-1'],
      properties: { region: 'eu' },
    });
    expect(r).toMatchObject({ topic: TOPIC, queueOffset: 0 });
    expect(['broker-a', 'broker-b']).toContain(r.brokerName);
    const stored = await readQueue(cluster.broker(r.brokerName), TOPIC, r.queueId);
    expect(stored).toHaveLength(1);
    expect(stored[0]).toMatchObject({
      msgId: r.msgId,
      tag: 'created',
      keys: ['o-1'],
      properties: { region: 'eu' },
    });
    expect(text(stored[0]!)).toBe('hello');
  });

  test('options override the message fields', async () => {
    const p = await producer();
    const r = await p.send({ topic: TOPIC, body: Buffer.from('x'), tag: 'a' }, { tag: 'b', keys: ['k'] });
    const [m] = await readQueue(cluster.broker(r.brokerName), TOPIC, r.queueId);
    expect(m).toMatchObject({ tag: 'b', keys: ['k'] });
  });

  test('sendAsync resolves its promise and calls its callback', async () => {
    const p = await producer();
    const calls: Array<[Error | undefined, SendResult | undefined]> = [];
    const promise = p.sendAsync({ topic: TOPIC, body: 'a' }, (error, result) => calls.push([error, result]));
    const result = await promise;
    await settle();
    expect(calls).toEqual([[undefined, result]]);
    const plain = await p.sendAsync({ topic: TOPIC, body: 'b' }, { tag: 't' });
    expect(plain.msgId).not.toBe(result.msgId);
  });

  test('sendAsync hands a failure to the callback without an unhandled rejection, and survives a throwing callback', async () => {
    const p = await producer({ retryTimesWhenSendFailed: 0 });
    storeFails('broker-a');
    storeFails('broker-b');
    const errors: unknown[] = [];
    const callbackErrors: unknown[] = [];
    p.on('producer.callback.error', (e) => callbackErrors.push(e.error));
    p.sendAsync({ topic: TOPIC, body: 'a' }, (error) => {
      errors.push(error);
      throw new Error('callback bug');
    });
    await settle();
    expect(errors).toHaveLength(1);
    expect(isRocketError(errors[0], 'SEND_FAILED')).toBe(true);
    expect(callbackErrors).toHaveLength(1);
  });

  test('sendOneway stores the message without waiting; a failure is counted and emitted, not thrown', async () => {
    const p = await producer();
    p.sendOneway({ topic: TOPIC, body: 'one' });
    await settle();
    const total = async (): Promise<number> => {
      let n = 0;
      for (const b of cluster.brokers) for (let q = 0; q < 4; q++) n += (await readQueue(b, TOPIC, q)).length;
      return n;
    };
    expect(await total()).toBe(1);
    storeFails('broker-a');
    storeFails('broker-b');
    const failed: unknown[] = [];
    p.on('producer.send.failed', (e) => failed.push(e));
    p.sendOneway({ topic: TOPIC, body: 'lost' });
    await settle();
    expect(p.stats()).toMatchObject({ sent: 1, onewayFailed: 1 });
    expect(failed).toEqual([expect.objectContaining({ topic: TOPIC, oneway: true, attempts: 1 })]);
  });

  test('sendBatch stores the messages back to back in one queue, one result each in order', async () => {
    const p = await producer();
    const results = await p.sendBatch([
      { topic: TOPIC, body: '1' },
      { topic: TOPIC, body: '2' },
      { topic: TOPIC, body: '3' },
    ]);
    expect(results.map((r) => r.queueOffset)).toEqual([0, 1, 2]);
    expect(new Set(results.map((r) => `${r.brokerName}/${r.queueId}`)).size).toBe(1);
    const stored = await readQueue(cluster.broker(results[0]!.brokerName), TOPIC, results[0]!.queueId);
    expect(stored.map(text)).toEqual(['1', '2', '3']);
  });

  test('sendBatch refuses mixed topics and mixed message groups', async () => {
    cluster.createTopic({ topic: 'Other', queueCount: 1 });
    const p = await producer();
    await expect(p.sendBatch([])).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(
      p.sendBatch([
        { topic: TOPIC, body: '1' },
        { topic: 'Other', body: '2' },
      ]),
    ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringContaining('one topic') });
    await expect(
      p.sendBatch([
        { topic: TOPIC, body: '1', messageGroup: 'g1' },
        { topic: TOPIC, body: '2', messageGroup: 'g2' },
      ]),
    ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringContaining('message group') });
  });

  test('sends go round robin over the write queues of every broker', async () => {
    const p = await producer();
    const seen = new Map<string, number>();
    for (let i = 0; i < 16; i++) {
      const r = await p.send({ topic: TOPIC, body: String(i) });
      const key = `${r.brokerName}/${r.queueId}`;
      seen.set(key, (seen.get(key) ?? 0) + 1);
    }
    expect(seen.size).toBe(8);
    expect([...seen.values()].every((n) => n === 2)).toBe(true);
  });

  test('queues without write permission, and brokers with write-only routes, are respected', async () => {
    cluster.broker('broker-a').createTopic({ topic: TOPIC, queueCount: 4, permission: Permission.READ });
    cluster.broker('broker-b').createTopic({ topic: TOPIC, readQueueCount: 4, writeQueueCount: 2 });
    const p = await producer();
    for (let i = 0; i < 8; i++) {
      const r = await p.send({ topic: TOPIC, body: String(i) });
      expect(r.brokerName).toBe('broker-b');
      expect(r.queueId).toBeLessThan(2);
    }
  });

  test('FIFO: messages of one group land in one queue, in send order, chosen by the group hash over all write queues', async () => {
    const p = await producer();
    const results: SendResult[] = [];
    for (let i = 0; i < 10; i++)
      results.push(await p.send({ topic: FIFO_TOPIC, body: `o1-${i}`, messageGroup: 'order-1' }));
    const places = new Set(results.map((r) => `${r.brokerName}/${r.queueId}`));
    expect(places.size).toBe(1);
    const index = queueForGroup('order-1', 8);
    expect(results[0]!.brokerName).toBe(index < 4 ? 'broker-a' : 'broker-b');
    expect(results[0]!.queueId).toBe(index % 4);
    const stored = await readQueue(cluster.broker(results[0]!.brokerName), FIFO_TOPIC, results[0]!.queueId);
    expect(stored.map(text)).toEqual(results.map((_, i) => `o1-${i}`));
    // many groups spread over the queues
    const spread = new Set<string>();
    for (let g = 0; g < 40; g++) {
      const r = await p.send({ topic: FIFO_TOPIC, body: 'x', messageGroup: `group-${g}` });
      spread.add(`${r.brokerName}/${r.queueId}`);
    }
    expect(spread.size).toBeGreaterThan(4);
  });

  test('delayMs delivers the message after the delay, not before', async () => {
    const p = await producer();
    const r = await p.send({ topic: TOPIC, body: 'later', delayMs: 5000 });
    expect(await readQueue(cluster.broker(r.brokerName), TOPIC, r.queueId)).toHaveLength(0);
    await advance(cluster.clock, 5000);
    const stored = await readQueue(cluster.broker(r.brokerName), TOPIC, r.queueId);
    expect(stored.map(text)).toEqual(['later']);
  });

  test('the producer heartbeats as a member of its group to the brokers it sends to', async () => {
    const p = await producer();
    await p.send({ topic: TOPIC, body: 'x' });
    await settle();
    for (const b of cluster.brokers) expect(b.producerIds('PG')).toContain(p.clientId);
  });
});

describe('Producer failures and retries', () => {
  test('a retriable failure is retried on the other broker', async () => {
    const failing = storeFails('broker-a');
    const p = await producer();
    const attempts: number[] = [];
    p.on('producer.send', (e) => attempts.push(e.attempts));
    for (let i = 0; i < 8; i++) {
      const r = await p.send({ topic: TOPIC, body: String(i) });
      expect(r.brokerName).toBe('broker-b');
    }
    expect(failing).toHaveBeenCalled();
    // every send that first tried broker-a needed exactly one more attempt
    expect(attempts.filter((a) => a === 2)).toHaveLength(failing.mock.calls.length);
    expect(attempts.every((a) => a <= 2)).toBe(true);
  });

  test('latency fault tolerance: a broker that failed a send is avoided for 10 s, then used again', async () => {
    const failing = storeFails('broker-a');
    const p = await producer();
    const firstAttempts: string[] = [];
    p.on('producer.send', (e) => firstAttempts.push(e.attempts === 1 ? e.brokerName : 'retried'));
    // round robin reaches broker-a within 8 queues: that send fails over, and broker-a is avoided
    for (let i = 0; i < 8; i++) await p.send({ topic: TOPIC, body: String(i) });
    expect(failing).toHaveBeenCalledTimes(1);
    failing.mockRestore();
    // broker-a works again, but is still avoided: 16 more sends never try it
    for (let i = 0; i < 16; i++)
      expect((await p.send({ topic: TOPIC, body: 'x' })).brokerName).toBe('broker-b');
    expect(firstAttempts.filter((b) => b === 'retried')).toHaveLength(1);
    await advance(cluster.clock, 10_000);
    const after = new Set<string>();
    for (let i = 0; i < 8; i++) after.add((await p.send({ topic: TOPIC, body: 'y' })).brokerName);
    expect(after).toEqual(new Set(['broker-a', 'broker-b']));
  });

  test('with sendLatencyFaultEnable false, round robin comes back to a failed broker at once', async () => {
    const failing = storeFails('broker-a');
    const p = await producer({ sendLatencyFaultEnable: false });
    for (let i = 0; i < 16; i++) await p.send({ topic: TOPIC, body: String(i) });
    // round robin comes back to broker-a about once per pass over the queues (a failed send skips
    // the rest of broker-a's queues for its retry): 3 or 4 times in 16 sends, against exactly 1
    // with fault tolerance on (the test above)
    expect(failing.mock.calls.length).toBeGreaterThanOrEqual(3);
  });

  test('when every broker is avoided, sends still go out', async () => {
    const p = await producer();
    storeFails('broker-a');
    storeFails('broker-b');
    await expect(p.send({ topic: TOPIC, body: 'both fail' })).rejects.toMatchObject({ code: 'SEND_FAILED' });
    jest.restoreAllMocks();
    const r = await p.send({ topic: TOPIC, body: 'recovered' });
    expect(['broker-a', 'broker-b']).toContain(r.brokerName);
  });

  test('a closed broker is unavailable, and sends go to the other one', async () => {
    await cluster.broker('broker-a').close();
    const p = await producer();
    for (let i = 0; i < 6; i++)
      expect((await p.send({ topic: TOPIC, body: String(i) })).brokerName).toBe('broker-b');
  });

  test('when every attempt fails: SEND_FAILED naming the attempts, with the last cause, retriable as the cause', async () => {
    const a = storeFails('broker-a');
    const b = storeFails('broker-b');
    const p = await producer({ retryTimesWhenSendFailed: 2 });
    const error = await p.send({ topic: TOPIC, body: 'x' }).catch((e: unknown) => e);
    expect(isRocketError(error, 'SEND_FAILED')).toBe(true);
    const e = error as RocketError;
    expect(e.message).toContain('3 attempts');
    expect(e.retriable).toBe(true);
    expect(isRocketError(e.cause, 'STORE_IO_ERROR')).toBe(true);
    expect(a.mock.calls.length + b.mock.calls.length).toBe(3);
    expect(p.stats().failed).toBe(1);
  });

  test('a non-retriable answer from the broker rejects at once, unwrapped', async () => {
    const p = await producer();
    const send = jest.spyOn(cluster.transport, 'send');
    // the broker's own limit (maxDelayMs, 24 h) is not checked client-side
    const error = await p
      .send({ topic: TOPIC, body: 'x', deliveryTimeMs: cluster.clock.now() + 48 * 3600_000 })
      .catch((e: unknown) => e);
    expect(isRocketError(error, 'INVALID_ARGUMENT')).toBe(true);
    expect(send).toHaveBeenCalledTimes(1);
  });

  test('a topic missing everywhere fails with TOPIC_NOT_FOUND', async () => {
    const p = await producer();
    await expect(p.send({ topic: 'Nowhere', body: 'x' })).rejects.toMatchObject({ code: 'TOPIC_NOT_FOUND' });
  });

  test('a topic deleted on one broker after the route was cached: retried on the other', async () => {
    const p = await producer();
    await p.send({ topic: TOPIC, body: 'warm the route' });
    cluster.broker('broker-a').deleteTopic(TOPIC);
    for (let i = 0; i < 6; i++)
      expect((await p.send({ topic: TOPIC, body: String(i) })).brokerName).toBe('broker-b');
  });

  test('a topic made unwritable on one broker after the route was cached: retried on the other', async () => {
    const p = await producer();
    await p.send({ topic: TOPIC, body: 'warm the route' });
    cluster.broker('broker-a').createTopic({ topic: TOPIC, queueCount: 4, permission: Permission.READ });
    for (let i = 0; i < 6; i++)
      expect((await p.send({ topic: TOPIC, body: String(i) })).brokerName).toBe('broker-b');
  });

  test('FIFO sends retry on their own queue, never another', async () => {
    const index = queueForGroup('g', 8);
    const owner = index < 4 ? 'broker-a' : 'broker-b';
    const failing = storeFails(owner);
    const p = await producer({ retryTimesWhenSendFailed: 1 });
    await expect(p.send({ topic: FIFO_TOPIC, body: 'x', messageGroup: 'g' })).rejects.toMatchObject({
      code: 'SEND_FAILED',
    });
    expect(failing).toHaveBeenCalledTimes(2);
    failing.mockRestore();
    const r = await p.send({ topic: FIFO_TOPIC, body: 'y', messageGroup: 'g' });
    expect(r.brokerName).toBe(owner);
  });

  test('a send with no answer times out after sendTimeoutMs', async () => {
    const silent = gate<never>();
    const transport: Transport = Object.create(cluster.transport) as Transport;
    transport.send = () => silent.promise;
    const p = await producer({ transport, sendTimeoutMs: 3000 });
    const outcome = p.send({ topic: TOPIC, body: 'x' }).catch((e: unknown) => e);
    await settle();
    await advance(cluster.clock, 3000);
    const error = await outcome;
    expect(isRocketError(error, 'TIMEOUT')).toBe(true);
    expect((error as RocketError).retriable).toBe(true);
  });

  test('the route is cached, and fetched again after 30 s and after a failure', async () => {
    const route = jest.spyOn(cluster.transport, 'topicRoute');
    const p = await producer();
    await p.send({ topic: TOPIC, body: '1' });
    await p.send({ topic: TOPIC, body: '2' });
    expect(route).toHaveBeenCalledTimes(1);
    await advance(cluster.clock, 30_000, 10_000);
    await p.send({ topic: TOPIC, body: '3' });
    expect(route).toHaveBeenCalledTimes(2);
    const failing = storeFails('broker-a');
    storeFails('broker-b');
    await p.send({ topic: TOPIC, body: '4' }).catch(() => undefined);
    expect(route.mock.calls.length).toBeGreaterThanOrEqual(4);
    failing.mockRestore();
  });
});

describe('Producer validation and lifecycle', () => {
  test.each([
    ['an invalid topic name', { topic: 'bad topic!', body: 'x' }],
    ['a reserved topic', { topic: '%RETRY%G', body: 'x' }],
    ['an empty body', { topic: TOPIC, body: '' }],
    ['a tag of "*"', { topic: TOPIC, body: 'x', tag: '*' }],
    ['a key with whitespace', { topic: TOPIC, body: 'x', keys: ['a b'] }],
    ['a system property', { topic: TOPIC, body: 'x', properties: { __ORIGIN_TOPIC: 'x' } }],
    ['a negative delay', { topic: TOPIC, body: 'x', delayMs: -1 }],
    ['both delay and delivery time', { topic: TOPIC, body: 'x', delayMs: 5, deliveryTimeMs: 5 }],
    ['a too long message group', { topic: TOPIC, body: 'x', messageGroup: 'g'.repeat(65) }],
  ])('%s is refused with INVALID_ARGUMENT before anything is sent', async (_what, message) => {
    const p = await producer();
    const send = jest.spyOn(cluster.transport, 'send');
    await expect(p.send(message)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(() => p.sendOneway(message)).toThrow(RocketError);
    expect(send).not.toHaveBeenCalled();
  });

  test('a body over maxBodyBytes is refused client-side', async () => {
    const p = await producer({ maxBodyBytes: 16 });
    await expect(p.send({ topic: TOPIC, body: Buffer.alloc(17) })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: expect.stringContaining('maxBodyBytes'),
    });
  });

  test('bad options are INVALID_OPTION', () => {
    expect(() => new Producer({ group: 'PG', transport: cluster.transport, sendTimeoutMs: 0 })).toThrow(
      expect.objectContaining({ code: 'INVALID_OPTION' }),
    );
    expect(() => new Producer({ group: 'bad group', transport: cluster.transport })).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
  });

  test('sending before start or after shutdown is CLOSED', async () => {
    const p = new Producer({ group: 'PG', transport: cluster.transport, clock: cluster.clock });
    await expect(p.send({ topic: TOPIC, body: 'x' })).rejects.toMatchObject({ code: 'CLOSED' });
    await p.start();
    await p.shutdown();
    await expect(p.send({ topic: TOPIC, body: 'x' })).rejects.toMatchObject({ code: 'CLOSED' });
  });

  test('shutdown waits for sends in flight, then unregisters', async () => {
    const held = gate();
    const transport: Transport = Object.create(cluster.transport) as Transport;
    transport.send = async (broker, request) => {
      await held.promise;
      return cluster.transport.send(broker, request);
    };
    const unregister = jest.spyOn(cluster.transport, 'unregister');
    const p = await producer({ transport });
    const sent = p.send({ topic: TOPIC, body: 'x' });
    await settle();
    let stopped = false;
    const stopping = p.shutdown().then(() => (stopped = true));
    await settle();
    expect(stopped).toBe(false);
    held.open();
    await stopping;
    await expect(sent).resolves.toMatchObject({ topic: TOPIC });
    expect(unregister).toHaveBeenCalledWith(p.clientId);
    for (const b of cluster.brokers) expect(b.producerIds('PG')).not.toContain(p.clientId);
  });
});

describe('Producer coalescing of single-message sends', () => {
  /** Sends `bodies` in one turn; resolves with each send's outcome, in order. */
  function burst(
    p: Producer,
    bodies: Array<string | { body: string; messageGroup?: string; delayMs?: number }>,
  ): Promise<Array<PromiseSettledResult<SendResult>>> {
    return Promise.allSettled(
      bodies.map((b) =>
        p.sendAsync(
          typeof b === 'string'
            ? { topic: TOPIC, body: b }
            : { topic: b.messageGroup === undefined ? TOPIC : FIFO_TOPIC, ...b },
        ),
      ),
    );
  }

  const values = (outcomes: Array<PromiseSettledResult<SendResult>>): SendResult[] =>
    outcomes.map((o) => {
      if (o.status !== 'fulfilled') throw o.reason;
      return o.value;
    });

  test('sends of one turn leave as one request; each gets its own result, stored in send order', async () => {
    const p = await producer();
    const send = jest.spyOn(cluster.transport, 'send');
    const bodies = Array.from({ length: 10 }, (_, i) => `m${i}`);
    const results = values(await burst(p, bodies));
    expect(send).toHaveBeenCalledTimes(1);
    expect(send.mock.calls[0]![1].messages).toHaveLength(10);
    expect(new Set(results.map((r) => `${r.brokerName}/${r.queueId}`)).size).toBe(1);
    expect(results.map((r) => r.queueOffset)).toEqual(bodies.map((_, i) => i));
    expect(new Set(results.map((r) => r.msgId)).size).toBe(10);
    const stored = await readQueue(cluster.broker(results[0]!.brokerName), TOPIC, results[0]!.queueId);
    expect(stored.map(text)).toEqual(bodies);
    expect(stored.map((m) => m.msgId)).toEqual(results.map((r) => r.msgId));
    expect(p.stats()).toMatchObject({ sent: 10, failed: 0 });
    // the next turn's sends are the next batch, on the next queue
    const next = values(await burst(p, ['n0', 'n1']));
    expect(send).toHaveBeenCalledTimes(2);
    expect(`${next[0]!.brokerName}/${next[0]!.queueId}`).not.toBe(
      `${results[0]!.brokerName}/${results[0]!.queueId}`,
    );
  });

  test('coalesceSends: false sends each message as its own request, round robin', async () => {
    const p = await producer({ coalesceSends: false });
    const send = jest.spyOn(cluster.transport, 'send');
    const results = values(await burst(p, ['a', 'b', 'c', 'd']));
    expect(send).toHaveBeenCalledTimes(4);
    expect(new Set(results.map((r) => `${r.brokerName}/${r.queueId}`)).size).toBe(4);
  });

  test('a batch holds at most maxCoalescedMessages messages and maxCoalescedBytes body bytes', async () => {
    const p = await producer({ maxCoalescedMessages: 4, maxCoalescedBytes: 10 });
    const send = jest.spyOn(cluster.transport, 'send');
    values(await burst(p, ['1', '2', '3', '4', '5', '6', '7', '8', '9']));
    expect(send.mock.calls.map((c) => c[1].messages.length)).toEqual([4, 4, 1]);
    send.mockClear();
    // 4 + 4 bytes fit in 10, the third 4-byte body starts a new batch; a body of 10 bytes goes alone
    values(await burst(p, ['aaaa', 'bbbb', 'cccc', 'x'.repeat(10), 'dd']));
    expect(send.mock.calls.map((c) => c[1].messages.map((m) => Buffer.from(m.body).toString()))).toEqual([
      ['aaaa', 'bbbb'],
      ['x'.repeat(10)],
      ['cccc', 'dd'],
    ]);
  });

  test('FIFO: a group is only batched with itself, lands in its own queue, in order', async () => {
    const p = await producer();
    const send = jest.spyOn(cluster.transport, 'send');
    const bodies = Array.from({ length: 12 }, (_, i) => {
      const group = ['g1', 'g2', undefined][i % 3];
      return group === undefined ? { body: `plain-${i}` } : { body: `${group}-${i}`, messageGroup: group };
    });
    const results = values(await burst(p, bodies));
    expect(send).toHaveBeenCalledTimes(3);
    for (const call of send.mock.calls) {
      expect(new Set(call[1].messages.map((m) => m.messageGroup)).size).toBe(1);
    }
    for (const group of ['g1', 'g2']) {
      const mine = results.filter((_, i) => bodies[i]!.messageGroup === group);
      const index = queueForGroup(group, 8);
      expect(mine.every((r) => r.queueId === index % 4)).toBe(true);
      expect(mine.every((r) => r.brokerName === (index < 4 ? 'broker-a' : 'broker-b'))).toBe(true);
      const stored = await readQueue(cluster.broker(mine[0]!.brokerName), FIFO_TOPIC, mine[0]!.queueId);
      const expected = bodies.filter((b) => b.messageGroup === group).map((b) => b.body);
      expect(stored.map(text).filter((t) => t.startsWith(group))).toEqual(expected);
    }
  });

  test('a batch that fails as a whole rejects every one of its sends with the failure', async () => {
    const p = await producer({ retryTimesWhenSendFailed: 1 });
    storeFails('broker-a');
    storeFails('broker-b');
    const failed: unknown[] = [];
    p.on('producer.send.failed', (e) => failed.push(e));
    const send = jest.spyOn(cluster.transport, 'send');
    const outcomes = await burst(p, ['a', 'b', 'c']);
    expect(send).toHaveBeenCalledTimes(2); // one batch, tried on both brokers
    for (const o of outcomes) {
      expect(o.status).toBe('rejected');
      expect((o as PromiseRejectedResult).reason).toMatchObject({ code: 'SEND_FAILED', retriable: true });
    }
    expect(p.stats()).toMatchObject({ sent: 0, failed: 3 });
    expect(failed).toHaveLength(1);
  });

  test('a batch the broker refuses for one message is retried message by message: only that one fails', async () => {
    const p = await producer();
    for (const b of cluster.brokers) {
      const original = b.send.bind(b);
      jest.spyOn(b, 'send').mockImplementation(async (request) => {
        if (request.messages.some((m) => Buffer.from(m.body).toString() === 'bad')) {
          throw new RocketError('INVALID_ARGUMENT', 'the broker refuses "bad"');
        }
        return original(request);
      });
    }
    const outcomes = await burst(p, ['ok-1', 'bad', 'ok-2']);
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((outcomes[1] as PromiseRejectedResult).reason).toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: 'the broker refuses "bad"',
    });
    const ok = values([outcomes[0]!, outcomes[2]!]);
    for (const [i, r] of ok.entries()) {
      const stored = await readQueue(cluster.broker(r.brokerName), TOPIC, r.queueId);
      expect(stored.find((m) => m.msgId === r.msgId)).toBeDefined();
      expect(text(stored.find((m) => m.msgId === r.msgId)!)).toBe(`ok-${i + 1}`);
    }
    expect(p.stats()).toMatchObject({ sent: 2, failed: 1 });
  });

  test('a FIFO batch the broker refuses is not split (that would reorder the group): all its sends fail', async () => {
    const p = await producer();
    for (const b of cluster.brokers) {
      jest.spyOn(b, 'send').mockRejectedValue(new RocketError('INVALID_ARGUMENT', 'refused'));
    }
    const send = jest.spyOn(cluster.transport, 'send');
    const outcomes = await burst(p, [
      { body: 'a', messageGroup: 'g' },
      { body: 'b', messageGroup: 'g' },
    ]);
    expect(send).toHaveBeenCalledTimes(1);
    expect(outcomes.map((o) => o.status)).toEqual(['rejected', 'rejected']);
    expect(p.stats()).toMatchObject({ failed: 2 });
  });

  test('messages with a delay are sent on their own, not coalesced', async () => {
    const p = await producer();
    const send = jest.spyOn(cluster.transport, 'send');
    values(await burst(p, ['a', { body: 'later', delayMs: 1000 }, 'b']));
    expect(send.mock.calls.map((c) => c[1].messages.length).sort()).toEqual([1, 2]);
  });

  test('shutdown right after a burst sends the open batch and waits for it', async () => {
    const p = await producer();
    const sends = [p.sendAsync({ topic: TOPIC, body: 'x' }), p.sendAsync({ topic: TOPIC, body: 'y' })];
    let settled = 0;
    for (const s of sends) void s.then(() => settled++);
    await p.shutdown();
    expect(settled).toBe(2);
    const results = await Promise.all(sends);
    expect(results.map((r) => r.queueOffset)).toEqual([0, 1]);
  });

  test('coalescing options are validated', () => {
    const bad = [
      { maxCoalescedMessages: 0 },
      { maxCoalescedMessages: 1025 },
      { maxCoalescedBytes: 0 },
      { coalesceSends: 'yes' as unknown as boolean },
    ];
    for (const options of bad) {
      expect(() => new Producer({ group: 'PG', transport: cluster.transport, ...options })).toThrow(
        expect.objectContaining({ code: 'INVALID_OPTION' }),
      );
    }
  });
});

test('coalescing: a broker answering a batch with the wrong number of results fails each send with PROTOCOL_ERROR', async () => {
  const p = await producer();
  const send = cluster.transport.send.bind(cluster.transport);
  jest.spyOn(cluster.transport, 'send').mockImplementation(async (broker, request) => {
    const response = await send(broker, request);
    return { ...response, messages: response.messages.slice(1) };
  });
  const outcomes = await Promise.allSettled([
    p.sendAsync({ topic: TOPIC, body: 'a' }),
    p.sendAsync({ topic: TOPIC, body: 'b' }),
  ]);
  for (const o of outcomes) {
    expect(o.status).toBe('rejected');
    expect((o as PromiseRejectedResult).reason).toMatchObject({ code: 'PROTOCOL_ERROR' });
  }
});
