import { PushCloseCode } from '../../src/push/push-protocol';
import { decodePosition, encodePosition, topicHash } from '../../src/push/push-position';
import type { PushRig } from './push-harness';
import { RawClient, eventually, startRig } from './push-harness';

const TOPIC = 'Orders';
let rig: PushRig;
let clients: RawClient[];

async function connect(options?: Parameters<typeof RawClient.connect>[1]): Promise<RawClient> {
  const c = await RawClient.connect(rig.url, options);
  clients.push(c);
  return c;
}

afterEach(async () => {
  for (const c of clients) await c.close();
  await rig?.close();
});

describe('subscribe and receive', () => {
  beforeEach(async () => {
    clients = [];
    rig = await startRig({
      brokerNames: ['broker-a', 'broker-b'],
      topics: [{ topic: TOPIC, queueCount: 2 }],
    });
  });

  test('welcome, subscribed with a position, then messages with their fields and positions', async () => {
    const c = await connect();
    const welcome = await c.next('welcome');
    expect(welcome).toMatchObject({ protocol: 1, maxSubscriptions: 64 });
    c.send({ type: 'subscribe', id: 's1', topic: TOPIC });
    const subscribed = await c.next('subscribed', 's1');
    expect(decodePosition(subscribed.position as string).topicHash).toBe(topicHash(TOPIC));
    const id = await rig.send({
      topic: TOPIC,
      tag: 'created',
      keys: ['k1'],
      properties: { a: '1' },
      body: '{"x":1}',
    });
    const binary = await rig.send({ topic: TOPIC, body: Buffer.from([0xff, 0x00, 0xfe]) });
    await c.until(() => c.of('message').length === 2, 'two messages');
    const [m1, m2] = [
      c.of('message').find((m) => m.msgId === id)!,
      c.of('message').find((m) => m.msgId === binary)!,
    ];
    expect(m1).toMatchObject({
      subscription: 's1',
      topic: TOPIC,
      tag: 'created',
      keys: ['k1'],
      properties: { a: '1' },
      encoding: 'utf8',
      body: '{"x":1}',
    });
    expect(m2).toMatchObject({
      encoding: 'base64',
      body: Buffer.from([0xff, 0x00, 0xfe]).toString('base64'),
      tag: null,
    });
    expect(rig.server.metrics()).toMatchObject({ connections: 1, subscriptions: 1, messagesPushed: 2 });
    expect(rig.server.metrics().bytesPushed).toBeGreaterThan(100);
  });

  test('a tag expression is applied on the broker', async () => {
    const c = await connect();
    c.send({ type: 'subscribe', id: 't', topic: TOPIC, tag: 'paid || shipped' });
    await c.next('subscribed', 't');
    for (const tag of ['created', 'paid', 'created', 'shipped', 'refunded']) {
      await rig.send({ topic: TOPIC, tag, body: tag });
    }
    await c.until(() => c.of('message').length === 2, 'the two matching messages');
    await new Promise((r) => setTimeout(r, 100));
    expect(
      c
        .of('message')
        .map((m) => m.tag)
        .sort(),
    ).toEqual(['paid', 'shipped']);
  });

  test('an SQL92 filter is applied on the broker', async () => {
    const c = await connect();
    c.send({ type: 'subscribe', id: 'q', topic: TOPIC, sql: "amount > 100 AND region = 'eu'" });
    await c.next('subscribed', 'q');
    const sent = [
      { amount: '50', region: 'eu' },
      { amount: '150', region: 'eu' },
      { amount: '150', region: 'us' },
      { amount: '999', region: 'eu' },
    ];
    for (const properties of sent)
      await rig.send({ topic: TOPIC, properties, body: JSON.stringify(properties) });
    await c.until(() => c.of('message').length === 2, 'the two matching messages');
    await new Promise((r) => setTimeout(r, 100));
    expect(
      c
        .of('message')
        .map((m) => (m.properties as Record<string, string>).amount)
        .sort(),
    ).toEqual(['150', '999']);
  });

  test('from earliest and from a timestamp', async () => {
    const first = await rig.send({ topic: TOPIC, body: 'old' });
    await new Promise((r) => setTimeout(r, 20));
    const at = Date.now();
    await new Promise((r) => setTimeout(r, 20));
    const second = await rig.send({ topic: TOPIC, body: 'new' });
    const c = await connect();
    c.send({ type: 'subscribe', id: 'e', topic: TOPIC, from: 'earliest' });
    c.send({ type: 'subscribe', id: 't', topic: TOPIC, from: { timestampMs: at } });
    c.send({ type: 'subscribe', id: 'l', topic: TOPIC, from: 'latest' });
    await c.until(
      () => c.of('message', 'e').length === 2 && c.of('message', 't').length === 1,
      'the backlog',
    );
    expect(
      c
        .of('message', 'e')
        .map((m) => m.msgId)
        .sort(),
    ).toEqual([first, second].sort());
    expect(c.of('message', 't').map((m) => m.msgId)).toEqual([second]);
    await c.next('subscribed', 'l');
    await new Promise((r) => setTimeout(r, 100));
    expect(c.of('message', 'l')).toEqual([]);
  });

  test('unsubscribe stops the messages of that subscription only', async () => {
    const c = await connect();
    c.send({ type: 'subscribe', id: 'a', topic: TOPIC });
    c.send({ type: 'subscribe', id: 'b', topic: TOPIC });
    await c.next('subscribed', 'a');
    await c.next('subscribed', 'b');
    c.send({ type: 'unsubscribe', id: 'a' });
    await c.next('unsubscribed', 'a');
    await rig.send({ topic: TOPIC, body: 'x' });
    await c.next('message', 'b');
    await new Promise((r) => setTimeout(r, 100));
    expect(c.of('message', 'a')).toEqual([]);
    expect(rig.server.metrics().subscriptions).toBe(1);
  });

  test('an unknown topic, a bad filter and an unauthorized topic are refused with their codes', async () => {
    await rig.close();
    rig = await startRig({
      topics: [
        { topic: TOPIC, queueCount: 1 },
        { topic: 'Secret', queueCount: 1 },
      ],
      server: {
        authorize: (_req, { topic }) => (topic === 'Secret' ? { reason: 'Secret is for admins' } : true),
      },
    });
    const c = await connect();
    c.send({ type: 'subscribe', id: 'u', topic: 'NoSuchTopic' });
    c.send({ type: 'subscribe', id: 'f', topic: TOPIC, sql: 'a >' });
    c.send({ type: 'subscribe', id: 'x', topic: 'Secret' });
    c.send({ type: 'subscribe', id: 'ok', topic: TOPIC });
    await c.until(() => c.of('error').length === 3, 'three errors');
    const code = (id: string): unknown => c.of('error').find((e) => e.subscription === id)?.code;
    expect(code('u')).toBe('topic_not_found');
    expect(code('f')).toBe('invalid_filter');
    expect(code('x')).toBe('permission_denied');
    expect(c.of('error').find((e) => e.subscription === 'x')?.reason).toBe('Secret is for admins');
    await c.next('subscribed', 'ok');
    expect(rig.server.metrics()).toMatchObject({ subscriptionsRefused: 3, subscriptions: 1 });
  });
});

describe('bad frames and limits', () => {
  beforeEach(async () => {
    clients = [];
    rig = await startRig({
      topics: [{ topic: TOPIC, queueCount: 1 }],
      server: { maxBadFrames: 3, maxSubscriptionsPerConnection: 2, maxFrameBytes: 1024 },
    });
  });

  test('each bad frame gets an error frame; one more than maxBadFrames closes with 4502', async () => {
    const c = await connect();
    await c.next('welcome');
    c.send('not json');
    c.send({ type: 'launch' });
    c.send({ type: 'subscribe', id: 'a', topic: TOPIC, from: 'yesterday' });
    await c.until(() => c.of('error').length === 3, 'three error frames');
    expect(c.of('error').map((e) => e.code)).toEqual(['bad_frame', 'bad_frame', 'bad_request']);
    expect(c.closed).toBeUndefined();
    c.ws.send(Buffer.from([1, 2, 3]), { binary: true });
    expect((await c.closedWith()).code).toBe(PushCloseCode.PROTOCOL_ABUSE);
    expect(rig.server.metrics().badFrames).toBe(4);
  });

  test("a malformed position is bad_position; another topic's position too", async () => {
    const c = await connect();
    c.send({ type: 'subscribe', id: 'a', topic: TOPIC, from: { position: '1;zz' } });
    const other = encodePosition({ topicHash: topicHash('Other'), brokers: [] });
    c.send({ type: 'subscribe', id: 'b', topic: TOPIC, from: { position: other } });
    await c.until(() => c.of('error').length === 2, 'two errors');
    expect(c.of('error').map((e) => e.code)).toEqual(['bad_position', 'bad_position']);
  });

  test('a duplicate id, an unknown unsubscribe, and one subscription too many (closed with 4503)', async () => {
    const c = await connect();
    c.send({ type: 'subscribe', id: 'a', topic: TOPIC });
    await c.next('subscribed', 'a');
    c.send({ type: 'subscribe', id: 'a', topic: TOPIC });
    c.send({ type: 'unsubscribe', id: 'zz' });
    await c.until(() => c.of('error').length === 2, 'two errors');
    expect(c.of('error').map((e) => e.code)).toEqual(['duplicate_subscription', 'unknown_subscription']);
    c.send({ type: 'subscribe', id: 'b', topic: TOPIC });
    await c.next('subscribed', 'b');
    c.send({ type: 'subscribe', id: 'c', topic: TOPIC });
    const closed = await c.closedWith();
    expect(closed.code).toBe(PushCloseCode.TOO_MANY_SUBSCRIPTIONS);
    expect(c.of('error').map((e) => e.code)).toContain('too_many_subscriptions');
    await eventually(() => rig.server.metrics().subscriptions === 0, 'subscriptions released');
  });

  test('a frame over maxFrameBytes closes the connection (1009)', async () => {
    const c = await connect();
    c.send({ type: 'subscribe', id: 'a', topic: TOPIC, tag: 'x'.repeat(2000) });
    expect((await c.closedWith()).code).toBe(1009);
  });

  test('a client that offers no known subprotocol is closed with 4504', async () => {
    const c = await connect({ protocols: ['chat'], open: false });
    const closed = await c.closedWith();
    // ws refuses a handshake whose answer lacks the offered subprotocol; a client offering none gets 4504
    expect([1006, PushCloseCode.UNSUPPORTED_PROTOCOL]).toContain(closed.code);
    const none = await connect({ protocols: [] });
    expect((await none.closedWith()).code).toBe(PushCloseCode.UNSUPPORTED_PROTOCOL);
  });

  test('the client module is served at <path>/client.js', async () => {
    const response = await fetch(`${rig.httpUrl}/push/client.js`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/javascript/);
    expect(await response.text()).toContain('export class PushClient');
    expect((await fetch(`${rig.httpUrl}/push`)).status).toBe(426);
  });
});

describe('connection limit', () => {
  beforeEach(async () => {
    clients = [];
    rig = await startRig({ topics: [{ topic: TOPIC, queueCount: 1 }], server: { maxConnections: 2 } });
  });

  test('one connection over maxConnections is closed with 4003 (reconnect later)', async () => {
    const [a, b] = [await connect(), await connect()];
    await a.next('welcome');
    await b.next('welcome');
    const c = await connect();
    expect(await c.closedWith()).toEqual({
      code: PushCloseCode.CONNECTION_LIMIT,
      reason: 'connection_limit',
    });
    await a.close();
    await eventually(() => rig.server.metrics().connections === 1, 'a closed');
    const d = await connect();
    await d.next('welcome');
    expect(rig.server.metrics()).toMatchObject({ connections: 2, connectionsRefused: 1 });
  });
});
