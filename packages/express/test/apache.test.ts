import { mkdtempSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import express from 'express';
import { ApacheDriver, type DriverMessage, type DriverSubscription } from '@rocketnest/core-broker';
import { rocketProduceRouter, rocketPublisher } from '../src/index';
import { APACHE_START_TIMEOUT_MS, startApache, stopApache } from './support/apache-cluster';

/**
 * The Express integration on a real Apache RocketMQ 5 (one cluster for the file, started by
 * tools/apache-rocketmq.sh), over real HTTP: `rocketPublisher({ apache })` and
 * `rocketProduceRouter({ apache })` send through their own Apache driver producer, and an Apache
 * driver subscription receives what they sent. Only the connection option differs from the
 * embedded tests.
 */
const workDir = mkdtempSync(path.join(tmpdir(), 'express-apache-'));
let apache: { proxy: string };
let driver: ApacheDriver;

beforeAll(async () => {
  apache = await startApache(workDir, [
    'ExpOrders:2',
    'ExpSteps:2:fifo',
    'ExpPayments:2:transaction',
    'ExpRest:2',
  ]);
  driver = new ApacheDriver({ endpoints: apache.proxy });
}, APACHE_START_TIMEOUT_MS + 60_000);

afterAll(async () => {
  await driver?.close();
  await stopApache(workDir);
  rmSync(workDir, { recursive: true, force: true });
}, 90_000);

/** Listens on a loopback port; `close()` ends it. */
async function listen(app: express.Express): Promise<{ url: string; close(): Promise<void> }> {
  const server: Server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

async function collect(
  group: string,
  topic: string,
): Promise<{ messages: DriverMessage[]; sub: DriverSubscription }> {
  const messages: DriverMessage[] = [];
  const sub = await driver.subscribe({ group, topic, handler: (m) => void messages.push(m) });
  return { messages, sub };
}

async function waitFor(condition: () => boolean, what: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

test('rocketPublisher({ apache }): req.rocket send, sendOrderly and sendInTransaction reach Apache', async () => {
  const orders = await collect('ExpOrdersGroup', 'ExpOrders');
  const steps = await collect('ExpStepsGroup', 'ExpSteps');
  const payments = await collect('ExpPaymentsGroup', 'ExpPayments');
  const publisher = rocketPublisher({
    apache: { endpoints: apache.proxy },
    transactionChecker: () => 'ROLLBACK',
  });
  const app = express();
  app.use(publisher);
  app.post('/orders/:id', async (req, res) => {
    const id = req.params.id;
    const sent = await req.rocket!.send({
      topic: 'ExpOrders',
      tag: 'created',
      keys: [`order-${id}`],
      body: id,
    });
    const step = await req.rocket!.sendOrderly({ topic: 'ExpSteps', body: `${id}:placed` }, `order-${id}`);
    const commit = req.query.pay !== 'fail';
    const payment = await req.rocket!.sendInTransaction({ topic: 'ExpPayments', body: `pay-${id}` }, () =>
      commit ? 'COMMIT' : 'ROLLBACK',
    );
    res.status(201).json({ sent, step, payment });
  });
  const server = await listen(app);
  try {
    const ok = await fetch(`${server.url}/orders/7`, { method: 'POST' });
    expect(ok.status).toBe(201);
    const body = (await ok.json()) as {
      sent: { msgId: string; topic: string; queueId: number };
      payment: { resolution: string; transactionId: string };
    };
    // Apache's proxy does not say which queue: the result says so with -1
    expect(body.sent).toMatchObject({ topic: 'ExpOrders', queueId: -1, queueOffset: -1, brokerName: '' });
    expect(body.payment.resolution).toBe('COMMIT');
    expect(body.payment.transactionId).toEqual(expect.any(String));
    const rolledBack = await fetch(`${server.url}/orders/8?pay=fail`, { method: 'POST' });
    expect(rolledBack.status).toBe(201);

    await waitFor(() => orders.messages.length >= 2 && steps.messages.length >= 2, 'orders and steps');
    await waitFor(() => payments.messages.length >= 1, 'the committed payment');
    expect(orders.messages.map((m) => m.msgId)).toContain(body.sent.msgId);
    expect(orders.messages.find((m) => m.body.toString() === '7')).toMatchObject({
      tag: 'created',
      keys: ['order-7'],
    });
    expect(steps.messages.map((m) => m.messageGroup).sort()).toEqual(['order-7', 'order-8']);
    // the rolled-back transaction never arrives (a short grace period for a stray delivery)
    await new Promise((resolve) => setTimeout(resolve, 2000));
    expect(payments.messages.map((m) => m.body.toString())).toEqual(['pay-7']);
  } finally {
    await server.close();
    await publisher.close();
    await Promise.all([orders.sub.close(), steps.sub.close(), payments.sub.close()]);
  }
}, 180_000);

test('rocketProduceRouter({ apache }): 201 with the message id, Idempotency-Key replayed without a second send, a missing topic is a 404 problem', async () => {
  const rest = await collect('ExpRestGroup', 'ExpRest');
  const router = rocketProduceRouter({ apache: { endpoints: apache.proxy } });
  const app = express();
  app.use('/api', router);
  const server = await listen(app);
  try {
    const post = (topic: string, body: string, key?: string): Promise<Response> =>
      fetch(`${server.url}/api/topics/${topic}/messages`, {
        method: 'POST',
        headers: {
          'content-type': 'text/plain',
          'rocket-tag': 'rest',
          ...(key !== undefined ? { 'idempotency-key': key } : {}),
        },
        body,
      });
    const first = await post('ExpRest', 'hello', 'key-1');
    expect(first.status).toBe(201);
    const sent = (await first.json()) as { msgId: string; topic: string; queueId: number };
    expect(sent).toMatchObject({ topic: 'ExpRest', queueId: -1 });
    const again = await post('ExpRest', 'hello', 'key-1');
    expect(again.status).toBe(201);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(((await again.json()) as { msgId: string }).msgId).toBe(sent.msgId);
    const reused = await post('ExpRest', 'other body', 'key-1');
    expect(reused.status).toBe(422);

    const missing = await post('ExpNoSuchTopic', 'lost');
    expect(missing.status).toBe(404);
    expect(missing.headers.get('content-type')).toMatch(/application\/problem\+json/);
    const problem = (await missing.json()) as { code: string; detail: string; status: number };
    expect(problem).toMatchObject({ status: 404, code: 'TOPIC_NOT_FOUND' });
    expect(problem.detail).toMatch(/ExpNoSuchTopic/);
    expect(JSON.stringify(problem)).not.toMatch(/\bat \S+:\d+/); // no stack trace

    const batch = await fetch(`${server.url}/api/topics/ExpRest/messages/batch`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ messages: [{ body: 'b-0' }, { body: 'b-1' }] }),
    });
    expect(batch.status).toBe(200);
    const results = ((await batch.json()) as { results: Array<{ status: number }> }).results;
    expect(results.map((r) => r.status)).toEqual([201, 201]);

    await waitFor(() => rest.messages.length >= 3, 'the three sent messages');
    // the replayed request did not send again: one message carries the key
    await new Promise((resolve) => setTimeout(resolve, 2000));
    expect(rest.messages.filter((m) => m.keys[0] === 'key-1').map((m) => m.msgId)).toEqual([sent.msgId]);
    expect(rest.messages.map((m) => m.body.toString()).sort()).toEqual(['b-0', 'b-1', 'hello']);
  } finally {
    await server.close();
    await router.close();
    await rest.sub.close();
  }
}, 180_000);

test('an unreachable proxy answers 503 with Retry-After; contradictory options fail at construction', async () => {
  expect(() =>
    rocketProduceRouter({ apache: { endpoints: apache.proxy }, brokers: ['127.0.0.1:1'] }),
  ).toThrow(
    expect.objectContaining({ code: 'INVALID_OPTION', message: expect.stringMatching(/exactly one/) }),
  );
  expect(() =>
    rocketPublisher({ apache: { endpoints: apache.proxy }, producerOptions: { sendTimeoutMs: 1000 } }),
  ).toThrow(
    expect.objectContaining({ code: 'INVALID_OPTION', message: expect.stringMatching(/producerOptions/) }),
  );
  expect(() => rocketPublisher({ apache: { endpoints: 'no-port' } })).toThrow(
    expect.objectContaining({ code: 'INVALID_OPTION', message: expect.stringMatching(/host:port/) }),
  );
  const router = rocketProduceRouter({
    apache: { endpoints: '127.0.0.1:1', requestTimeoutMs: 500, settingsTimeoutMs: 500 },
  });
  const app = express();
  app.use('/api', router);
  const server = await listen(app);
  try {
    const answer = await fetch(`${server.url}/api/topics/ExpRest/messages`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: 'x',
    });
    expect(answer.status).toBe(503);
    expect(answer.headers.get('retry-after')).toBe('1');
    expect(((await answer.json()) as { code: string }).code).toEqual(expect.any(String));
  } finally {
    await server.close();
    await router.close();
  }
}, 60_000);
