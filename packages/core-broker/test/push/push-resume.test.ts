import { Broker } from '../../src/broker/broker';
import { MemoryStore } from '../../src/store/memory-store';
import { decodePosition } from '../../src/push/push-position';
import { PushServer } from '../../src/push/push-server';
import type { Frame, PushRig } from './push-harness';
import { RawClient, startRig } from './push-harness';

const TOPIC = 'Ticks';
let rig: PushRig;
const clients: RawClient[] = [];

async function connect(): Promise<RawClient> {
  const c = await RawClient.connect(rig.url);
  clients.push(c);
  return c;
}

afterEach(async () => {
  for (const c of clients.splice(0)) await c.close();
  await rig?.close();
});

test('resume after the connection is cut mid-stream delivers every message exactly once, across queues and brokers', async () => {
  rig = await startRig({
    brokerNames: ['broker-a', 'broker-b'],
    topics: [{ topic: TOPIC, queueCount: 4 }],
    server: { pullBatchSize: 16 },
  });
  const TOTAL = 4000;
  const sent: string[] = [];
  // a backlog before the first subscription, and the rest while it streams
  for (let i = 0; i < 1000; i++)
    sent.push(await rig.send({ topic: TOPIC, tag: i % 2 ? 'odd' : 'even', body: `m${i}` }));
  const received: string[] = [];
  let lastPosition: string | undefined;
  let from: unknown = 'earliest';
  const producing = (async () => {
    for (let i = 1000; i < TOTAL; i++) {
      sent.push(await rig.send({ topic: TOPIC, body: `m${i}` }));
      if (i % 50 === 0) await new Promise((r) => setImmediate(r));
    }
  })();
  let cuts = 0;
  while (received.length < TOTAL) {
    const c = await connect();
    c.send({ type: 'subscribe', id: 'r', topic: TOPIC, from });
    lastPosition = (await c.next('subscribed', 'r')).position as string;
    const cutAt = received.length + 700 + cuts * 150;
    let seen = 0;
    await c.until(
      () => {
        for (const f of c.frames.splice(0)) {
          if (f.type !== 'message') continue;
          received.push(f.msgId as string);
          lastPosition = (f as Frame).position as string;
          seen++;
        }
        return received.length >= Math.min(cutAt, TOTAL) || (cuts >= 3 && received.length >= TOTAL);
      },
      `messages up to ${cutAt}`,
      20_000,
    );
    if (received.length >= TOTAL) break;
    // cut without a close handshake, mid-stream: frames in flight are lost on purpose
    c.ws.terminate();
    cuts++;
    expect(seen).toBeGreaterThan(0);
    from = { position: lastPosition };
  }
  await producing;
  expect(cuts).toBeGreaterThanOrEqual(3);
  expect(new Set(received).size).toBe(received.length); // no duplicates
  expect(new Set(received)).toEqual(new Set(sent)); // no loss
  // the position covers every queue of both brokers
  const position = decodePosition(lastPosition!);
  expect(position.brokers.map((b) => [b.brokerName, b.offsets.length])).toEqual([
    ['broker-a', 4],
    ['broker-b', 4],
  ]);
  expect(position.brokers.every((b) => /^[0-9A-F]{16}$/.test(b.epoch))).toBe(true);
  expect(position.brokers.reduce((n, b) => n + b.offsets.reduce((x, y) => x + y, 0), 0)).toBe(TOTAL);
}, 60_000);

test("a position below the queue's min offset (retention removed it) is refused with position_expired", async () => {
  rig = await startRig({
    topics: [{ topic: TOPIC, queueCount: 1 }],
    store: { segmentSizeBytes: 64 * 1024, fileReservedTimeMs: 1 },
  });
  const c = await connect();
  c.send({ type: 'subscribe', id: 'a', topic: TOPIC, from: 'earliest' });
  await rig.send({ topic: TOPIC, body: 'first' });
  const first = await c.next('message', 'a');
  const oldPosition = first.position as string;
  for (let i = 0; i < 300; i++) await rig.send({ topic: TOPIC, body: Buffer.alloc(1024, i) });
  await new Promise((r) => setTimeout(r, 10));
  rig.stores[0]!.runRetention();
  expect(rig.brokers[0]!.minOffset({ topic: TOPIC, queueId: 0 })).toBeGreaterThan(1);
  c.send({ type: 'subscribe', id: 'b', topic: TOPIC, from: { position: oldPosition } });
  const error = await c.next('error', 'b');
  expect(error.code).toBe('position_expired');
  expect(error.reason).toMatch(/retention/);
  // earliest still works and starts at the new min offset
  c.send({ type: 'subscribe', id: 'c', topic: TOPIC, from: 'earliest' });
  await c.next('subscribed', 'c');
});

test('a reader that falls behind retention while streaming gets position_expired, not silence', async () => {
  // the server's streaming pulls (not its one-message epoch probe) wait at a gate the test opens
  let open!: () => void;
  const gate = new Promise<void>((resolve) => (open = resolve));
  rig = await startRig({
    topics: [{ topic: TOPIC, queueCount: 1 }],
    store: { segmentSizeBytes: 64 * 1024, fileReservedTimeMs: 1 },
  });
  const transport = rig.transport;
  const gated = Object.create(transport) as typeof transport;
  gated.pull = async (brokerName, request) => {
    if (request.maxCount > 1) await gate;
    return transport.pull(brokerName, request);
  };
  await rig.server.close();
  const server = new PushServer({ transport: gated, authorize: () => true });
  const port = (await server.listen()).port;
  try {
    for (let i = 0; i < 300; i++) await rig.send({ topic: TOPIC, body: Buffer.alloc(1024, i) });
    const c = await RawClient.connect(`ws://127.0.0.1:${port}/push`);
    clients.push(c);
    c.send({ type: 'subscribe', id: 'a', topic: TOPIC, from: 'earliest' });
    await c.next('subscribed', 'a');
    await new Promise((r) => setTimeout(r, 10));
    rig.stores[0]!.runRetention();
    open();
    const error = await c.next('error', 'a');
    expect(error.code).toBe('position_expired');
    expect(c.of('message', 'a')).toEqual([]);
  } finally {
    await server.close();
  }
});

test('a position from a replaced data directory is refused with epoch_mismatch', async () => {
  rig = await startRig({ topics: [{ topic: TOPIC, queueCount: 2 }] });
  const c = await connect();
  c.send({ type: 'subscribe', id: 'a', topic: TOPIC, from: 'earliest' });
  for (let i = 0; i < 10; i++) await rig.send({ topic: TOPIC, body: `${i}` });
  await c.until(() => c.of('message', 'a').length === 10, 'ten messages');
  const position = c.of('message', 'a')[9]!.position as string;

  // the same broker name, a new store: offsets restart and the store id differs
  const replacement = await MemoryStore.create({ maxBytes: 16 * 1024 * 1024, retentionIntervalMs: 0 });
  const old = rig.brokers[0]!;
  rig.transport.removeBroker(old.brokerName);
  const fresh = await Broker.start({ store: replacement, brokerName: old.brokerName });
  fresh.createTopic({ topic: TOPIC, queueCount: 2 });
  rig.transport.addBroker(fresh);
  try {
    // live: the running subscription notices the store changed under it
    await rig.send({ topic: TOPIC, body: 'on the new store' });
    const live = await c.next('error', 'a');
    expect(live.code).toBe('epoch_mismatch');
    // resume: the new store has messages with another store id
    c.send({ type: 'subscribe', id: 'b', topic: TOPIC, from: { position } });
    expect((await c.next('error', 'b')).code).toBe('epoch_mismatch');
  } finally {
    await fresh.close();
    await replacement.close();
  }
});

test('a position ahead of an empty replaced broker is refused with epoch_mismatch', async () => {
  rig = await startRig({ topics: [{ topic: TOPIC, queueCount: 1 }] });
  const c = await connect();
  c.send({ type: 'subscribe', id: 'a', topic: TOPIC });
  await c.next('subscribed', 'a');
  await rig.send({ topic: TOPIC, body: 'x' });
  const position = (await c.next('message', 'a')).position as string;
  const replacement = await MemoryStore.create({ maxBytes: 16 * 1024 * 1024, retentionIntervalMs: 0 });
  rig.transport.removeBroker('broker-a');
  const fresh = await Broker.start({ store: replacement, brokerName: 'broker-a' });
  fresh.createTopic({ topic: TOPIC, queueCount: 1 });
  rig.transport.addBroker(fresh);
  try {
    c.send({ type: 'subscribe', id: 'b', topic: TOPIC, from: { position } });
    const error = await c.next('error', 'b');
    expect(error.code).toBe('epoch_mismatch');
  } finally {
    await fresh.close();
    await replacement.close();
  }
});
