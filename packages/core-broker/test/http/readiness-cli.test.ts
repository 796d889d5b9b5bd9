/**
 * Issue 20 #1, readiness: `/readyz` of a `rocketnest broker --http-port` goes not-ready (503, body
 * saying why) while its disk is full and ready again once space is freed, same process; with name
 * servers it reports registration, and the name server has its own endpoint.
 *
 * The disk-full part needs a small tmpfs of its own (root with CAP_SYS_ADMIN, as on the project's
 * machine); where mounting is not allowed it is skipped and says so.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { Producer } from '../../src/client/producer';
import { TcpTransport } from '../../src/client/tcp-transport';
import * as net from 'node:net';
import {
  httpRequest,
  sample,
  startServerProcess,
  waitFor,
  type ServerProcess,
} from '../support/broker-process';
import { runCli } from '../support/run-cli';
import { canMountTmpfs, mountTmpfs } from '../support/tmpfs';
import { tempDir } from '../support/temp-dir';

const TMPFS_BYTES = 4 * 1024 * 1024;
const BODY_BYTES = 32 * 1024;

const canMount = canMountTmpfs();
if (!canMount)
  console.warn('readiness-cli.test.ts: disk-full test skipped, this process may not mount a tmpfs');

describe('/readyz', () => {
  (canMount ? test : test.skip)(
    'is 503 naming the full disk while sends are refused, and 200 again once space is freed',
    async () => {
      const mount = mountTmpfs(TMPFS_BYTES)!;
      try {
        const storeDir = path.join(mount.dir, 'store');
        mkdirSync(storeDir);
        const filler = path.join(mount.dir, 'filler');
        writeFileSync(filler, Buffer.alloc(2 * 1024 * 1024, 1));
        const broker = await startServerProcess([
          'broker',
          '--store-dir',
          storeDir,
          '--port',
          '0',
          '--http-port',
          '0',
          '--flush',
          'sync',
          '--topics',
          'fill:1',
        ]);
        try {
          const web = broker.httpPort;
          expect((await httpRequest(web, '/readyz')).status).toBe(200);
          const transport = new TcpTransport({ brokers: { 'broker-a': `127.0.0.1:${broker.port}` } });
          const producer = new Producer({ group: 'disk-filler', transport, retryTimesWhenSendFailed: 0 });
          await producer.start();
          let refused = 0;
          try {
            for (let i = 0; i < (2 * TMPFS_BYTES) / BODY_BYTES && refused === 0; i++) {
              await producer
                .send({ topic: 'fill', body: Buffer.alloc(BODY_BYTES, 0x61) })
                .catch(() => refused++);
            }
          } finally {
            await producer.shutdown();
            await transport.close();
          }
          expect(refused).toBe(1);
          const notReady = await httpRequest(web, '/readyz');
          expect(notReady.status).toBe(503);
          const why = JSON.parse(notReady.body) as { status: string; reasons: string[] };
          expect(why.status).toBe('not ready');
          expect(why.reasons).toEqual([
            expect.stringMatching(/^refusing writes: the disk holding the store is full/),
          ]);
          // alive all the same
          expect((await httpRequest(web, '/healthz')).status).toBe(200);
          const m = (await httpRequest(web, '/metrics')).body;
          expect(sample(m, 'rocketnest_disk_full')).toBe(1);
          expect(sample(m, 'rocketnest_flow_control_rejections_total', { reason: 'disk-full' })).toBe(1);

          // space freed on that file system: ready again without a send (the store re-samples the disk)
          rmSync(filler);
          const back = await waitFor(
            'ready again',
            async () => {
              const r = await httpRequest(web, '/readyz');
              return r.status === 200 ? r : undefined;
            },
            60_000,
          );
          expect(JSON.parse(back.body)).toEqual({ status: 'ready', reasons: [] });
          expect(sample((await httpRequest(web, '/metrics')).body, 'rocketnest_disk_full')).toBe(0);
        } finally {
          expect(await broker.stop()).toBe(0);
        }
      } finally {
        mount.unmount();
      }
    },
    120_000,
  );

  test('with --namesrv: not ready while no name server takes its registration, ready once one does', async () => {
    const t = tempDir();
    // a port nothing listens on yet: the name server comes up there later
    const probe = net.createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const nsPort = (probe.address() as net.AddressInfo).port;
    await new Promise((resolve) => probe.close(resolve));
    const broker = await startServerProcess([
      'broker',
      '--store-dir',
      path.join(t.dir, 'data'),
      '--port',
      '0',
      '--http-port',
      '0',
      '--namesrv',
      `127.0.0.1:${nsPort}`,
    ]);
    let namesrv: ServerProcess | undefined;
    try {
      const notReady = await httpRequest(broker.httpPort, '/readyz');
      expect(notReady.status).toBe(503);
      expect(JSON.parse(notReady.body)).toEqual({
        status: 'not ready',
        reasons: ['not registered with any of its 1 name server(s); clients cannot find it'],
      });
      expect(
        sample((await httpRequest(broker.httpPort, '/metrics')).body, 'rocketnest_name_servers_registered'),
      ).toBe(0);
      namesrv = await startServerProcess(['namesrv', '--port', String(nsPort), '--http-port', '0']);
      // a topic change makes the broker register again at once (no wait for the 30 s period)
      const created = await runCli([
        'admin',
        'topic',
        'create',
        '--topic',
        'late',
        '--broker',
        `127.0.0.1:${broker.port}`,
      ]);
      expect(created.code).toBe(0);
      await waitFor('ready', async () =>
        (await httpRequest(broker.httpPort, '/readyz')).status === 200 ? true : undefined,
      );
      expect(
        sample((await httpRequest(broker.httpPort, '/metrics')).body, 'rocketnest_name_servers_registered'),
      ).toBe(1);
    } finally {
      expect(await broker.stop()).toBe(0);
      if (namesrv) expect(await namesrv.stop()).toBe(0);
      t.cleanup();
    }
  }, 90_000);

  test('with --namesrv: ready once registered; the name server serves its own /metrics', async () => {
    const t = tempDir();
    const namesrv = await startServerProcess(['namesrv', '--port', '0', '--http-port', '0']);
    try {
      expect(await httpRequest(namesrv.httpPort, '/healthz')).toMatchObject({ status: 200, body: 'ok\n' });
      expect((await httpRequest(namesrv.httpPort, '/readyz')).status).toBe(200);
      const broker = await startServerProcess([
        'broker',
        '--store-dir',
        path.join(t.dir, 'data'),
        '--port',
        '0',
        '--http-port',
        '0',
        '--namesrv',
        `127.0.0.1:${namesrv.port}`,
        '--topics',
        'orders:2',
      ]);
      try {
        const ready = await httpRequest(broker.httpPort, '/readyz');
        expect(ready.status).toBe(200);
        const m = (await httpRequest(broker.httpPort, '/metrics')).body;
        expect(sample(m, 'rocketnest_name_servers_registered')).toBe(1);
        expect(sample(m, 'rocketnest_name_servers_configured')).toBe(1);
        const n = (await httpRequest(namesrv.httpPort, '/metrics')).body;
        expect(sample(n, 'rocketnest_namesrv_brokers')).toBe(1);
        expect(sample(n, 'rocketnest_namesrv_topics')).toBe(1);
        expect(sample(n, 'rocketnest_connections')).toBeGreaterThanOrEqual(1);
        expect((await httpRequest(namesrv.httpPort, '/dashboard')).status).toBe(404);
      } finally {
        expect(await broker.stop()).toBe(0);
      }
    } finally {
      expect(await namesrv.stop()).toBe(0);
      t.cleanup();
    }
  }, 90_000);
});
