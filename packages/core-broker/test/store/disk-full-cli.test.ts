/**
 * Issue 15 #2 as an operator meets it: a `rocketnest broker` process on a small tmpfs fills it
 * up. Sends must then fail with retriable flow control (the store's `DISK_FULL`, which the broker
 * reports as `BROKER_BUSY`), naming the directory, and go through again — same process, no
 * restart — once another file on that file system is deleted. Acknowledged messages survive,
 * refused ones never appear.
 *
 * Needs a tmpfs of its own: the test mounts one (root with CAP_SYS_ADMIN, as on the project's
 * machine) and always unmounts it. Where mounting is not allowed the test is skipped, and says
 * so; the same mechanics are covered in-process by `disk-full.test.ts` with injected ENOSPC.
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { Producer } from '../../src/client/producer';
import { TcpTransport } from '../../src/client/tcp-transport';
import { FileStore } from '../../src/store/file-store';
import { runCli } from '../support/run-cli';
import { canMountTmpfs, mountTmpfs } from '../support/tmpfs';

const REGISTER = path.join(__dirname, '../support/swc-register.js');
const MAIN = path.join(__dirname, '../../src/cli/main.ts');
const TMPFS_BYTES = 4 * 1024 * 1024;
const BODY_BYTES = 32 * 1024;

const canMount = canMountTmpfs();
if (!canMount) console.warn('disk-full-cli.test.ts: skipped, this process may not mount a tmpfs');

function startBroker(storeDir: string): {
  child: ChildProcessWithoutNullStreams;
  port: Promise<number>;
  out: () => string;
} {
  const child = spawn(
    process.execPath,
    [
      '-r',
      REGISTER,
      MAIN,
      'broker',
      '--store-dir',
      storeDir,
      '--port',
      '0',
      '--flush',
      'sync',
      '--topics',
      'fill:1',
    ],
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );
  let out = '';
  child.stderr.on('data', (chunk: Buffer) => (out += chunk.toString()));
  const port = new Promise<number>((resolve, reject) => {
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
  return { child, port, out: () => out };
}

(canMount ? describe : describe.skip)('rocketnest broker on a full tmpfs (issue 15 #2)', () => {
  let mount: { dir: string; unmount(): void };
  beforeAll(() => {
    mount = mountTmpfs(TMPFS_BYTES)!;
    expect(mount).toBeDefined();
  });
  afterAll(() => mount?.unmount());

  test('sends fail with retriable flow control naming the directory, and resume without a restart once space is freed', async () => {
    const storeDir = path.join(mount.dir, 'store');
    mkdirSync(storeDir);
    // another tenant of the file system, deleted later to free space
    const filler = path.join(mount.dir, 'filler');
    writeFileSync(filler, Buffer.alloc(2 * 1024 * 1024, 1));

    const broker = startBroker(storeDir);
    const acked: string[] = [];
    try {
      const transport = new TcpTransport({ brokers: { 'broker-a': `127.0.0.1:${await broker.port}` } });
      const producer = new Producer({ group: 'disk-filler', transport, retryTimesWhenSendFailed: 0 });
      await producer.start();
      try {
        let n = 0;
        const send = async (): Promise<unknown> => {
          const text = `m${n++}-`;
          const body = Buffer.concat([Buffer.from(text), Buffer.alloc(BODY_BYTES - text.length, 0x61)]);
          try {
            await producer.send({ topic: 'fill', body });
            acked.push(text);
            return undefined;
          } catch (error) {
            return error;
          }
        };

        // fill the disk: the first refusal comes well before 2 × the free space is sent
        let refusal: unknown;
        for (let i = 0; i < (2 * TMPFS_BYTES) / BODY_BYTES && refusal === undefined; i++)
          refusal = await send();
        expect(acked.length).toBeGreaterThan(10);
        const flowControl = (error: unknown) => {
          const e = error as { code: string; retriable: boolean; message: string; cause?: { code?: string } };
          // the producer wraps the broker's answer when it gives up
          const answer = e.code === 'SEND_FAILED' && e.cause ? (e.cause as typeof e) : e;
          expect(answer).toMatchObject({ retriable: true });
          expect(['BROKER_BUSY', 'DISK_FULL']).toContain(answer.code);
          expect(answer.message).toContain(storeDir);
        };
        flowControl(refusal);
        // still full: still refused, still retriable
        for (let i = 0; i < 3; i++) flowControl(await send());

        // another file on the file system is deleted: sends go through again, same process
        rmSync(filler);
        for (let i = 0; i < 10; i++) expect(await send()).toBeUndefined();

        // the refusals are counted where the admin tool sees them
        const stats = await runCli([
          'admin',
          'store',
          'stats',
          '--broker',
          `127.0.0.1:${await broker.port}`,
          '--json',
        ]);
        expect(stats.code).toBe(0);
        expect(JSON.parse(stats.stdout)).toEqual([
          {
            brokerName: 'broker-a',
            result: expect.objectContaining({ diskFull: false, diskFullRejections: expect.any(Number) }),
          },
        ]);
        expect(JSON.parse(stats.stdout)[0].result.diskFullRejections).toBeGreaterThanOrEqual(4);
      } finally {
        await producer.shutdown();
        await transport.close();
      }
    } finally {
      const exited = new Promise<number | null>((resolve) => broker.child.on('close', resolve));
      broker.child.kill('SIGTERM');
      expect(await exited).toBe(0);
    }
    expect(broker.out()).toMatch(/WARN store: refusing appends \(DISK_FULL\)/);
    expect(broker.out()).toMatch(/store: taking appends again/);

    // exactly the acknowledged messages are stored, in order; nothing of a refused one
    const store = await FileStore.open({ dir: storeDir, retentionIntervalMs: 0 });
    try {
      const stored: string[] = [];
      for (let next = 0; next < store.maxOffset('fill', 0);) {
        const got = store.getMessages('fill', 0, next, { maxCount: 64 });
        for (const m of got.messages) stored.push(m.body.subarray(0, m.body.indexOf('-') + 1).toString());
        next = got.nextOffset;
      }
      expect(stored).toEqual(acked);
      expect(store.recovery.truncatedBytes).toBe(0);
    } finally {
      await store.close();
    }
  }, 60_000);
});
