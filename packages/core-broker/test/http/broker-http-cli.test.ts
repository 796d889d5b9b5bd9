/**
 * Issue 20 #1: `rocketnest broker --http-port` as an operator runs it. A real broker process, real
 * traffic over TCP, then `/metrics` read back with exact counts and exact lag; `/healthz` and
 * `/readyz`; the ACL on the HTTP port; unknown paths.
 */
import { writeFileSync } from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { Producer } from '../../src/client/producer';
import { TcpTransport } from '../../src/client/tcp-transport';
import { httpRequest, sample, startServerProcess, type ServerProcess } from '../support/broker-process';
import { runCli } from '../support/run-cli';
import { tempDir } from '../support/temp-dir';

const body = (n: number, fill: string): Buffer => Buffer.alloc(n, fill);

describe('rocketnest broker --http-port', () => {
  let t: { dir: string; cleanup(): void };
  let broker: ServerProcess | undefined;
  beforeEach(() => (t = tempDir()));
  afterEach(async () => {
    if (broker) expect(await broker.stop()).toBe(0);
    broker = undefined;
    t.cleanup();
  });

  test('/metrics counts the traffic it carried, exactly, and the lag of a paused group', async () => {
    broker = await startServerProcess([
      'broker',
      '--store-dir',
      path.join(t.dir, 'data'),
      '--port',
      '0',
      '--http-port',
      '0',
      '--flush',
      'sync',
      '--topics',
      'orders:1,audit:1',
    ]);
    const web = broker.httpPort;
    expect(await httpRequest(web, '/healthz')).toMatchObject({ status: 200, body: 'ok\n' });
    const ready = await httpRequest(web, '/readyz');
    expect(ready.status).toBe(200);
    expect(JSON.parse(ready.body)).toEqual({ status: 'ready', reasons: [] });

    const transport = new TcpTransport({ brokers: { 'broker-a': `127.0.0.1:${broker.port}` } });
    const producer = new Producer({ group: 'metrics-producer', transport });
    await producer.start();
    try {
      const sent: string[] = [];
      for (let i = 0; i < 10; i++)
        sent.push((await producer.send({ topic: 'orders', body: body(100, 'o') })).msgId);
      for (let i = 0; i < 3; i++) await producer.send({ topic: 'audit', body: body(50, 'a') });
      // a consumer group reads 4 and commits: it lags 6 behind
      const pulled = await transport.pull('broker-a', {
        consumerGroup: 'billing',
        topic: 'orders',
        queueId: 0,
        queueOffset: 0,
        maxCount: 4,
        suspendTimeoutMs: 0,
      });
      expect(pulled.messages).toHaveLength(4);
      await transport.commitOffset('broker-a', { group: 'billing', topic: 'orders', queueId: 0, offset: 4 });

      let scrape = await httpRequest(web, '/metrics');
      expect(scrape.status).toBe(200);
      expect(scrape.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
      let m = scrape.body;
      expect(sample(m, 'rocketnest_messages_in_total', { topic: 'orders' })).toBe(10);
      expect(sample(m, 'rocketnest_bytes_in_total', { topic: 'orders' })).toBe(1000);
      expect(sample(m, 'rocketnest_messages_in_total', { topic: 'audit' })).toBe(3);
      expect(sample(m, 'rocketnest_bytes_in_total', { topic: 'audit' })).toBe(150);
      expect(sample(m, 'rocketnest_messages_out_total', { topic: 'orders' })).toBe(4);
      expect(sample(m, 'rocketnest_bytes_out_total', { topic: 'orders' })).toBe(400);
      expect(sample(m, 'rocketnest_messages_out_total', { topic: 'audit' })).toBeUndefined();
      expect(
        sample(m, 'rocketnest_consumer_lag_messages', { group: 'billing', topic: 'orders', queue: '0' }),
      ).toBe(6);
      expect(sample(m, 'rocketnest_send_duration_seconds_count')).toBe(13);
      expect(sample(m, 'rocketnest_send_duration_seconds_bucket', { le: '+Inf' })).toBe(13);
      // sync flush: every send waited for an fdatasync
      expect(sample(m, 'rocketnest_flush_duration_seconds_count')).toBeGreaterThanOrEqual(1);
      expect(sample(m, 'rocketnest_connections')).toBeGreaterThanOrEqual(1);
      expect(sample(m, 'rocketnest_commitlog_size_bytes')).toBeGreaterThan(13 * 100);
      const ratio = sample(m, 'rocketnest_disk_used_ratio')!;
      expect(ratio).toBeGreaterThan(0);
      expect(ratio).toBeLessThanOrEqual(1);
      expect(sample(m, 'rocketnest_disk_full')).toBe(0);
      expect(sample(m, 'rocketnest_delayed_messages')).toBe(0);
      expect(sample(m, 'rocketnest_transaction_half_messages')).toBe(0);
      expect(sample(m, 'rocketnest_pop_in_flight_messages')).toBe(0);
      expect(sample(m, 'rocketnest_name_servers_configured')).toBe(0);

      // the group stays paused while 5 more arrive: its lag is 11, exactly
      for (let i = 0; i < 5; i++) await producer.send({ topic: 'orders', body: body(100, 'p') });
      // a delayed message waits; a message the group gives up on goes to its dead-letter topic
      await producer.send({ topic: 'audit', body: body(50, 'd') }, { delayMs: 600_000 });
      expect(
        await transport.sendBack('broker-a', {
          consumerGroup: 'billing',
          msgId: sent[0]!,
          maxReconsumeTimes: 0,
        }),
      ).toEqual({ deadLettered: true });
      m = (await httpRequest(web, '/metrics')).body;
      expect(
        sample(m, 'rocketnest_consumer_lag_messages', { group: 'billing', topic: 'orders', queue: '0' }),
      ).toBe(11);
      expect(sample(m, 'rocketnest_messages_in_total', { topic: 'orders' })).toBe(15);
      expect(sample(m, 'rocketnest_messages_in_total', { topic: 'audit' })).toBe(4);
      expect(sample(m, 'rocketnest_delayed_messages')).toBe(1);
      expect(sample(m, 'rocketnest_dead_letters_total', { group: 'billing' })).toBe(1);

      // it catches up
      const rest = await transport.pull('broker-a', {
        consumerGroup: 'billing',
        topic: 'orders',
        queueId: 0,
        queueOffset: 4,
        maxCount: 100,
        suspendTimeoutMs: 0,
      });
      expect(rest.messages).toHaveLength(11);
      await transport.commitOffset('broker-a', { group: 'billing', topic: 'orders', queueId: 0, offset: 15 });
      scrape = await httpRequest(web, '/metrics');
      m = scrape.body;
      expect(
        sample(m, 'rocketnest_consumer_lag_messages', { group: 'billing', topic: 'orders', queue: '0' }),
      ).toBe(0);
      expect(sample(m, 'rocketnest_messages_out_total', { topic: 'orders' })).toBe(15);
      expect(sample(m, 'rocketnest_bytes_out_total', { topic: 'orders' })).toBe(1500);
    } finally {
      await producer.shutdown();
      await transport.close();
    }

    // bad paths and methods
    expect((await httpRequest(web, '/nope')).status).toBe(404);
    expect((await httpRequest(web, '/metrics/extra')).status).toBe(404);
    const post = await httpRequest(web, '/metrics', { method: 'POST', body: {} });
    expect(post.status).toBe(405);
    expect(post.headers.allow).toBe('GET');
  }, 90_000);

  test('with --acl-file everything but /healthz needs HTTP Basic credentials of an account', async () => {
    const aclFile = path.join(t.dir, 'acl.json');
    writeFileSync(
      aclFile,
      JSON.stringify({
        accounts: [
          { accessKey: 'ops', secretKey: 'ops-secret', admin: true },
          {
            accessKey: 'app',
            secretKey: 'app-secret',
            defaultTopicPerm: 'PUB|SUB',
            defaultGroupPerm: 'PUB|SUB',
          },
        ],
      }),
    );
    broker = await startServerProcess([
      'broker',
      '--store-dir',
      path.join(t.dir, 'data'),
      '--port',
      '0',
      '--http-port',
      '0',
      '--acl-file',
      aclFile,
    ]);
    const web = broker.httpPort;
    expect(await httpRequest(web, '/healthz')).toMatchObject({ status: 200, body: 'ok\n' });
    for (const pathname of ['/metrics', '/readyz']) {
      const none = await httpRequest(web, pathname);
      expect(none.status).toBe(401);
      expect(none.headers['www-authenticate']).toMatch(/^Basic realm="rocketnest"/);
      expect(JSON.parse(none.body)).toMatchObject({ code: 'ACCESS_DENIED' });
      expect((await httpRequest(web, pathname, { auth: 'ops:wrong' })).status).toBe(401);
      expect((await httpRequest(web, pathname, { auth: 'nobody:ops-secret' })).status).toBe(401);
      expect((await httpRequest(web, pathname, { auth: 'ops' })).status).toBe(401);
      expect((await httpRequest(web, pathname, { auth: 'ops:ops-secret' })).status).toBe(200);
      expect((await httpRequest(web, pathname, { auth: 'app:app-secret' })).status).toBe(200);
    }
    // the dashboard: any account may look; message lookup and dead letters need an admin account
    expect((await httpRequest(web, '/dashboard')).status).toBe(401);
    const page = await httpRequest(web, '/dashboard', { auth: 'app:app-secret' });
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    expect((await httpRequest(web, '/dashboard/api/overview', { auth: 'app:app-secret' })).status).toBe(200);
    for (const [method, pathname] of [
      ['GET', '/dashboard/api/dlq?group=g'],
      ['GET', '/dashboard/api/message?id=x'],
      ['POST', '/dashboard/api/dlq/resend'],
    ] as const) {
      expect(
        (await httpRequest(web, pathname, { method, body: method === 'POST' ? {} : undefined })).status,
      ).toBe(401);
      const app = await httpRequest(web, pathname, {
        method,
        auth: 'app:app-secret',
        body: method === 'POST' ? {} : undefined,
      });
      expect(app.status).toBe(403);
      expect(JSON.parse(app.body)).toMatchObject({
        code: 'ACCESS_DENIED',
        message: expect.stringMatching(/admin/),
      });
    }
    expect(await httpRequest(web, '/dashboard/api/dlq?group=g', { auth: 'ops:ops-secret' })).toMatchObject({
      status: 200,
      body: '[]',
    });
    // a bad request from an admin: 400 naming the field; an unknown dead letter: 404
    const bad = await httpRequest(web, '/dashboard/api/dlq/resend', {
      method: 'POST',
      auth: 'ops:ops-secret',
      body: {},
    });
    expect(bad.status).toBe(400);
    expect(JSON.parse(bad.body)).toMatchObject({ code: 'INVALID_ARGUMENT' });
    const unknown = await httpRequest(web, '/dashboard/api/dlq/resend', {
      method: 'POST',
      auth: 'ops:ops-secret',
      body: { group: 'g', msgId: 'FFFFFFFFFFFFFFFF0000000000000000' },
    });
    expect(unknown.status).toBe(404);
    const metrics = await httpRequest(web, '/metrics', { auth: 'app:app-secret' });
    expect(sample(metrics.body, 'rocketnest_connections')).toBe(0);
  }, 60_000);

  test('an HTTP port already taken stops the broker at startup with a message naming the fix', async () => {
    const taken = net.createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    try {
      const port = (taken.address() as net.AddressInfo).port;
      const run = await runCli([
        'broker',
        '--store-dir',
        path.join(t.dir, 'data'),
        '--port',
        '0',
        '--http-port',
        String(port),
      ]);
      expect(run.code).toBe(1);
      expect(run.stderr).toMatch(
        new RegExp(
          `INVALID_OPTION: cannot listen for HTTP on 127\\.0\\.0\\.1:${port} \\(EADDRINUSE\\); choose another --http-port`,
        ),
      );
    } finally {
      await new Promise((resolve) => taken.close(resolve));
    }
  }, 60_000);

  test('usage errors name the flag', async () => {
    const bad = await runCli(['broker', '--http-port', 'x']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--http-port must be 0..65535, not "x"/);
    const orphan = await runCli(['broker', '--http-host', '0.0.0.0']);
    expect(orphan.code).toBe(2);
    expect(orphan.stderr).toMatch(/--http-host needs --http-port/);
    const help = await runCli(['broker', '--help']);
    expect(help.stdout).toMatch(/--http-port <n>/);
  }, 60_000);
});
