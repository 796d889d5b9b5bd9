import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync } from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { RocketAdmin } from '../../src/client/admin-client';
import { Producer } from '../../src/client/producer';
import { TcpTransport } from '../../src/client/tcp-transport';
import { tempDir } from '../support/temp-dir';

// issue 21, memory, seen from outside: `rocketnest broker` with small key-index files takes a keyed
// backlog that seals many of them; its /metrics reports a key-index heap of one file's slots (and
// the pending-entry buffer) however many files there are, before and after a restart, and the admin
// key query still finds keys in the sealed files. (RSS is measured by bench/key-index-memory.js.)

const REGISTER = path.join(__dirname, '../support/swc-register.js');
const MAIN = path.join(__dirname, '../../src/cli/main.ts');
const SLOTS = 1024;
const ENTRIES = 64;
const MESSAGES = 1000;
/** One file's slot table and its initial pending-entry buffer (1,024 entries of 24 B). */
const ACTIVE_FILE_HEAP_BYTES = SLOTS * 4 + 1024 * 24;

interface Started {
  child: ChildProcess;
  port: number;
  httpPort: number;
  exited: Promise<number | null>;
}

function startBroker(dir: string): Promise<Started> {
  const child = spawn(
    process.execPath,
    [
      '-r',
      REGISTER,
      MAIN,
      'broker',
      '--store-dir',
      dir,
      '--port',
      '0',
      '--http-port',
      '0',
      '--topics',
      'orders:2',
      '--index-slots-per-file',
      String(SLOTS),
      '--index-entries-per-file',
      String(ENTRIES),
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  return new Promise((resolve, reject) => {
    let out = '';
    const guard = setTimeout(() => reject(new Error(`broker did not start: ${out}`)), 20_000);
    child.stderr!.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const port = /listening on 127\.0\.0\.1:(\d+)/.exec(out)?.[1];
      const httpPort = /HTTP \(.*\) on [^:]+:(\d+)/.exec(out)?.[1];
      if (port && httpPort && /press Ctrl\+C/.test(out)) {
        clearTimeout(guard);
        resolve({ child, port: Number(port), httpPort: Number(httpPort), exited });
      }
    });
  });
}

async function stop(broker: Started): Promise<void> {
  broker.child.kill('SIGTERM');
  expect(await broker.exited).toBe(0);
}

function keyIndexHeapBytes(httpPort: number): Promise<number | undefined> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port: httpPort, path: '/metrics', agent: false }, (res) => {
        let body = '';
        res.on('data', (chunk: Buffer) => (body += chunk.toString()));
        res.on('end', () => {
          const value = /^rocketnest_key_index_heap_bytes (\d+)$/m.exec(body)?.[1];
          resolve(value === undefined ? undefined : Number(value));
        });
      })
      .on('error', reject);
  });
}

/** Polls /metrics until the key index holds `bytes` (the derived flush runs every second). */
async function heapSettlesAt(httpPort: number, bytes: number): Promise<number | undefined> {
  let last: number | undefined;
  for (let i = 0; i < 100; i++) {
    last = await keyIndexHeapBytes(httpPort);
    if (last === bytes) return last;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return last;
}

test('a CLI broker reports a key-index heap of one file whatever the keyed backlog, and finds keys in sealed files', async () => {
  const t = tempDir();
  const dir = path.join(t.dir, 'data');
  let broker = await startBroker(dir);
  try {
    const transport = new TcpTransport({ brokers: { 'broker-a': `127.0.0.1:${broker.port}` } });
    const producer = new Producer({ group: 'key-index-cli', transport });
    await producer.start();
    for (let from = 0; from < MESSAGES; from += 100) {
      await producer.sendBatch(
        Array.from({ length: 100 }, (_, i) => ({
          topic: 'orders',
          body: `order ${from + i}`,
          keys: [`order-${from + i}`],
        })),
      );
    }
    await producer.shutdown();
    await transport.close();

    expect(await heapSettlesAt(broker.httpPort, ACTIVE_FILE_HEAP_BYTES)).toBe(ACTIVE_FILE_HEAP_BYTES);
    const files = readdirSync(path.join(dir, 'index')).length;
    expect(files).toBe(Math.ceil(MESSAGES / ENTRIES)); // 16: 15 sealed, one taking keys

    const admin = new RocketAdmin({ brokers: { 'broker-a': `127.0.0.1:${broker.port}` } });
    const found = async (key: string) =>
      (await admin.queryByKey('orders', key)).map((m) => Buffer.from(m.bodyBase64, 'base64').toString());
    try {
      expect(await found('order-3')).toEqual(['order 3']); // the first, sealed file
      expect(await found('order-999')).toEqual(['order 999']);
    } finally {
      await admin.close();
    }
    await stop(broker);

    broker = await startBroker(dir);
    expect(await keyIndexHeapBytes(broker.httpPort)).toBe(ACTIVE_FILE_HEAP_BYTES);
    const again = new RocketAdmin({ brokers: { 'broker-a': `127.0.0.1:${broker.port}` } });
    try {
      expect(
        (await again.queryByKey('orders', 'order-500')).map((m) =>
          Buffer.from(m.bodyBase64, 'base64').toString(),
        ),
      ).toEqual(['order 500']);
    } finally {
      await again.close();
    }
  } finally {
    await stop(broker);
    t.cleanup();
  }
}, 60_000);
