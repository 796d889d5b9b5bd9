// The produce router's cases, run by produce-router.test.ts on Express 5 and by
// produce-router.express4.test.ts on Express 4 (where `express` is mapped to Express 4 for every module).
import type { AddressInfo } from 'node:net';
import { connect } from 'node:net';
import express from 'express';
import request from 'supertest';
import Database from 'better-sqlite3';
import { Producer } from '@rocketnest/core-broker';
import { OUTBOX_ID_PROPERTY, OutboxRelay, SqliteOutbox } from '@rocketnest/core-broker/outbox';
import type { OutboxMessage } from '@rocketnest/core-broker/outbox';
import { MemoryIdempotencyStore, rocketProduceRouter, sqliteOutboxWriter } from '../src/index';
import type { RocketProduceRouter, RocketProduceRouterOptions } from '../src/index';
import type { EmbeddedBroker } from './harness';
import { startEmbeddedBroker } from './harness';

const ENVELOPE = 'application/vnd.rocketnest.message+json';

export function produceRouterCases(expressVersion: string): void {
  let env: EmbeddedBroker;
  let routers: RocketProduceRouter[];

  beforeEach(async () => {
    env = await startEmbeddedBroker(['orders', 'audit', { topic: 'order-steps', fifo: true }]);
    routers = [];
  });

  afterEach(async () => {
    for (const router of routers) await router.close();
    await env.close();
  });

  function app(options: Partial<RocketProduceRouterOptions> = {}): express.Express {
    const router = rocketProduceRouter({
      transport: env.transport,
      ...options,
    } as RocketProduceRouterOptions);
    routers.push(router);
    const a = express();
    a.use('/api', router);
    return a;
  }

  function expectProblem(res: request.Response, status: number, code: string): void {
    expect(res.status).toBe(status);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.body).toMatchObject({ status, code });
    expect(typeof res.body.detail).toBe('string');
    expect(JSON.stringify(res.body)).not.toMatch(/\bat .*\.(ts|js):\d+/);
  }

  test(`[${expressVersion}] 201: a raw JSON body with Rocket-* headers is sent with its tag, keys, group, delay and properties`, async () => {
    const res = await request(app())
      .post('/api/topics/order-steps/messages') // a message group needs a FIFO topic
      .set('Content-Type', 'application/json')
      .set('Rocket-Tag', 'created')
      .set('Rocket-Keys', 'order-1, customer-9')
      .set('Rocket-Message-Group', 'order-1')
      .set('Rocket-Property-Region', 'eu')
      .send('{"id":1}');
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ topic: 'order-steps', queueId: 0, queueOffset: 0 });
    const [m] = await env.read('order-steps');
    expect(m!.msgId).toBe(res.body.msgId);
    expect(Buffer.from(m!.body).toString()).toBe('{"id":1}');
    expect(m).toMatchObject({ tag: 'created', keys: ['order-1', 'customer-9'], messageGroup: 'order-1' });
    expect(m!.properties).toMatchObject({ region: 'eu' });

    const delayed = await request(app())
      .post('/api/topics/orders/messages')
      .set('Content-Type', 'text/plain')
      .set('Rocket-Delay-Ms', '60000')
      .send('later');
    expect(delayed.status).toBe(201);
  });

  test(`[${expressVersion}] 201 behind app-wide express.json() and express.text(): the parsed body is sent as JSON / text`, async () => {
    const router = rocketProduceRouter({ transport: env.transport });
    routers.push(router);
    const a = express();
    a.use(express.json());
    a.use(express.text());
    a.use('/api', router);
    expect(
      (
        await request(a)
          .post('/api/topics/orders/messages')
          .set('Content-Type', 'application/json')
          .send('{"id": 7}')
      ).status,
    ).toBe(201);
    expect(
      (await request(a).post('/api/topics/orders/messages').set('Content-Type', 'text/plain').send('hello'))
        .status,
    ).toBe(201);
    expect((await env.read('orders')).map((m) => Buffer.from(m.body).toString())).toEqual([
      '{"id":7}',
      'hello',
    ]);
  });

  test(`[${expressVersion}] options are checked when the router is made`, () => {
    for (const bad of [
      { maxBodyBytes: 0 },
      { maxRequestBytes: -1 },
      { maxBatchMessages: 1.5 },
      { retryAfterSeconds: -1 },
    ])
      expect(() => rocketProduceRouter({ transport: env.transport, ...bad })).toThrow(
        expect.objectContaining({ code: 'INVALID_OPTION' }),
      );
    expect(() => rocketProduceRouter({})).toThrow(expect.objectContaining({ code: 'INVALID_OPTION' }));
    expect(() => new MemoryIdempotencyStore({ maxKeys: 0 })).toThrow(
      expect.objectContaining({ code: 'INVALID_OPTION' }),
    );
  });

  test(`[${expressVersion}] 201: the JSON envelope, utf8 / base64 / JSON bodies`, async () => {
    const a = app();
    const sent = await request(a)
      .post('/api/topics/orders/messages')
      .set('Content-Type', ENVELOPE)
      .send(JSON.stringify({ body: { id: 2 }, tag: 'paid', keys: ['o2'], properties: { a: 'b' } }));
    expect(sent.status).toBe(201);
    const b64 = await request(a)
      .post('/api/topics/orders/messages')
      .set('Content-Type', ENVELOPE)
      .send(JSON.stringify({ body: Buffer.from([0, 1, 2]).toString('base64'), bodyEncoding: 'base64' }));
    expect(b64.status).toBe(201);
    const [first, second] = await env.read('orders');
    expect(Buffer.from(first!.body).toString()).toBe('{"id":2}');
    expect(first).toMatchObject({ tag: 'paid', keys: ['o2'], properties: { a: 'b' } });
    expect([...second!.body]).toEqual([0, 1, 2]);
  });

  test(`[${expressVersion}] 400: bad topic, bad JSON, bad envelope, bad header, empty body, a message the producer refuses`, async () => {
    const a = app();
    const post = (path: string) => request(a).post(path);
    expectProblem(
      await post('/api/topics/bad%20topic/messages').set('Content-Type', 'text/plain').send('x'),
      400,
      'INVALID_TOPIC',
    );
    expectProblem(
      await post('/api/topics/orders/messages').set('Content-Type', ENVELOPE).send('{nope'),
      400,
      'INVALID_REQUEST',
    );
    expectProblem(
      await post('/api/topics/orders/messages')
        .set('Content-Type', ENVELOPE)
        .send('{"body":"x","colour":"red"}'),
      400,
      'INVALID_REQUEST',
    );
    expectProblem(
      await post('/api/topics/orders/messages')
        .set('Content-Type', 'text/plain')
        .set('Rocket-Delay-Ms', 'soon')
        .send('x'),
      400,
      'INVALID_REQUEST',
    );
    expectProblem(
      await post('/api/topics/orders/messages').set('Content-Type', 'text/plain').send(''),
      400,
      'INVALID_REQUEST',
    );
    const badTag = await post('/api/topics/orders/messages')
      .set('Content-Type', 'text/plain')
      .set('Rocket-Tag', 'a||b')
      .send('x');
    expectProblem(badTag, 400, 'INVALID_ARGUMENT');
    expect(badTag.body.detail).toMatch(/tag/);
    expect(await env.read('orders')).toEqual([]);
  });

  test(`[${expressVersion}] 413: body over maxBodyBytes (raw and envelope), request over maxRequestBytes, batch over maxBatchMessages`, async () => {
    const a = app({ maxBodyBytes: 16, maxRequestBytes: 1024, maxBatchMessages: 2 });
    expectProblem(
      await request(a)
        .post('/api/topics/orders/messages')
        .set('Content-Type', 'text/plain')
        .send('x'.repeat(17)),
      413,
      'PAYLOAD_TOO_LARGE',
    );
    expectProblem(
      await request(a)
        .post('/api/topics/orders/messages')
        .set('Content-Type', ENVELOPE)
        .send(JSON.stringify({ body: 'y'.repeat(17) })),
      413,
      'PAYLOAD_TOO_LARGE',
    );
    expectProblem(
      await request(a)
        .post('/api/topics/orders/messages')
        .set('Content-Type', 'text/plain')
        .send('z'.repeat(2000)),
      413,
      'PAYLOAD_TOO_LARGE',
    );
    expectProblem(
      await request(a)
        .post('/api/topics/orders/messages/batch')
        .set('Content-Type', 'application/json')
        .send(JSON.stringify({ messages: [{ body: 'a' }, { body: 'b' }, { body: 'c' }] })),
      413,
      'BATCH_TOO_LARGE',
    );
    expect(
      (
        await request(a)
          .post('/api/topics/orders/messages')
          .set('Content-Type', 'text/plain')
          .send('x'.repeat(16))
      ).status,
    ).toBe(201);
  });

  test(`[${expressVersion}] 400, not 500, for a small envelope whose body nests thousands of levels; a batch answers per item`, async () => {
    const deep = '['.repeat(5000) + ']'.repeat(5000);
    const a = app();
    const single = await request(a)
      .post('/api/topics/orders/messages')
      .set('Content-Type', ENVELOPE)
      .send(`{"body":${deep}}`);
    expectProblem(single, 400, 'INVALID_REQUEST');
    expect(single.body.detail).toMatch(/nests deeper than 256 levels/);
    const batch = await request(a)
      .post('/api/topics/orders/messages/batch')
      .set('Content-Type', 'application/json')
      .send(`{"messages":[{"body":"first"},{"body":${deep}},{"body":{"ok":[1,[2]]}}]}`);
    expect(batch.status).toBe(200);
    expect(batch.body.results.map((r: { status: number }) => r.status)).toEqual([201, 400, 201]);
    expect(batch.body.results[1]).toMatchObject({ index: 1, code: 'INVALID_REQUEST' });
    // behind an app-wide express.json(), the parsed body is re-serialised: the same 400
    const behindJson = express();
    const router = rocketProduceRouter({ transport: env.transport });
    routers.push(router);
    behindJson.use(express.json({ limit: '1mb' }), router);
    expectProblem(
      await request(behindJson)
        .post('/topics/orders/messages')
        .set('Content-Type', 'application/json')
        .send(`{"deep":${deep}}`),
      400,
      'INVALID_REQUEST',
    );
    const stored = await env.read('orders');
    expect(stored.map((m) => Buffer.from(m.body).toString())).toEqual(['first', '{"ok":[1,[2]]}']);
  });

  test(`[${expressVersion}] 413 at once from a declared Content-Length over maxRequestBytes, before the body is sent`, async () => {
    const server = app({ maxRequestBytes: 1024 }).listen(0, '127.0.0.1');
    await new Promise<void>((resolve) => server.once('listening', () => resolve()));
    const { port } = server.address() as AddressInfo;
    const socket = connect(port, '127.0.0.1');
    try {
      // Declares 100 MiB and sends 16 bytes of it: the answer must not wait for the rest.
      socket.write(
        'POST /api/topics/orders/messages HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n' +
          `Content-Length: ${100 * 1024 * 1024}\r\n\r\n` +
          'x'.repeat(16),
      );
      const head = await new Promise<string>((resolve, reject) => {
        let text = '';
        // the server closes the connection after its answer: read up to the end
        socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
        socket.on('error', reject);
        socket.on('end', () => resolve(text));
      });
      expect(head).toMatch(/^HTTP\/1\.1 413 /);
      expect(head.toLowerCase()).toContain('connection: close');
      expect(head).toContain('PAYLOAD_TOO_LARGE');
    } finally {
      socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
    expect(await env.read('orders')).toEqual([]);
  });

  test(`[${expressVersion}] 415: a media type that is not accepted, or none`, async () => {
    const a = app();
    expectProblem(
      await request(a).post('/api/topics/orders/messages').set('Content-Type', 'text/html').send('<b>x</b>'),
      415,
      'UNSUPPORTED_MEDIA_TYPE',
    );
    expectProblem(
      await request(a).post('/api/topics/orders/messages').send(Buffer.from('x')),
      415,
      'UNSUPPORTED_MEDIA_TYPE',
    );
    expectProblem(
      await request(a).post('/api/topics/orders/messages/batch').set('Content-Type', 'text/plain').send('x'),
      415,
      'UNSUPPORTED_MEDIA_TYPE',
    );
  });

  test(`[${expressVersion}] 401 and 403 from authorize(req, topic, tag); allowed requests go through`, async () => {
    const seen: Array<[string, string | undefined]> = [];
    const a = app({
      authorize: (req, topic, tag) => {
        seen.push([topic, tag]);
        if (!req.headers.authorization) return 'unauthenticated';
        return req.headers.authorization === 'Bearer writer' && tag !== 'admin';
      },
      wwwAuthenticate: 'Bearer realm="rocket"',
    });
    const send = (auth: string | undefined, tag: string) => {
      const r = request(a)
        .post('/api/topics/orders/messages')
        .set('Content-Type', 'text/plain')
        .set('Rocket-Tag', tag);
      return (auth ? r.set('Authorization', auth) : r).send('x');
    };
    const anonymous = await send(undefined, 'created');
    expectProblem(anonymous, 401, 'UNAUTHENTICATED');
    expect(anonymous.headers['www-authenticate']).toBe('Bearer realm="rocket"');
    expectProblem(await send('Bearer reader', 'created'), 403, 'FORBIDDEN');
    expectProblem(await send('Bearer writer', 'admin'), 403, 'FORBIDDEN');
    expect((await send('Bearer writer', 'created')).status).toBe(201);
    expect(seen).toContainEqual(['orders', 'admin']);
    expect(await env.read('orders')).toHaveLength(1);
  });

  test(`[${expressVersion}] 404: a topic the broker does not know, or one outside the topics option`, async () => {
    expectProblem(
      await request(app()).post('/api/topics/nowhere/messages').set('Content-Type', 'text/plain').send('x'),
      404,
      'TOPIC_NOT_FOUND',
    );
    expectProblem(
      await request(app({ topics: ['orders'] }))
        .post('/api/topics/audit/messages')
        .set('Content-Type', 'text/plain')
        .send('x'),
      404,
      'TOPIC_NOT_FOUND',
    );
    expect(await env.read('audit')).toEqual([]);
  });

  test(`[${expressVersion}] Idempotency-Key: replay returns the first response once sent, 422 for another body, key as message key`, async () => {
    const a = app();
    const post = (body: string) =>
      request(a)
        .post('/api/topics/orders/messages')
        .set('Content-Type', 'text/plain')
        .set('Idempotency-Key', 'req-1')
        .send(body);
    const first = await post('pay 10');
    expect(first.status).toBe(201);
    expect(first.headers['idempotent-replayed']).toBeUndefined();
    const replay = await post('pay 10');
    expect(replay.status).toBe(201);
    expect(replay.body).toEqual(first.body);
    expect(replay.headers['idempotent-replayed']).toBe('true');
    expectProblem(await post('pay 20'), 422, 'IDEMPOTENCY_KEY_REUSED');
    const messages = await env.read('orders');
    expect(messages).toHaveLength(1);
    expect(messages[0]!.keys[0]).toBe('req-1');
    expectProblem(
      await request(a)
        .post('/api/topics/orders/messages')
        .set('Content-Type', 'text/plain')
        .set('Idempotency-Key', 'has space')
        .send('x'),
      400,
      'INVALID_REQUEST',
    );
  });

  test(`[${expressVersion}] Idempotency-Key: 409 while the first request is in flight; a failed request frees its key`, async () => {
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let calls = 0;
    const a = app({
      outbox: async (messages) => {
        calls++;
        if (calls === 1) await held;
        if (calls === 3) throw new Error('database down');
        return messages.map((_, i) => `row-${calls}-${i}`);
      },
    });
    const post = (key: string) =>
      request(a)
        .post('/api/topics/orders/messages')
        .set('Content-Type', 'text/plain')
        .set('Idempotency-Key', key)
        .send('x');
    const first = post('k1').then((r) => r);
    for (let i = 0; i < 100 && calls === 0; i++) await new Promise((r) => setTimeout(r, 5));
    expectProblem(await post('k1'), 409, 'IDEMPOTENCY_KEY_IN_FLIGHT');
    release();
    expect((await first).status).toBe(202);
    expect((await post('k1')).headers['idempotent-replayed']).toBe('true');
    expect((await post('k2')).status).toBe(202); // calls = 2
    const failed = await post('k3'); // calls = 3: the writer throws
    expect(failed.status).toBe(500);
    expect(failed.body.detail).not.toMatch(/database down/);
    expect((await post('k3')).status).toBe(202); // the key was freed, the retry runs
  });

  test(`[${expressVersion}] the in-memory idempotency store is bounded: oldest completed keys go first, 503 when all are in flight`, async () => {
    const store = new MemoryIdempotencyStore({ maxKeys: 2 });
    expect(store.begin('a', 'f')).toEqual({ state: 'new' });
    store.complete('a', { status: 201, body: '{}', contentType: 'application/json', headers: {} });
    expect(store.begin('b', 'f')).toEqual({ state: 'new' });
    expect(store.begin('c', 'f')).toEqual({ state: 'new' }); // evicts completed 'a'
    expect(store.size).toBe(2);
    expect(store.begin('d', 'f')).toEqual({ state: 'full' }); // 'b' and 'c' in flight
    expect(store.begin('a', 'f')).toEqual({ state: 'full' });

    const full = new MemoryIdempotencyStore({ maxKeys: 1 });
    full.begin('busy', 'x');
    const res = await request(app({ idempotencyStore: full }))
      .post('/api/topics/orders/messages')
      .set('Content-Type', 'text/plain')
      .set('Idempotency-Key', 'other')
      .send('x');
    expectProblem(res, 503, 'IDEMPOTENCY_STORE_FULL');
    expect(res.headers['retry-after']).toBe('1');
  });

  test(`[${expressVersion}] 429 with Retry-After on broker flow control, 503 when the broker is unavailable or the producer closed`, async () => {
    const a = app({ retryAfterSeconds: 3 });
    const post = () =>
      request(a).post('/api/topics/orders/messages').set('Content-Type', 'text/plain').send('x');
    env.transport.mode = 'busy';
    const busy = await post();
    expectProblem(busy, 429, 'BROKER_BUSY');
    expect(busy.headers['retry-after']).toBe('3');
    env.transport.mode = 'unavailable';
    const down = await post();
    expectProblem(down, 503, 'BROKER_UNAVAILABLE');
    expect(down.headers['retry-after']).toBe('3');
    env.transport.mode = 'ok';
    expect((await post()).status).toBe(201);
    await routers[0]!.close();
    const closed = await post();
    expectProblem(closed, 503, 'CLOSED');
    expect(closed.headers['retry-after']).toBe('3');
  });

  test(`[${expressVersion}] 504 when the broker does not answer within the send timeout`, async () => {
    const a = app({ producerOptions: { sendTimeoutMs: 200 } });
    env.transport.mode = 'hang';
    expectProblem(
      await request(a).post('/api/topics/orders/messages').set('Content-Type', 'text/plain').send('x'),
      504,
      'TIMEOUT',
    );
  });

  test(`[${expressVersion}] batch: a result per item, in order (201 and 400 side by side), Idempotency-Key per item`, async () => {
    const a = app({ authorize: (_req, _topic, tag) => tag !== 'secret' });
    const res = await request(a)
      .post('/api/topics/orders/messages/batch')
      .set('Content-Type', 'application/json')
      .set('Idempotency-Key', 'batch-1')
      .send(
        JSON.stringify({
          messages: [
            { body: 'one', tag: 't' },
            { tag: 'no body' },
            { body: 'three' },
            { body: 'x', tag: 'secret' },
          ],
        }),
      );
    expect(res.status).toBe(200);
    expect(res.body.results.map((r: { status: number }) => r.status)).toEqual([201, 400, 201, 403]);
    expect(res.body.results[1]).toMatchObject({ index: 1, code: 'INVALID_REQUEST' });
    const messages = await env.read('orders');
    expect(messages.map((m) => Buffer.from(m.body).toString())).toEqual(['one', 'three']);
    expect(messages.map((m) => m.keys[0])).toEqual(['batch-1-0', 'batch-1-2']);
    const replay = await request(a)
      .post('/api/topics/orders/messages/batch')
      .set('Content-Type', 'application/json')
      .set('Idempotency-Key', 'batch-1')
      .send(
        JSON.stringify({
          messages: [
            { body: 'one', tag: 't' },
            { tag: 'no body' },
            { body: 'three' },
            { body: 'x', tag: 'secret' },
          ],
        }),
      );
    expect(replay.headers['idempotent-replayed']).toBe('true');
    expect(await env.read('orders')).toHaveLength(2);
    expectProblem(
      await request(a)
        .post('/api/topics/orders/messages/batch')
        .set('Content-Type', 'application/json')
        .send('{"messages":[]}'),
      400,
      'INVALID_REQUEST',
    );
  });

  test(`[${expressVersion}] 202 in outbox mode: rows written in one transaction, published by the relay`, async () => {
    const db = new Database(':memory:');
    const producer = new Producer({ group: 'relay', transport: env.transport });
    try {
      const outbox = new SqliteOutbox({ db });
      outbox.migrate();
      const a = app({ outbox: sqliteOutboxWriter(outbox, db) });
      const one = await request(a)
        .post('/api/topics/orders/messages')
        .set('Content-Type', 'application/json')
        .set('Rocket-Tag', 'created')
        .set('Idempotency-Key', 'ik-1')
        .send('{"id":5}');
      expect(one.status).toBe(202);
      expect(one.body).toMatchObject({ topic: 'orders', state: 'pending' });
      const batch = await request(a)
        .post('/api/topics/orders/messages/batch')
        .set('Content-Type', 'application/json')
        .send(JSON.stringify({ messages: [{ body: 'b1' }, { body: 'b2' }] }));
      expect(batch.body.results.map((r: { status: number }) => r.status)).toEqual([202, 202]);
      expect(await env.read('orders')).toEqual([]);
      await producer.start();
      await new OutboxRelay({ outbox, producer }).runOnce();
      const published = await env.read('orders');
      expect(published.map((m) => m.properties[OUTBOX_ID_PROPERTY])).toEqual([
        one.body.outboxId,
        batch.body.results[0].outboxId,
        batch.body.results[1].outboxId,
      ]);
      expect(published[0]!.keys).toEqual([one.body.outboxId, 'ik-1']);
      expect(published[0]!.tag).toBe('created');
    } finally {
      await producer.shutdown();
      db.close();
    }
  });

  test(`[${expressVersion}] outbox mode: a writer that fails answers 503 for a database error`, async () => {
    const a = app({
      outbox: async (_messages: readonly OutboxMessage[]) => {
        const { RocketError } = await import('@rocketnest/core-broker');
        throw new RocketError('DATABASE_ERROR', 'connection refused');
      },
    });
    const res = await request(a)
      .post('/api/topics/orders/messages')
      .set('Content-Type', 'text/plain')
      .send('x');
    expectProblem(res, 503, 'DATABASE_ERROR');
  });
}
