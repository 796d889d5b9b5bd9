import type { AddressInfo } from 'node:net';
import express from 'express';
import request from 'supertest';
import { Producer } from '@rocketnest/core-broker';
import type { TransactionResolution } from '@rocketnest/core-broker';
import { rocketPublisher } from '../src/index';
import type { RocketPublisherMiddleware } from '../src/index';
import type { EmbeddedBroker } from './harness';
import { startEmbeddedBroker } from './harness';

let env: EmbeddedBroker;
let publishers: RocketPublisherMiddleware[];

beforeEach(async () => {
  env = await startEmbeddedBroker(['orders', { topic: 'order-steps', fifo: true }]); // sendOrderly needs a FIFO topic
  publishers = [];
});

afterEach(async () => {
  for (const p of publishers) await p.close();
  await env.close();
});

function appWith(publisher: RocketPublisherMiddleware): express.Express {
  publishers.push(publisher);
  const app = express();
  app.use(publisher);
  app.get('/health', (_req, res) => void res.send('ok'));
  app.post('/orders/:id', async (req, res) => {
    const id = req.params.id;
    const sent = await req.rocket!.send({
      topic: 'orders',
      tag: 'created',
      keys: [`order-${id}`],
      body: `{"id":${id}}`,
    });
    res.status(201).json(sent);
  });
  app.post('/orders/:id/remind', async (req, res) => {
    const sent = await req.rocket!.sendDelayed(
      { topic: 'orders', tag: 'remind', body: req.params.id },
      60_000,
    );
    res.status(201).json(sent);
  });
  app.post('/orders/:id/paid', async (req, res) => {
    const sent = await req.rocket!.sendOrderly(
      { topic: 'order-steps', tag: 'paid', body: req.params.id },
      `order-${req.params.id}`,
    );
    res.status(201).json(sent);
  });
  app.post('/orders/:id/tx/:decision', async (req, res) => {
    try {
      const sent = await req.rocket!.sendInTransaction(
        { topic: 'orders', tag: 'tx', body: req.params.id },
        async (): Promise<TransactionResolution> =>
          req.params.decision === 'commit' ? 'COMMIT' : 'ROLLBACK',
      );
      res.status(201).json({ resolution: sent.resolution });
    } catch (error) {
      res.status(500).json({ code: (error as { code?: string }).code });
    }
  });
  return app;
}

test('req.rocket sends on one shared producer that starts at the first send, not before', async () => {
  const app = appWith(rocketPublisher({ transport: env.transport }));
  expect((await request(app).get('/health')).text).toBe('ok');
  expect(env.transport.registrations).toBe(0);
  const [a, b] = await Promise.all([request(app).post('/orders/1'), request(app).post('/orders/2')]);
  expect([a.status, b.status]).toEqual([201, 201]);
  expect(env.transport.registrations).toBe(1);
  const messages = await env.read('orders');
  expect(messages.map((m) => m.keys[0]).sort()).toEqual(['order-1', 'order-2']);
  expect(messages.map((m) => m.msgId).sort()).toEqual([a.body.msgId, b.body.msgId].sort());
});

test('sendDelayed waits on the broker; sendOrderly sets the message group', async () => {
  const app = appWith(rocketPublisher({ transport: env.transport }));
  expect((await request(app).post('/orders/3/remind')).status).toBe(201);
  expect(await env.read('orders')).toEqual([]); // delayed: parked in the schedule topic
  expect((await request(app).post('/orders/3/paid')).status).toBe(201);
  const [paid] = await env.read('order-steps');
  expect(paid).toMatchObject({ tag: 'paid', messageGroup: 'order-3' });
});

test('sendInTransaction commits or rolls back with the local transaction; without a checker it is refused', async () => {
  const app = appWith(rocketPublisher({ transport: env.transport, transactionChecker: () => 'ROLLBACK' }));
  expect((await request(app).post('/orders/4/tx/commit')).body).toEqual({ resolution: 'COMMIT' });
  expect((await request(app).post('/orders/5/tx/rollback')).body).toEqual({ resolution: 'ROLLBACK' });
  expect((await env.read('orders')).map((m) => Buffer.from(m.body).toString())).toEqual(['4']);

  const noChecker = appWith(rocketPublisher({ transport: env.transport }));
  const refused = await request(noChecker).post('/orders/6/tx/commit');
  expect(refused.body).toEqual({ code: 'INVALID_OPTION' });
});

test('the producer closes with the HTTP server; a producer of your own is left running', async () => {
  const publisher = rocketPublisher({ transport: env.transport });
  const server = appWith(publisher).listen(0, '127.0.0.1');
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  const { port } = server.address() as AddressInfo;
  expect(
    (await request(`http://127.0.0.1:${port}`).post('/orders/7').set('Connection', 'close')).status,
  ).toBe(201);
  await new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())));
  // The server closed: its producer was shut down (unregistered from the broker)...
  for (let i = 0; i < 100 && env.transport.unregistrations === 0; i++)
    await new Promise((resolve) => setImmediate(resolve));
  expect(env.transport.unregistrations).toBe(1);
  // ...and a later send starts a new one; close() ends it for good.
  expect((await publisher.rocket.send({ topic: 'orders', body: 'after restart' })).topic).toBe('orders');
  expect(env.transport.registrations).toBe(2);
  await publisher.close();
  await expect(publisher.rocket.send({ topic: 'orders', body: 'late' })).rejects.toMatchObject({
    code: 'CLOSED',
  });

  const own = new Producer({ group: 'mine', transport: env.transport });
  await own.start();
  try {
    const mine = rocketPublisher({ producer: own });
    const app = appWith(mine);
    expect((await request(app).post('/orders/8')).status).toBe(201);
    await mine.close();
    expect((await own.send({ topic: 'orders', body: 'still running' })).topic).toBe('orders');
  } finally {
    await own.shutdown();
  }
  expect(() => rocketPublisher({})).toThrow(expect.objectContaining({ code: 'INVALID_OPTION' }));
});
