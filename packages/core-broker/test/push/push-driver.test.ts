// The push channel on a message-level driver (docs/push.md, "On Apache RocketMQ"): the same
// scenarios on the embedded broker's driver and on a real Apache RocketMQ 5.3 (one cluster for the
// file, started by tools/apache-rocketmq.sh), with the Node push client over real WebSockets.
import type { PushClient, PushError, PushMessage } from '../../src/push/client/push-client.mjs';
import type { DriverProducer, MessagingDriver } from '../../src/driver/contract';
import { createPushClient } from '../../src/push/push-node-client';
import { PushServer } from '../../src/push/push-server';
import { startTargets, type Target, type TargetName } from '../driver/driver-targets';
import { CuttableProxy, eventually } from './push-harness';

const TOPIC = 'PushFeed';
/** The second test's own topic: a new feed of a topic keeps no history, this keeps the counts exact. */
const TOPIC_B = 'PushFeedB';
const NAMES = (process.env.DRIVER_TARGETS?.split(',') ?? ['embedded', 'apache']).filter(
  (n): n is TargetName => n === 'embedded' || n === 'apache',
);
/** Apache's long polling, route and settings round trips on a loaded machine. */
const WAIT_MS = 60_000;

let targets: Map<TargetName, Target>;
let stopTargets: () => Promise<void>;

beforeAll(async () => {
  ({ targets, stop: stopTargets } = await startTargets(
    [
      { name: TOPIC, queues: 4, type: 'normal' },
      { name: TOPIC_B, queues: 2, type: 'normal' },
    ],
    NAMES,
  ));
}, 400_000);

afterAll(async () => {
  await stopTargets?.();
}, 120_000);

describe.each(NAMES)('push on a driver: %s', (name) => {
  let driver: MessagingDriver;
  let producer: DriverProducer;
  const servers: PushServer[] = [];
  const clients: PushClient[] = [];
  const proxies: CuttableProxy[] = [];

  beforeAll(async () => {
    driver = await targets.get(name)!.open();
    producer = await driver.createProducer({ group: `push-feed-producer`, topics: [TOPIC, TOPIC_B] });
  }, 120_000);

  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    for (const p of proxies.splice(0)) await p.close();
    await Promise.all(servers.splice(0).map((s) => s.close()));
  });

  afterAll(async () => {
    await producer?.close();
    await driver?.close();
  }, 60_000);

  async function server(options: Partial<ConstructorParameters<typeof PushServer>[0]> = {}): Promise<string> {
    const push = new PushServer({ driver, authorize: () => true, ...options });
    servers.push(push);
    const address = await push.listen();
    return `ws://127.0.0.1:${address.port}/push`;
  }

  async function subscribed(push: PushServer, count: number): Promise<void> {
    await eventually(() => push.metrics().subscriptions === count, `${count} subscription(s)`, WAIT_MS);
  }

  test('a tag-filtered subscription gets its messages; after network cuts the client resumes exactly', async () => {
    const url = await server();
    const push = servers[0]!;
    const proxy = await CuttableProxy.start(Number(new URL(url).port));
    proxies.push(proxy);
    const errors: PushError[] = [];
    const client = createPushClient(`ws://127.0.0.1:${proxy.port}/push`, {
      reconnectMinMs: 20,
      reconnectMaxMs: 200,
      onError: (e) => errors.push(e),
    });
    clients.push(client);
    const received: PushMessage[] = [];
    const sub = client.subscribe(TOPIC, { tag: 'up' }, (m) => received.push(m));
    await subscribed(push, 1);
    const TOTAL = 60;
    const sent: string[] = [];
    for (let i = 0; i < TOTAL; i++) {
      const up = await producer.send({
        topic: TOPIC,
        tag: 'up',
        body: `u${i}`,
        properties: { i: String(i) },
      });
      sent.push(up.msgId);
      await producer.send({ topic: TOPIC, tag: 'down', body: `d${i}` });
      if (i % 20 === 19) {
        await eventually(() => received.length > i - 10, 'progress before the cut', WAIT_MS);
        expect(proxy.cut()).toBeGreaterThan(0);
      }
    }
    await eventually(() => received.length >= TOTAL, `all ${TOTAL} (have ${received.length})`, WAIT_MS);
    await new Promise((r) => setTimeout(r, 200));
    // exactly once: the positions of the feed resume where the last handled message left off
    expect(received.map((m) => m.msgId).sort()).toEqual([...sent].sort());
    expect(received.every((m) => m.tag === 'up')).toBe(true);
    expect(client.connections).toBeGreaterThanOrEqual(4);
    expect(sub.position()).toMatch(/^F1;[0-9a-f]{8};[0-9A-F]{16};\d+$/);
    expect(errors).toEqual([]);
  }, 180_000);

  test('what cannot resume is refused by name: another server, a dropped position, a queue position, a missing topic', async () => {
    const first = await server({ feedMessages: 4 });
    const pushA = servers[0]!;
    const a = createPushClient(first);
    clients.push(a);
    const got: PushMessage[] = [];
    const sub = a.subscribe(TOPIC_B, { from: 'latest' }, (m) => got.push(m));
    await subscribed(pushA, 1);
    for (let i = 0; i < 8; i++) await producer.send({ topic: TOPIC_B, tag: 'x', body: `m${i}` });
    await eventually(() => got.length >= 8, '8 messages', WAIT_MS);
    expect(got.map((m) => m.body).sort()).toEqual(['m0', 'm1', 'm2', 'm3', 'm4', 'm5', 'm6', 'm7']);
    const early = got[0]!.position; // the feed holds 4: the messages after this one are gone
    const last = sub.position()!;

    // resuming at the feed's head on the same server is exact (nothing new: nothing delivered)
    const errors: PushError[] = [];
    const b = createPushClient(first, { onError: (e) => errors.push(e) });
    clients.push(b);
    const again: PushMessage[] = [];
    b.subscribe(TOPIC_B, { from: { position: last } }, (m) => again.push(m));
    b.subscribe(TOPIC_B, { from: { position: early } }, () => undefined);
    b.subscribe(TOPIC_B, { from: { position: '1;00000000;b:' + ':0' } }, () => undefined);
    // Apache answers a missing topic at once; RocketNest's subscriptions wait for it to appear
    const apache = name === 'apache';
    if (apache) b.subscribe('NoSuchPushTopic', {}, () => undefined);
    const refusals = apache ? 3 : 2;
    await eventually(() => errors.length >= refusals, 'the refusals', WAIT_MS);
    expect(errors.map((e) => [e.topic, e.code, e.terminal]).sort()).toEqual(
      [
        ...(apache ? [['NoSuchPushTopic', 'topic_not_found', true]] : []),
        [TOPIC_B, 'position_expired', true],
        [TOPIC_B, 'position_expired', true],
      ].sort(),
    );
    expect(errors.find((e) => /no longer holds/.test(e.message))).toBeDefined();
    expect(errors.find((e) => /reading RocketNest queues/.test(e.message))).toBeDefined();
    await producer.send({ topic: TOPIC_B, tag: 'x', body: 'after' });
    await eventually(() => again.length === 1, 'the resumed subscription gets the next message', WAIT_MS);
    expect(again[0]!.body).toBe('after');

    // another server (or this one restarted) has another feed: refused, saying what to do
    const second = await server();
    const c = createPushClient(second, { onError: (e) => errors.push(e) });
    clients.push(c);
    c.subscribe(TOPIC_B, { from: { position: last } }, () => undefined);
    await eventually(() => errors.length > refusals, 'the foreign position refused', WAIT_MS);
    expect(errors[refusals]).toMatchObject({ code: 'position_expired', terminal: true });
    expect(errors[refusals]!.message).toMatch(/another push server process.*subscribe from "latest"/);
  }, 180_000);
});

test('a push server takes exactly one of transport and driver, and says so', async () => {
  const driver = await targets.get(NAMES[0]!)!.open();
  try {
    const authorize = (): boolean => true;
    expect(() => new PushServer({ authorize })).toThrow(/exactly one of the options transport .* and driver/);
    const transport = {} as ConstructorParameters<typeof PushServer>[0]['transport'];
    expect(() => new PushServer({ authorize, driver, transport })).toThrow(/exactly one/);
    expect(() => new PushServer({ authorize, driver, feedMessages: 0 })).toThrow(/feedMessages/);
  } finally {
    await driver.close();
  }
});
