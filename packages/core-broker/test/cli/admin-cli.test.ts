import * as path from 'node:path';
import { Producer } from '../../src/client/producer';
import { TcpTransport } from '../../src/client/tcp-transport';
import { parseTime, formatTable } from '../../src/cli/admin-command';
import { CliProcess } from '../cluster/process-harness';
import { tempDir } from '../support/temp-dir';
import { runCli } from '../support/run-cli';

describe('rocketnest admin', () => {
  const dirs = tempDir('rocketnest-admin-');
  let broker: CliProcess;
  let address: string;

  beforeAll(async () => {
    broker = new CliProcess('broker', [
      'broker',
      '--store-dir',
      path.join(dirs.dir, 'data'),
      '--port',
      '0',
      '--topics',
      'Orders:2',
    ]);
    address = await broker.address();
  });

  afterAll(async () => {
    broker.kill('SIGTERM');
    await broker.exited;
    dirs.cleanup();
  });

  test('topic create, list (table and JSON) and route against a standalone broker', async () => {
    const created = await runCli([
      'admin',
      'topic',
      'create',
      '--broker',
      address,
      '--topic',
      'Payments',
      '--queues',
      '3',
      '--perm',
      'r',
    ]);
    expect(created.stderr).toBe('');
    expect(created.code).toBe(0);
    expect(created.stdout).toMatch(
      /^broker\s+topic\s+read\s+write\s+perm\s+fifo\nbroker-a\s+Payments\s+3\s+3\s+r\s+false\n$/,
    );
    const listed = await runCli(['admin', 'topic', 'list', '--broker', address, '--json']);
    expect(listed.code).toBe(0);
    const topics = JSON.parse(listed.stdout) as Array<{
      brokerName: string;
      result: Array<{ topic: string }>;
    }>;
    expect(topics[0]!.result.map((t) => t.topic)).toEqual(expect.arrayContaining(['Orders', 'Payments']));
    const route = await runCli(['admin', 'topic', 'route', '--broker', address, '--topic', 'Orders']);
    expect(route.stdout).toMatch(/broker-a\s+-\s+2\s+2\s+rw\s+false/);
  });

  test('group progress, message get/query, offset reset', async () => {
    const transport = new TcpTransport({ brokers: { 'broker-a': address } });
    const producer = new Producer({ group: 'PG', transport });
    await producer.start();
    const sent = [];
    for (let i = 0; i < 5; i++)
      sent.push(await producer.send({ topic: 'Orders', body: `order-${i}`, keys: ['cust-9'] }));
    await producer.shutdown();
    await transport.close();

    const progress = await runCli([
      'admin',
      'group',
      'progress',
      '--broker',
      address,
      '--group',
      'Billing',
      '--topic',
      'Orders',
    ]);
    expect(progress.code).toBe(0);
    expect(progress.stdout).toMatch(/total\s+5\n$/);
    const got = await runCli(['admin', 'message', 'get', '--broker', address, '--id', sent[2]!.msgId]);
    expect(got.code).toBe(0);
    expect(got.stdout).toContain(sent[2]!.msgId);
    expect(got.stdout).toMatch(/order-2/);
    const query = await runCli([
      'admin',
      'message',
      'query',
      '--broker',
      address,
      '--topic',
      'Orders',
      '--key',
      'cust-9',
      '--json',
    ]);
    expect((JSON.parse(query.stdout) as unknown[]).length).toBe(5);
    const reset = await runCli([
      'admin',
      'offset',
      'reset',
      '--broker',
      address,
      '--group',
      'Billing',
      '--topic',
      'Orders',
      '--time',
      '0',
    ]);
    expect(reset.code).toBe(0);
    const after = await runCli([
      'admin',
      'group',
      'progress',
      '--broker',
      address,
      '--group',
      'Billing',
      '--json',
    ]);
    const rows = JSON.parse(after.stdout) as Array<{ consumerOffset?: number }>;
    expect(rows).toHaveLength(2);
    expect(rows.every((r) => r.consumerOffset === 0)).toBe(true);
  });

  test('errors: unknown message is exit 1 with its code; usage mistakes are exit 2 with the command usage; --help everywhere', async () => {
    const missing = await runCli([
      'admin',
      'message',
      'get',
      '--broker',
      address,
      '--id',
      '0000000000000000000000000000FFFF',
    ]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^rocketnest: MESSAGE_NOT_FOUND: /);
    const noTopic = await runCli(['admin', 'topic', 'create', '--broker', address]);
    expect(noTopic.code).toBe(2);
    expect(noTopic.stderr).toMatch(/admin topic create needs --topic/);
    expect(noTopic.stderr).toMatch(/Usage: rocketnest admin topic create/);
    const both = await runCli(['admin', 'topic', 'list', '--broker', address, '--namesrv', address]);
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/either --namesrv .* or --broker/);
    const unknown = await runCli(['admin', 'topic', 'explode']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/unknown admin command "topic explode"/);
    const badPerm = await runCli([
      'admin',
      'topic',
      'create',
      '--broker',
      address,
      '--topic',
      'X',
      '--perm',
      'all',
    ]);
    expect(badPerm.code).toBe(2);
    expect(badPerm.stderr).toMatch(/--perm must be rw, r, w or deny/);
    const down = await runCli(['admin', 'topic', 'list', '--broker', '127.0.0.1:1', '--timeout', '500']);
    expect(down.code).toBe(1);
    // the broker is asked for its name first
    expect(down.stderr).toMatch(
      /^rocketnest: BROKER_UNAVAILABLE: cannot learn the name of the broker at 127\.0\.0\.1:1 \(/,
    );
    const help = await runCli(['admin', '--help']);
    expect(help.code).toBe(0);
    for (const command of [
      'cluster list',
      'topic route',
      'group progress',
      'message query',
      'offset reset',
      'dlq resend',
    ]) {
      expect(help.stdout).toContain(command);
    }
    const commandHelp = await runCli(['admin', 'offset', 'reset', '--help']);
    expect(commandHelp.code).toBe(0);
    expect(commandHelp.stdout).toMatch(/--time <value>\s+ISO 8601 time, epoch ms, or a time ago/);
  });
});

describe('admin helpers', () => {
  test('parseTime takes ISO 8601, epoch ms and a time ago; refuses anything else', () => {
    const now = Date.parse('2026-11-25T12:00:00Z');
    expect(parseTime('2026-11-25T10:00:00Z', now)).toBe(Date.parse('2026-11-25T10:00:00Z'));
    expect(parseTime('1700000000000', now)).toBe(1_700_000_000_000);
    expect(parseTime('-30m', now)).toBe(now - 30 * 60_000);
    expect(parseTime('-2h', now)).toBe(now - 2 * 3_600_000);
    expect(parseTime('-1d', now)).toBe(now - 86_400_000);
    expect(() => parseTime('yesterday', now)).toThrow(/--time must be ISO 8601/);
    expect(() => parseTime('-5y', now)).toThrow(/--time must be/);
  });

  test('formatTable aligns columns under their header', () => {
    expect(formatTable([])).toBe('(none)');
    expect(
      formatTable([
        { a: 1, long: 'x' },
        { a: 222, long: 'yy' },
      ]),
    ).toBe('a    long\n1    x\n222  yy');
  });
});
