// Issue 15 #6: `rocketnest admin topic update` changes only the fields given; shrinking queues never
// hides stored messages (read and write queue counts kept apart, as RocketMQ's
// readQueueNums/writeQueueNums); one default queue count, the same in the help and the behaviour.
import * as path from 'node:path';
import { DEFAULT_QUEUE_COUNT } from '../../src/broker/broker-options';
import { Producer } from '../../src/client/producer';
import { PullConsumer } from '../../src/client/pull-consumer';
import { TcpTransport } from '../../src/client/tcp-transport';
import { CliProcess } from '../cluster/process-harness';
import { runCli } from '../support/run-cli';
import { tempDir } from '../support/temp-dir';

interface TopicRow {
  topic: string;
  readQueueCount: number;
  writeQueueCount: number;
  permission: number;
  fifo: boolean;
}

describe('rocketnest admin topic update against a broker process', () => {
  const dirs = tempDir('rocketnest-topic-update-');
  let broker: CliProcess;
  let address: string;

  beforeAll(async () => {
    broker = new CliProcess('broker', ['broker', '--store-dir', path.join(dirs.dir, 'data'), '--port', '0']);
    address = await broker.address();
  });

  afterAll(async () => {
    broker.kill('SIGTERM');
    await broker.exited;
    dirs.cleanup();
  });

  const admin = (...args: string[]) => runCli(['admin', ...args, '--broker', address]);
  async function topic(name: string): Promise<TopicRow> {
    const listed = await admin('topic', 'list', '--json');
    expect(listed.code).toBe(0);
    const rows = (JSON.parse(listed.stdout) as Array<{ result: TopicRow[] }>)[0]!.result;
    return rows.find((t) => t.topic === name)!;
  }

  test('an update changes only the given fields; read queues never shrink over stored messages', async () => {
    expect((await admin('topic', 'create', '--topic', 'Wide', '--queues', '16')).code).toBe(0);
    expect(
      (await admin('topic', 'create', '--topic', 'Ordered', '--queues', '4', '--fifo', 'true')).code,
    ).toBe(0);

    const transport = new TcpTransport({ brokers: { 'broker-a': address } });
    const producer = new Producer({ group: 'PG', transport });
    await producer.start();
    try {
      for (let i = 0; i < 32; i++) await producer.send({ topic: 'Wide', body: `m-${i}` });
      for (let i = 0; i < 8; i++)
        await producer.send({ topic: 'Ordered', body: `o-${i}`, messageGroup: `g-${i % 3}` });
    } finally {
      await producer.shutdown();
      await transport.close();
    }

    // --perm alone: queue counts and FIFO stay
    const perm = await admin('topic', 'update', '--topic', 'Wide', '--perm', 'rw');
    expect(perm.stderr).toBe('');
    expect(perm.stdout).toMatch(/broker-a\s+Wide\s+16\s+16\s+rw\s+false/);
    const fifo = await admin('topic', 'update', '--topic', 'Ordered', '--perm', 'rw');
    expect(fifo.stdout).toMatch(/broker-a\s+Ordered\s+4\s+4\s+rw\s+true/);
    expect(await topic('Ordered')).toMatchObject({ readQueueCount: 4, writeQueueCount: 4, fifo: true });

    // shrinking both would hide queues 8..15, which hold messages: refused, nothing changes
    const hide = await admin('topic', 'update', '--topic', 'Wide', '--queues', '8');
    expect(hide.code).not.toBe(0);
    expect(hide.stderr).toMatch(/INVALID_ARGUMENT/);
    expect(hide.stderr).toMatch(/would hide the messages stored in queue 8/);
    expect(await topic('Wide')).toMatchObject({ readQueueCount: 16, writeQueueCount: 16 });

    // the RocketMQ way: fewer write queues, every read queue kept
    const write = await admin('topic', 'update', '--topic', 'Wide', '--write-queues', '8');
    expect(write.stdout).toMatch(/broker-a\s+Wide\s+16\s+8\s+rw\s+false/);
    expect((await admin('topic', 'update', '--topic', 'Wide', '--read-queues', '8')).code).not.toBe(0);
    const below = await admin(
      'topic',
      'update',
      '--topic',
      'Wide',
      '--read-queues',
      '17',
      '--write-queues',
      '20',
    );
    expect(below.stderr).toMatch(/readQueueCount 17 is below writeQueueCount 20/);

    // a new group reads every stored message
    const readerTransport = new TcpTransport({ brokers: { 'broker-a': address } });
    const consumer = new PullConsumer({
      group: 'NewReaders',
      transport: readerTransport,
      consumeFromWhere: 'FIRST_OFFSET',
    });
    consumer.subscribe('Wide', '*');
    await consumer.start();
    const bodies: string[] = [];
    try {
      for (let i = 0; i < 100 && bodies.length < 32; i++)
        bodies.push(...(await consumer.poll(200)).map((m) => m.body.toString()));
    } finally {
      await consumer.shutdown();
      await readerTransport.close();
    }
    expect(bodies.sort()).toEqual(Array.from({ length: 32 }, (_, i) => `m-${i}`).sort());
  });

  test('one default queue count: the help states it and a topic created without --queues gets it', async () => {
    const help = await runCli(['admin', 'topic', 'create', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain(`defaultQueueCount, ${DEFAULT_QUEUE_COUNT})`);
    expect(help.stdout).not.toMatch(/default: the broker default, 4/);
    const created = await admin('topic', 'create', '--topic', 'Plain');
    expect(created.stdout).toMatch(
      new RegExp(`broker-a\\s+Plain\\s+${DEFAULT_QUEUE_COUNT}\\s+${DEFAULT_QUEUE_COUNT}\\s+rw\\s+false`),
    );
  });
});
