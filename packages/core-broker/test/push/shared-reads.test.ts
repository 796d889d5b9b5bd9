import type { Transport } from '../../src/client/transport';
import { systemClock } from '../../src/common/clock';
import { RocketError } from '../../src/common/errors';
import type { PullRequest, PullResponse } from '../../src/message/protocol';
import { SharedReads } from '../../src/push/shared-reads';
import type { QueueReadRequest } from '../../src/client/queue-reader';
import type { PushRig } from './push-harness';
import { RawClient, startRig } from './push-harness';

/** A transport whose pulls stay pending until the test settles them. */
function pendingPulls() {
  const pulls: Array<{ request: PullRequest; resolve(r: PullResponse): void; reject(e: unknown): void }> = [];
  const transport = {
    pull: (_broker: string, request: PullRequest) =>
      new Promise<PullResponse>((resolve, reject) => pulls.push({ request, resolve, reject })),
  } as unknown as Transport;
  return { pulls, transport };
}

const read = (offset: number, expression?: string): QueueReadRequest => ({
  consumerGroup: 'push',
  queue: { brokerName: 'broker-a', topic: 'T', queueId: 0 },
  offset,
  maxCount: 32,
  subscription: expression === undefined ? undefined : { topic: 'T', kind: 'TAG', expression },
  suspendTimeoutMs: 0,
});

const empty = (offset: number): PullResponse =>
  ({
    status: 'NO_NEW_MESSAGE',
    messages: [],
    nextOffset: offset,
    minOffset: 0,
    maxOffset: offset,
  }) as PullResponse;

describe('SharedReads', () => {
  test('identical reads in flight go to the broker once and get the same answer', async () => {
    const { pulls, transport } = pendingPulls();
    const reads = new SharedReads(transport, systemClock);
    const a = reads.read(read(5));
    const b = reads.read(read(5));
    expect(pulls).toHaveLength(1);
    expect(reads.counters).toEqual({ issued: 1, joined: 1 });
    pulls[0]!.resolve(empty(5));
    const [ra, rb] = await Promise.all([a, b]);
    expect(ra).toBe(rb);
    expect(ra.status).toBe('NO_NEW_MESSAGE');
    expect(reads.size).toBe(0);
  });

  test('a different offset or filter is a read of its own; a read after the answer is a new one', async () => {
    const { pulls, transport } = pendingPulls();
    const reads = new SharedReads(transport, systemClock);
    const all = [
      reads.read(read(5)),
      reads.read(read(6)),
      reads.read(read(5, 'a')),
      reads.read(read(5, 'b')),
    ];
    expect(pulls).toHaveLength(4);
    expect(pulls.map((p) => [p.request.queueOffset, p.request.subscription?.expression])).toEqual([
      [5, undefined],
      [6, undefined],
      [5, 'a'],
      [5, 'b'],
    ]);
    for (const p of pulls) p.resolve(empty(p.request.queueOffset));
    await Promise.all(all);
    const again = reads.read(read(5));
    expect(pulls).toHaveLength(5);
    pulls[4]!.resolve(empty(5));
    await again;
    expect(reads.counters).toEqual({ issued: 5, joined: 0 });
  });

  test('a failed read fails every reader that shared it, and the next read is tried afresh', async () => {
    const { pulls, transport } = pendingPulls();
    const reads = new SharedReads(transport, systemClock);
    const a = reads.read(read(1));
    const b = reads.read(read(1));
    pulls[0]!.reject(new RocketError('BROKER_UNAVAILABLE', 'gone'));
    await expect(a).rejects.toMatchObject({ code: 'BROKER_UNAVAILABLE' });
    await expect(b).rejects.toMatchObject({ code: 'BROKER_UNAVAILABLE' });
    expect(reads.size).toBe(0);
    const c = reads.read(read(1));
    expect(pulls).toHaveLength(2);
    pulls[1]!.resolve(empty(1));
    await expect(c).resolves.toMatchObject({ status: 'NO_NEW_MESSAGE' });
  });
});

describe('fan-out through one push server', () => {
  const TOPIC = 'Fanout';
  const SUBSCRIBERS = 40;
  const MESSAGES = 30;
  let rig: PushRig;
  const clients: RawClient[] = [];

  afterEach(async () => {
    for (const c of clients.splice(0)) await c.close();
    await rig?.close();
  });

  test('subscribers at the tail share broker reads; each still gets every message in order with an exact position, and a late subscriber from earliest too', async () => {
    rig = await startRig({ topics: [{ topic: TOPIC, queueCount: 1 }] });
    for (let i = 0; i < SUBSCRIBERS; i++) {
      const c = await RawClient.connect(rig.url);
      clients.push(c);
      c.send({ type: 'subscribe', id: 's', topic: TOPIC, from: 'latest' });
      await c.until(() => c.of('subscribed', 's').length === 1, 'subscribed');
    }
    const sent: string[] = [];
    for (let i = 0; i < MESSAGES; i++) sent.push(await rig.send({ topic: TOPIC, body: `m${i}` }));
    for (const c of clients) await c.until(() => c.of('message', 's').length === MESSAGES, 'every message');

    const late = await RawClient.connect(rig.url);
    clients.push(late);
    late.send({ type: 'subscribe', id: 's', topic: TOPIC, from: 'earliest' });
    await late.until(() => late.of('message', 's').length === MESSAGES, 'every message from earliest');

    const bodies = (c: RawClient) => c.of('message', 's').map((m) => m.body as string);
    const order = (c: RawClient) => bodies(c).map((b) => Number(b.slice(1)));
    // one queue, one producer, sends awaited one by one: every subscriber, the late one included,
    // gets every message once, in send order
    const expected = Array.from({ length: MESSAGES }, (_, i) => i);
    for (const c of clients) expect(order(c)).toEqual(expected);

    // resuming from a subscriber's last position gives nothing old; the next message only
    const last = clients[0]!.of('message', 's').at(-1)!.position as string;
    const resumed = await RawClient.connect(rig.url);
    clients.push(resumed);
    resumed.send({ type: 'subscribe', id: 'r', topic: TOPIC, from: { position: last } });
    await resumed.until(() => resumed.of('subscribed', 'r').length === 1, 'resumed');
    await rig.send({ topic: TOPIC, body: 'next' });
    await resumed.until(() => resumed.of('message', 'r').length === 1, 'the next message');
    expect(resumed.of('message', 'r').map((m) => m.body)).toEqual(['next']);

    const m = rig.server.metrics();
    // without sharing, every subscriber's every answer is a broker read of its own: at least
    // SUBSCRIBERS × MESSAGES; shared, the tail subscribers' identical reads go out once
    expect(m.sharedReads).toBeGreaterThan(m.brokerReads);
    expect(m.brokerReads).toBeLessThan(SUBSCRIBERS * MESSAGES);
  });
});
