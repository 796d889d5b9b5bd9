import { randomBytes } from 'node:crypto';
import * as http from 'node:http';
import * as net from 'node:net';
import WebSocket from 'ws';
import { PushCloseCode, PUSH_SUBPROTOCOL } from '../../src/push/push-protocol';
import { PushServer } from '../../src/push/push-server';
import { ManualClock } from '../support/manual-clock';
import type { PushRig } from './push-harness';
import { RawClient, eventually, startRig } from './push-harness';

const TOPIC = 'Feed';
let rig: PushRig;
const clients: RawClient[] = [];
const sockets: net.Socket[] = [];

afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  for (const c of clients.splice(0)) await c.close();
  await rig?.close();
});

/** A client text frame: FIN + text opcode, masked as RFC 6455 requires of clients. */
function maskedTextFrame(text: string): Buffer {
  const payload = Buffer.from(text);
  const mask = randomBytes(4);
  assertSmall(payload.length);
  const header =
    payload.length < 126
      ? Buffer.from([0x81, 0x80 | payload.length])
      : Buffer.from([0x81, 0x80 | 126, payload.length >> 8, payload.length & 0xff]);
  const masked = Buffer.from(payload.map((b, i) => b ^ mask[i % 4]!));
  return Buffer.concat([header, mask, masked]);
}

function assertSmall(n: number): void {
  if (n > 0xffff) throw new Error('frame too large for this helper');
}

/** Completes a WebSocket handshake on a raw TCP socket, subscribes, then never reads again. */
async function neverReadingClient(port: number): Promise<net.Socket> {
  const socket = net.connect(port, '127.0.0.1');
  sockets.push(socket);
  socket.on('error', () => undefined);
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  socket.write(
    [
      'GET /push HTTP/1.1',
      'Host: 127.0.0.1',
      'Upgrade: websocket',
      'Connection: Upgrade',
      `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}`,
      'Sec-WebSocket-Version: 13',
      `Sec-WebSocket-Protocol: ${PUSH_SUBPROTOCOL}`,
      '',
      '',
    ].join('\r\n'),
  );
  const response = await new Promise<string>((resolve) =>
    socket.once('data', (d: Buffer) => resolve(d.toString('latin1'))),
  );
  expect(response).toMatch(/^HTTP\/1\.1 101/);
  socket.write(maskedTextFrame(JSON.stringify({ type: 'subscribe', id: 'x', topic: TOPIC })));
  socket.pause(); // and never reads again: the kernel buffers fill, then the server's
  return socket;
}

test('a client that never reads is paused, then disconnected (4001) while the server holds at most its buffer bound', async () => {
  const MAX_BUFFERED = 128 * 1024;
  rig = await startRig({
    topics: [{ topic: TOPIC, queueCount: 2 }],
    server: { maxBufferedBytes: MAX_BUFFERED, slowClientGraceMs: 300, closeTimeoutMs: 200 },
  });
  const port = Number(new URL(rig.url).port);
  const slowEvents: number[] = [];
  rig.server.on('push.slow-client', (e) => slowEvents.push(e.bufferedBytes));
  await neverReadingClient(port);
  // a healthy client beside it keeps receiving
  const healthy = await RawClient.connect(rig.url);
  clients.push(healthy);
  healthy.send({ type: 'subscribe', id: 'h', topic: TOPIC });
  await healthy.next('subscribed', 'h');
  await eventually(() => rig.server.metrics().subscriptions === 2, 'both subscribed');

  const body = Buffer.alloc(8 * 1024, 'a');
  let peakGauge = 0;
  const FRAME_BOUND = 12 * 1024; // one message frame: 8 KiB body plus its JSON fields
  for (let i = 0; i < 3000 && rig.server.metrics().slowClientDisconnects === 0; i++) {
    await rig.send({ topic: TOPIC, body });
    peakGauge = Math.max(peakGauge, rig.server.metrics().bufferedBytes);
  }
  await eventually(
    () => rig.server.metrics().slowClientDisconnects === 1,
    'the slow client disconnected',
    15_000,
  );
  await eventually(() => rig.server.metrics().connections === 1, 'only the healthy connection left');
  const m = rig.server.metrics();
  expect(slowEvents.length).toBeGreaterThanOrEqual(1);
  expect(m.peakConnectionBufferedBytes).toBeLessThanOrEqual(MAX_BUFFERED + FRAME_BOUND);
  expect(peakGauge).toBeLessThanOrEqual(2 * (MAX_BUFFERED + FRAME_BOUND));
  expect(m.subscriptions).toBe(1);
  expect(m.bufferedBytes).toBeLessThan(MAX_BUFFERED);
  // the healthy client got messages the whole time
  expect(healthy.of('message', 'h').length).toBeGreaterThan(100);
}, 30_000);

test('a peer that stops answering pings is closed with 4002; one that answers stays', async () => {
  rig = await startRig({
    topics: [{ topic: TOPIC, queueCount: 1 }],
    server: { pingIntervalMs: 100, pongTimeoutMs: 150, closeTimeoutMs: 100 },
  });
  const dead = await RawClient.connect(rig.url, { answerPings: false });
  const alive = await RawClient.connect(rig.url);
  clients.push(dead, alive);
  const closed = await dead.closedWith(5_000);
  expect(closed.code).toBe(PushCloseCode.NO_PONG);
  expect(dead.of('ping').length).toBeGreaterThanOrEqual(1);
  await new Promise((r) => setTimeout(r, 500));
  expect(alive.closed).toBeUndefined();
  expect(alive.of('ping').length).toBeGreaterThanOrEqual(3);
  expect(rig.server.metrics()).toMatchObject({ pingTimeouts: 1, connections: 1 });
});

test('a peer whose network vanished (no close, no pong) is closed by the ping timeout', async () => {
  rig = await startRig({
    topics: [{ topic: TOPIC, queueCount: 1 }],
    server: { pingIntervalMs: 100, pongTimeoutMs: 100, closeTimeoutMs: 100 },
  });
  const port = Number(new URL(rig.url).port);
  const socket = await neverReadingClient(port);
  await eventually(() => rig.server.metrics().connections === 1, 'connected');
  socket.pause();
  await eventually(() => rig.server.metrics().pingTimeouts === 1, 'the ping timeout', 5_000);
  await eventually(() => rig.server.metrics().connections === 0, 'closed');
});

test('close(): clients get 4000 (reconnect), subscriptions and pulls stop, the port is released', async () => {
  rig = await startRig({ topics: [{ topic: TOPIC, queueCount: 4 }] });
  let pulls = 0;
  const transport = rig.transport;
  const counting = Object.create(transport) as typeof transport;
  counting.pull = (b, r) => {
    pulls++;
    return transport.pull(b, r);
  };
  const server = new PushServer({ transport: counting, authorize: () => true, pollTimeoutMs: 200 });
  const { port } = await server.listen();
  const c = await RawClient.connect(`ws://127.0.0.1:${port}/push`);
  c.send({ type: 'subscribe', id: 'a', topic: TOPIC });
  await c.next('subscribed', 'a');
  await server.close();
  expect((await c.closedWith()).code).toBe(PushCloseCode.SHUTDOWN);
  expect(server.metrics()).toMatchObject({ connections: 0, subscriptions: 0 });
  const after = pulls;
  await new Promise((r) => setTimeout(r, 500)); // longer than the poll timeout: parked pulls come back
  expect(pulls).toBe(after);
  await expect(fetch(`http://127.0.0.1:${port}/push/client.js`)).rejects.toThrow();
});

test("attach() shares an HTTP server: upgrades at the path, the client module, the app's own routes", async () => {
  rig = await startRig({ topics: [{ topic: TOPIC, queueCount: 1 }] });
  const app = http.createServer((_req, res) => res.end('app'));
  const other = new WebSocket.Server({ noServer: true });
  app.on('upgrade', (req, socket, head) => {
    if (req.url === '/other') other.handleUpgrade(req, socket, head, (ws) => ws.close(1000, 'other'));
  });
  const server = new PushServer({ transport: rig.transport, authorize: () => true, path: '/rt/push' }).attach(
    app,
  );
  await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
  const port = (app.address() as net.AddressInfo).port;
  try {
    expect(await (await fetch(`http://127.0.0.1:${port}/anything`)).text()).toBe('app');
    expect((await fetch(`http://127.0.0.1:${port}/rt/push/client.js`)).status).toBe(200);
    const c = await RawClient.connect(`ws://127.0.0.1:${port}/rt/push`);
    clients.push(c);
    c.send({ type: 'subscribe', id: 'a', topic: TOPIC });
    await c.next('subscribed', 'a');
    await rig.send({ topic: TOPIC, body: 'hi' });
    expect((await c.next('message', 'a')).body).toBe('hi');
    const o = new RawClient(new WebSocket(`ws://127.0.0.1:${port}/other`));
    expect((await o.closedWith()).reason).toBe('other');
    await server.close();
    expect(await (await fetch(`http://127.0.0.1:${port}/rt/push/client.js`)).text()).toBe('app');
  } finally {
    await server.close();
    other.close();
    await new Promise<void>((resolve) => app.close(() => resolve()));
  }
});

test('the keepalive runs on the injected clock', async () => {
  rig = await startRig({ topics: [{ topic: TOPIC, queueCount: 1 }] });
  const clock = new ManualClock();
  const server = new PushServer({
    transport: rig.transport,
    authorize: () => true,
    clock,
    pingIntervalMs: 30_000,
    pongTimeoutMs: 10_000,
    closeTimeoutMs: 1_000,
  });
  const { port } = await server.listen();
  try {
    const silent = await RawClient.connect(`ws://127.0.0.1:${port}/push`, { answerPings: false });
    const polite = await RawClient.connect(`ws://127.0.0.1:${port}/push`);
    clients.push(silent, polite);
    await silent.next('welcome');
    await polite.next('welcome');
    clock.advance(29_999);
    await new Promise((r) => setTimeout(r, 50));
    expect(silent.of('ping')).toEqual([]); // real time passing changes nothing
    clock.advance(1);
    await silent.next('ping');
    await polite.until(() => polite.of('ping').length === 1, 'the ping');
    await new Promise((r) => setTimeout(r, 50)); // the pong travels back
    clock.advance(10_000);
    expect((await silent.closedWith()).code).toBe(PushCloseCode.NO_PONG);
    expect(polite.closed).toBeUndefined();
    await eventually(() => server.metrics().connections === 1, 'the close handshake');
    expect(server.metrics().pingTimeouts).toBe(1);
  } finally {
    const closing = server.close();
    clock.advance(1_000); // the close timeout, should a client not answer
    await closing;
  }
});
