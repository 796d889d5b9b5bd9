import { createHmac } from 'node:crypto';
import { RocketError } from '../../src/common/errors';
import { PushClient, PushError } from '../../src/push/client/push-client.mjs';
import type { PushMessage } from '../../src/push/client/push-client.mjs';
import { jwtAuthorizer } from '../../src/push/push-jwt';
import { createPushClient } from '../../src/push/push-node-client';
import { PushServer } from '../../src/push/push-server';
import type { PushRig } from './push-harness';
import { CuttableProxy, eventually, startRig } from './push-harness';

const SECRET = 'a-test-secret-that-is-long-enough-for-hs256';
const b64 = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');
function token(topics: string[]): string {
  const head = `${b64({ alg: 'HS256' })}.${b64({ sub: 'browser', topics })}`;
  return `${head}.${createHmac('sha256', SECRET).update(head).digest('base64url')}`;
}

const TOPIC = 'Prices';
let rig: PushRig;
let proxy: CuttableProxy | undefined;
let client: PushClient | undefined;

beforeEach(async () => {
  rig = await startRig({
    brokerNames: ['broker-a', 'broker-b'],
    topics: [
      { topic: TOPIC, queueCount: 3 },
      { topic: 'Secret', queueCount: 1 },
    ],
    server: { ...jwtAuthorizer({ key: SECRET }), pullBatchSize: 8 },
  });
});

afterEach(async () => {
  client?.close();
  await proxy?.close();
  proxy = undefined;
  await rig.close();
});

test('the Node client reconnects after network cuts and resumes: every message exactly once', async () => {
  proxy = await CuttableProxy.start(Number(new URL(rig.url).port));
  const errors: PushError[] = [];
  client = createPushClient(`ws://127.0.0.1:${proxy.port}/push`, {
    token: () => token([TOPIC]),
    reconnectMinMs: 20,
    reconnectMaxMs: 200,
    onError: (e) => errors.push(e),
  });
  const received: string[] = [];
  const sub = client.subscribe(TOPIC, { from: 'earliest' }, (m: PushMessage) => received.push(m.msgId));
  const TOTAL = 3000;
  const sent: string[] = [];
  for (let i = 0; i < TOTAL; i++) {
    sent.push(await rig.send({ topic: TOPIC, body: `p${i}` }));
    if (i % 600 === 599) {
      await eventually(() => received.length > i - 300, 'progress before the cut');
      expect(proxy.cut()).toBeGreaterThan(0);
    }
  }
  await eventually(() => received.length >= TOTAL, `all ${TOTAL} messages (have ${received.length})`, 20_000);
  await new Promise((r) => setTimeout(r, 100));
  expect(received.length).toBe(TOTAL);
  expect(new Set(received)).toEqual(new Set(sent));
  expect(client.connections).toBeGreaterThanOrEqual(5);
  expect(sub.position()).toMatch(/^1;/);
  expect(errors).toEqual([]);
}, 60_000);

test('a refused subscription reaches onError as terminal; the others keep working; a bad token closes for good', async () => {
  const errors: PushError[] = [];
  client = createPushClient(rig.url, { token: token([TOPIC]), onError: (e) => errors.push(e) });
  const got: PushMessage[] = [];
  client.subscribe('Secret', {}, () => undefined);
  client.subscribe(TOPIC, { tag: 'up' }, (m) => got.push(m));
  await eventually(
    () => errors.length === 1 && rig.server.metrics().subscriptions === 1,
    'refusal and subscription',
  );
  expect(errors[0]).toBeInstanceOf(PushError);
  expect(errors[0]).toMatchObject({ code: 'permission_denied', terminal: true, topic: 'Secret' });
  await rig.send({ topic: TOPIC, tag: 'down', body: 'no' });
  await rig.send({ topic: TOPIC, tag: 'up', body: Buffer.from([0xc3, 0x28]) });
  await eventually(() => got.length === 1, 'the up message');
  expect(got[0]!.body).toEqual(new Uint8Array([0xc3, 0x28])); // not UTF-8: bytes
  client.close();

  const denied: PushError[] = [];
  client = createPushClient(rig.url, {
    token: 'not-a-jwt',
    reconnectMinMs: 10,
    onError: (e) => denied.push(e),
  });
  await eventually(() => denied.length === 1, 'the terminal close');
  expect(denied[0]).toMatchObject({ code: 'closed', closeCode: 4500, terminal: true });
  expect(client.state).toBe('closed');
  await new Promise((r) => setTimeout(r, 100));
  expect(rig.server.metrics().connectionsRefused).toBe(1); // no reconnect after a terminal close
});

test('the client reconnects after a server shutdown (4000) to a new server and resumes', async () => {
  const received: string[] = [];
  const port = Number(new URL(rig.url).port);
  client = createPushClient(rig.url, { token: token([TOPIC]), reconnectMinMs: 20, reconnectMaxMs: 100 });
  client.subscribe(TOPIC, {}, (m) => received.push(m.msgId));
  await eventually(() => rig.server.metrics().subscriptions === 1, 'subscribed');
  const before = await rig.send({ topic: TOPIC, body: 'before' });
  await eventually(() => received.length === 1, 'first');
  await rig.server.close();
  const during = await rig.send({ topic: TOPIC, body: 'while no server' });
  const next = new PushServer({ transport: rig.transport, ...jwtAuthorizer({ key: SECRET }) });
  await next.listen({ port });
  try {
    await eventually(() => received.length === 2, 'the message stored while no server ran', 10_000);
    expect(received).toEqual([before, during]);
  } finally {
    client.close();
    await next.close();
  }
});

test('without a WebSocket implementation the constructor says what to pass', () => {
  const global = globalThis as { WebSocket?: unknown };
  const saved = global.WebSocket;
  delete global.WebSocket; // Node 22 has one; Node 20 does not
  try {
    expect(() => new PushClient('ws://x', {})).toThrow(/options.WebSocket/);
  } finally {
    if (saved !== undefined) global.WebSocket = saved;
  }
});

test('a broker unreachable while subscribing: `unavailable` (not terminal), and the client subscribes again', async () => {
  let failures = 2;
  const flaky = Object.create(rig.transport) as typeof rig.transport;
  flaky.minOffset = (brokerName, request) =>
    failures-- > 0
      ? Promise.reject(new RocketError('BROKER_UNAVAILABLE', `broker ${brokerName} is not reachable`))
      : rig.transport.minOffset(brokerName, request);
  const server = new PushServer({ transport: flaky, authorize: () => true });
  const { port } = await server.listen();
  const errors: PushError[] = [];
  const received: string[] = [];
  client = createPushClient(`ws://127.0.0.1:${port}/push`, {
    reconnectMinMs: 20,
    onError: (e) => errors.push(e),
  });
  try {
    client.subscribe(TOPIC, {}, (m) => received.push(m.msgId));
    await eventually(() => server.metrics().subscriptions === 1, 'subscribed after the retries');
    // both failures hit the first attempt (its offset queries run in parallel); the retry succeeded
    expect(errors.map((e) => [e.code, e.terminal])).toEqual([['unavailable', false]]);
    const id = await rig.send({ topic: TOPIC, body: 'after' });
    await eventually(() => received.length === 1, 'the message');
    expect(received).toEqual([id]);
  } finally {
    client.close();
    await server.close();
  }
});
