import type { AddressInfo } from 'node:net';
import type * as http from 'node:http';
import express from 'express';
import WebSocket from 'ws';
import { Producer } from '@rocketnest/core-broker';
import { createPushClient, type PushClient } from '@rocketnest/core-broker/push';
import { rocketPush, type RocketPushMiddleware } from '../src/index';
import { type EmbeddedBroker, startEmbeddedBroker } from './harness';

let env: EmbeddedBroker;
let server: http.Server;
let push: RocketPushMiddleware;
let base: string;
const clients: PushClient[] = [];

async function waitFor(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

beforeEach(async () => {
  env = await startEmbeddedBroker(['orders']);
  push = rocketPush({
    transport: env.transport,
    authorize: (_request, { topic }) => (topic === 'orders' ? true : { reason: 'orders only' }),
  });
  const app = express();
  app.use(push);
  app.get('/health', (_req, res) => void res.send('ok'));
  server = await new Promise<http.Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  push.upgrade(server);
  base = `127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await push.close();
  await new Promise((resolve) => server.close(resolve));
  await env.close();
});

describe('rocketPush', () => {
  test('serves the client module beside the app, and pushes stored messages to a WebSocket subscriber', async () => {
    expect((await fetch(`http://${base}/health`)).status).toBe(200);
    const script = await fetch(`http://${base}/push/client.js`);
    expect(script.status).toBe(200);
    expect(await script.text()).toContain('class PushClient');

    const received: string[] = [];
    const client = createPushClient(`ws://${base}/push`);
    clients.push(client);
    client.subscribe('orders', { from: 'latest' }, (m) => void received.push(String(m.body)));
    await waitFor(() => push.push.metrics().subscriptions === 1, 'subscribed');
    const producer = new Producer({ group: 'PG', transport: env.transport });
    await producer.start();
    await producer.send({ topic: 'orders', body: 'order 1' });
    await producer.shutdown();
    await waitFor(() => received.length === 1, 'pushed');
    expect(received).toEqual(['order 1']);
  });

  test('an upgrade on another path is refused; close() ends the push connections, then the HTTP server closes', async () => {
    const refused = await new Promise<string>((resolve) => {
      const ws = new WebSocket(`ws://${base}/not-push`);
      ws.on('open', () => resolve('opened'));
      ws.on('error', (error) => resolve(`error: ${error.message}`));
    });
    expect(refused).toMatch(/^error: /);
    const client = createPushClient(`ws://${base}/push`);
    clients.push(client);
    client.subscribe('orders', {}, () => undefined);
    await waitFor(() => push.push.metrics().connections === 1, 'connected');
    const closes: number[] = [];
    push.push.on('push.connection.close', (e) => closes.push(e.code));
    await push.close();
    expect(closes).toEqual([4000]);
    await new Promise((resolve) => server.close(resolve));
  });
});
