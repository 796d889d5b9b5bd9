import * as path from 'node:path';
import { FilterType } from '../../src/rocketmq5/codec';
import { Code } from '../../src/rocketmq5/status';
import { CliProcess } from '../cluster/process-harness';
import { tempDir } from '../support/temp-dir';
import { RawClient } from './grpc-raw-client';
import { buildJavaProbe, eventsNamed, runJavaProbe } from './official-clients';

/**
 * gRPC routes in a cluster: a name server and two `rocketnest broker --grpc-port --namesrv`
 * processes serving one topic. Each broker registers its gRPC endpoint with the name server, so
 * QueryRoute and QueryAssignment at either broker list both brokers, each at its own gRPC endpoint
 * (as Apache's proxy lists every broker of a route); the official Java client, given broker-a only,
 * sends to both and its SimpleConsumer receives from both.
 */
jest.setTimeout(180_000);

const TOPIC = 'Spread';
const ENDPOINTS = { scheme: 1, addresses: [{ host: '127.0.0.1', port: 1 }] };
const processes: CliProcess[] = [];
const dirs = tempDir('rocketnest-grpc-cluster-');
const grpcPort: Record<string, number> = {};
const clients: RawClient[] = [];

const start = (name: string, args: string[]): CliProcess => {
  const p = new CliProcess(name, args);
  processes.push(p);
  return p;
};

beforeAll(async () => {
  await buildJavaProbe();
  const namesrv = start('namesrv', ['namesrv', '--port', '0']);
  const nameServer = await namesrv.address();
  for (const name of ['broker-a', 'broker-b']) {
    const broker = start(name, [
      'broker',
      '--broker-name',
      name,
      '--store-dir',
      path.join(dirs.dir, name),
      '--port',
      '0',
      '--grpc-port',
      '0',
      '--namesrv',
      nameServer,
      '--topics',
      `${TOPIC}:2`,
    ]);
    grpcPort[name] = Number((await broker.waitFor(/MessagingService\) on [\d.]+:(\d+)/, 60_000))[1]);
    await broker.waitFor(/registered with 1 of 1 name servers/, 60_000);
  }
});

afterAll(async () => {
  for (const c of clients) c.close();
  for (const p of processes) p.kill('SIGTERM');
  await Promise.all(processes.map((p) => p.exited));
  dirs.cleanup();
});

const client = (name: string): RawClient => {
  const c = new RawClient(`127.0.0.1:${grpcPort[name]}`);
  clients.push(c);
  return c;
};

test('QueryRoute and QueryAssignment at either broker list both brokers, each at its own gRPC endpoint', async () => {
  for (const at of ['broker-a', 'broker-b']) {
    const c = client(at);
    const route = await c.unary('QueryRoute', { topic: { name: TOPIC }, endpoints: ENDPOINTS });
    expect(route.status.code).toBe(Code.OK);
    expect(
      route.messageQueues.map((q) => ({
        broker: q.broker?.name,
        id: q.id,
        port: q.broker?.endpoints?.addresses[0]?.port,
      })),
    ).toEqual([
      { broker: 'broker-a', id: 0, port: grpcPort['broker-a'] },
      { broker: 'broker-a', id: 1, port: grpcPort['broker-a'] },
      { broker: 'broker-b', id: 0, port: grpcPort['broker-b'] },
      { broker: 'broker-b', id: 1, port: grpcPort['broker-b'] },
    ]);
    const assignment = await c.unary('QueryAssignment', {
      topic: { name: TOPIC },
      group: { name: 'G' },
      endpoints: ENDPOINTS,
    });
    expect(
      assignment.assignments.map((a) => [
        a.messageQueue?.broker?.name,
        a.messageQueue?.broker?.endpoints?.addresses[0]?.port,
      ]),
    ).toEqual([
      ['broker-a', grpcPort['broker-a']],
      ['broker-b', grpcPort['broker-b']],
    ]);
    // a topic no broker has is still TOPIC_NOT_FOUND
    const missing = await c.unary('QueryRoute', { topic: { name: 'Nowhere' }, endpoints: ENDPOINTS });
    expect(missing.status.code).toBe(Code.TOPIC_NOT_FOUND);
  }
});

test('the official Java client, given broker-a only, sends to both brokers and receives from both', async () => {
  const logDir = path.join(dirs.dir, 'client-logs');
  const endpoint = `127.0.0.1:${grpcPort['broker-a']}`;
  const sent = await runJavaProbe('send', { endpoint, topic: TOPIC, count: 8 }, logDir);
  expect(sent.code).toBe(0);
  expect(eventsNamed(sent, 'sent')).toHaveLength(8);
  // what each broker stored, read from its own gRPC endpoint by a group of its own
  const stored: Record<string, number> = {};
  for (const name of ['broker-a', 'broker-b']) {
    const frames = await client(name).receive({
      group: { name: `Count-${name}` },
      messageQueue: { topic: { name: TOPIC }, id: -1, permission: 4, broker: null, acceptMessageTypes: [] },
      filterExpression: { type: FilterType.TAG, expression: '*' },
      batchSize: 32,
      invisibleDuration: { seconds: 30 },
      autoRenew: false,
      longPollingTimeout: { seconds: 1 },
    });
    stored[name] = frames.filter((f) => f.message).length;
  }
  expect(stored['broker-a']! + stored['broker-b']!).toBe(8);
  expect(stored['broker-a']).toBeGreaterThan(0);
  expect(stored['broker-b']).toBeGreaterThan(0);
  const received = await runJavaProbe(
    'simple',
    { endpoint, topic: TOPIC, group: 'JavaGroup', count: 8, 'timeout-ms': 60_000 },
    logDir,
  );
  expect(eventsNamed(received, 'complete')).toHaveLength(1);
  expect(
    eventsNamed(received, 'received')
      .map((e) => Number(e.seq))
      .sort((a, b) => a - b),
  ).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
});
