// A worker process whose only job is a push consumer must not exit while its broker is down: the
// client's timers are unref'd and, between reconnect attempts, it has no socket open, so before
// `holdProcessOpen` Node ended such a worker with code 0 in the middle of reconnecting (found by
// the issue-15 restart test). RocketMQ's Java consumer keeps its JVM running the same way.
import { type ChildProcess, spawn } from 'node:child_process';
import * as path from 'node:path';
import { Producer } from '../../src/client/producer';
import { TcpTransport } from '../../src/client/tcp-transport';
import { CliProcess } from '../cluster/process-harness';
import { tempDir } from '../support/temp-dir';

jest.setTimeout(180_000);

const REGISTER = path.join(__dirname, '../support/swc-register.js');
const CHILD = path.join(__dirname, 'worker-child.ts');
const TOPIC = 'Work';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until(
  condition: () => boolean,
  what: string,
  timeoutMs: number,
  detail = () => '',
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}\n${detail()}`);
    await sleep(20);
  }
}

test('a consumer worker outlives its broker: it waits through a kill -9 and restart, then consumes, and exits 0 on SIGTERM', async () => {
  const dirs = tempDir();
  const brokers: CliProcess[] = [];
  let worker: ChildProcess | undefined;
  let producer: Producer | undefined;
  let transport: TcpTransport | undefined;
  try {
    const storeDir = path.join(dirs.dir, 'store');
    const startBroker = (port: number): CliProcess => {
      const b = new CliProcess('broker', [
        'broker',
        '--store-dir',
        storeDir,
        '--port',
        String(port),
        '--topics',
        `${TOPIC}:2`,
      ]);
      brokers.push(b);
      return b;
    };
    const first = startBroker(0);
    const address = await first.address();
    const port = Number(address.split(':')[1]);

    let out = '';
    let exit: string | undefined;
    worker = spawn(process.execPath, ['-r', REGISTER, CHILD, address, TOPIC, 'Workers'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    worker.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    worker.stderr!.on('data', (c: Buffer) => (out += c.toString()));
    const exited = new Promise<void>((resolve) =>
      worker!.once('exit', (code, signal) => {
        exit = signal ?? `code ${code}`;
        resolve();
      }),
    );
    const detail = (): string => `worker ${exit ?? 'running'}:\n${out}`;
    await until(() => out.includes('READY\n'), 'the worker started', 60_000, detail);

    transport = new TcpTransport({ brokers: { 'broker-a': address }, reconnectBackoffMinMs: 10 });
    producer = new Producer({ group: 'WorkP', transport, sendTimeoutMs: 30_000 });
    await producer.start();
    await producer.send({ topic: TOPIC, body: 'before' });
    await until(() => out.includes('GOT before\n'), 'the first message arrived', 60_000, detail);

    first.kill('SIGKILL');
    await first.exited;
    // the worker's pulls fail and it waits to reconnect; give it several rounds of that
    await sleep(3_000);
    expect(exit).toBeUndefined();

    const second = startBroker(port);
    await second.address();
    await producer.send({ topic: TOPIC, body: 'after' });
    await until(
      () => out.includes('GOT after\n'),
      'the message sent after the restart arrived',
      90_000,
      detail,
    );
    expect(exit).toBeUndefined();

    worker.kill('SIGTERM');
    await exited;
    expect(exit).toBe('code 0');
    expect(out).toMatch(/STOPPED\n$/);
  } finally {
    await producer?.shutdown();
    await transport?.close();
    worker?.kill('SIGKILL');
    for (const b of brokers) {
      b.kill('SIGKILL');
      await b.exited;
    }
    dirs.cleanup();
  }
});
