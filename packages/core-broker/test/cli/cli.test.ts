import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { existsSync } from 'node:fs';
import * as net from 'node:net';
import { tempDir } from '../support/temp-dir';
import { Producer } from '../../src/client/producer';
import { TcpTransport } from '../../src/client/tcp-transport';

const REGISTER = path.join(__dirname, '../support/swc-register.js');
const MAIN = path.join(__dirname, '../../src/cli/main.ts');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI; when `stopWhen` appears on stdout, sends `signal`. Bounded by a 20 s guard. */
function run(args: string[], stopWhen?: RegExp, signal: NodeJS.Signals = 'SIGTERM', times = 1): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-r', REGISTER, MAIN, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    const guard = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      if (stopWhen?.test(stdout)) {
        stopWhen = undefined;
        for (let i = 0; i < times; i++) child.kill(signal);
      }
    });
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(guard);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('rocketnest CLI', () => {
  test('broker opens a data directory, stops cleanly on SIGTERM and SIGINT, and reopens from its checkpoint', async () => {
    const t = tempDir();
    try {
      const dir = path.join(t.dir, 'data');
      // two signals at once: the second must not cut the clean close short. Port 0: RocketMQ's
      // default 10911 may be held by another test's Apache RocketMQ broker.
      const first = await run(
        ['broker', '--store-dir', dir, '--flush', 'sync', '--port', '0'],
        /press Ctrl\+C/,
        'SIGTERM',
        2,
      );
      expect(first.stderr).toBe('');
      expect(first.stdout).toMatch(/recovered without checkpoint/);
      expect(first.stdout).toMatch(/listening on 127\.0\.0\.1:\d+/);
      expect(first.stdout).toMatch(/SIGTERM received, closing\n/);
      expect(first.stdout).toMatch(/rocketnest broker: closed cleanly\n$/);
      expect(first.code).toBe(0);
      expect(existsSync(path.join(dir, 'checkpoint'))).toBe(true);
      expect(existsSync(path.join(dir, 'config'))).toBe(true);
      const second = await run(['broker', `--store-dir=${dir}`, '--port=0'], /press Ctrl\+C/, 'SIGINT');
      expect(second.stdout).toMatch(/recovered from checkpoint: 0 records verified, 0 bytes truncated/);
      expect(second.code).toBe(0);
    } finally {
      t.cleanup();
    }
  });

  test('usage errors exit 2 with the usage text; --help exits 0', async () => {
    const bad = await run(['broker', '--flush', 'sometimes']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--flush must be async or sync, not "sometimes"/);
    expect(bad.stderr).toMatch(/Usage: rocketnest broker/);
    const unknown = await run(['frobnicate']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/unknown command "frobnicate"/);
    const missing = await run(['broker', '--store-dir']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/--store-dir needs a value/);
    const badPort = await run(['broker', '--port', '70000']);
    expect(badPort.code).toBe(2);
    expect(badPort.stderr).toMatch(/--port must be 0..65535/);
    const badTopics = await run(['broker', '--topics', 'orders:x']);
    expect(badTopics.code).toBe(2);
    expect(badTopics.stderr).toMatch(/--topics takes name\[:queues\[:fifo\]\]/);
    const help = await run(['broker', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/--segment-size <bytes>/);
  });

  test('namesrv: --help, usage errors, and a clean stop on SIGTERM', async () => {
    const help = await run(['namesrv', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/Usage: rocketnest namesrv/);
    expect(help.stdout).toMatch(/--broker-expiry <ms>/);
    const top = await run(['--help']);
    expect(top.stdout).toMatch(/namesrv +Run a name server/);
    const bad = await run(['namesrv', '--broker-expiry', 'soon']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--broker-expiry must be a positive number of ms, not "soon"/);
    expect(bad.stderr).toMatch(/Usage: rocketnest namesrv/);
    const badList = await run(['broker', '--namesrv', 'localhost']);
    expect(badList.code).toBe(2);
    expect(badList.stderr).toMatch(/--namesrv: "localhost" is not host:port/);
    const served = await run(['namesrv', '--port', '0'], /press Ctrl\+C/);
    expect(served.stdout).toMatch(/rocketnest namesrv: listening on 127\.0\.0\.1:\d+/);
    expect(served.stdout).toMatch(/rocketnest namesrv: closed cleanly\n$/);
    expect(served.code).toBe(0);
  });

  test('a store error is reported with its code and exit 1', async () => {
    const bad = await run([
      'broker',
      '--store-dir',
      path.join(tempDir().dir, 'x'),
      '--segment-size',
      '100',
      '--port',
      '0',
    ]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/INVALID_OPTION: store option segmentSizeBytes must be an integer/);
  });

  test('a taken port: broker and namesrv exit 1 with a typed error naming --port, no stack trace', async () => {
    const holder = net.createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    const { port } = holder.address() as net.AddressInfo;
    try {
      const broker = await run([
        'broker',
        '--store-dir',
        path.join(tempDir().dir, 'taken'),
        '--host',
        '127.0.0.1',
        '--port',
        String(port),
      ]);
      const namesrv = await run(['namesrv', '--host', '127.0.0.1', '--port', String(port)]);
      for (const result of [broker, namesrv]) {
        expect(result.code).toBe(1);
        expect(result.stderr).toContain(
          `INVALID_OPTION: cannot listen on 127.0.0.1:${port} (EADDRINUSE): another process holds the port; stop it, or choose another --port`,
        );
        expect(result.stderr).not.toMatch(/^\s+at /m);
      }
    } finally {
      await new Promise((resolve) => holder.close(resolve));
    }
  }, 60_000);

  test('a broker process serves a producer and pulls from another process over TCP', async () => {
    const t = tempDir();
    const child = spawn(
      process.execPath,
      [
        '-r',
        REGISTER,
        MAIN,
        'broker',
        '--store-dir',
        path.join(t.dir, 'data'),
        '--port',
        '0',
        '--topics',
        'orders:4',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    try {
      const port = await new Promise<number>((resolve, reject) => {
        let out = '';
        const guard = setTimeout(() => reject(new Error(`broker did not start: ${out}`)), 20_000);
        child.stdout.on('data', (chunk: Buffer) => {
          out += chunk.toString();
          const m = /listening on 127\.0\.0\.1:(\d+)/.exec(out);
          if (m && /press Ctrl\+C/.test(out)) {
            clearTimeout(guard);
            resolve(Number(m[1]));
          }
        });
      });
      const transport = new TcpTransport({ brokers: { 'broker-a': `127.0.0.1:${port}` } });
      const producer = new Producer({ group: 'cli-producer', transport });
      await producer.start();
      const sent = await producer.send({ topic: 'orders', body: 'over the wire', tag: 'created' });
      const route = await transport.topicRoute('orders');
      expect(route.brokers[0]).toMatchObject({ brokerName: 'broker-a', writeQueueCount: 4 });
      const pulled = await transport.pull('broker-a', {
        consumerGroup: 'cli-check',
        topic: 'orders',
        queueId: sent.queueId,
        queueOffset: sent.queueOffset,
        maxCount: 1,
        suspendTimeoutMs: 0,
      });
      expect(pulled.messages.map((m) => [m.msgId, m.body.toString()])).toEqual([
        [sent.msgId, 'over the wire'],
      ]);
      await producer.shutdown();
      await transport.close();
    } finally {
      const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      t.cleanup();
    }
  });
});
